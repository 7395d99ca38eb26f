#!/usr/bin/env bash
# Runs the executor benchmarks (scheduler/bench_test.go) and the yield
# experiment (scheduler/yieldexp_test.go), summarises the benchmarks with
# benchstat, and writes BENCHMARKS.md with internal/benchreport (a
# development tool: `go run ./internal/benchreport -h`). BENCHMARKS.md is
# generated: change this script or internal/benchreport, never the file.
#
# Environment (defaults in brackets):
#   COUNT [6]          go test -count for the benchmarks
#   BENCHTIME [1s]     go test -benchtime
#   YIELD_RUNS [5]     runs per case of the yield experiment (medians are reported)
#   YIELD_SECONDS [2]  measured seconds per run
#   SKIP_YIELD [0]     1: do not run the yield experiment
#   OUT [BENCHMARKS.md]
#   WAIT_QUIET [0]     wait up to this many seconds for the 1-minute load average to drop
#                      below QUIET_LOAD [0.5] before starting (other work skews the figures)
#   KEEP []            a directory to copy the raw outputs into (bench.txt, benchstat.txt, yieldexp.json, yieldexp.log)
#   COMMIT [git describe --always --dirty]  the commit measured, for the report
#
# Any BENCHMARKS*.part.md in the tree (e.g. wasmtask/instrument/BENCHMARKS.part.md,
# written by other tooling) is appended to the report's "Other sections".
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-1s}
YIELD_RUNS=${YIELD_RUNS:-5}
YIELD_SECONDS=${YIELD_SECONDS:-2}
SKIP_YIELD=${SKIP_YIELD:-0}
OUT=${OUT:-BENCHMARKS.md}

work=$(mktemp -d "${TMPDIR:-/tmp}/wasmsched-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

export PATH="$(go env GOPATH)/bin:$PATH"
if ! command -v benchstat >/dev/null 2>&1; then
	echo "benchmarks.sh: installing benchstat" >&2
	go install golang.org/x/perf/cmd/benchstat@latest || echo "benchmarks.sh: benchstat unavailable; continuing without it" >&2
fi

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }
WAIT_QUIET=${WAIT_QUIET:-0}
QUIET_LOAD=${QUIET_LOAD:-0.5}
waited=0
while [ "$waited" -lt "$WAIT_QUIET" ] && [ -r /proc/loadavg ] &&
	awk -v max="$QUIET_LOAD" '{exit !($1 >= max)}' /proc/loadavg; do
	sleep 10
	waited=$((waited + 10))
done
[ "$WAIT_QUIET" -gt 0 ] && echo "benchmarks.sh: waited ${waited}s for a quiet machine (load $(loadavg))" >&2
load_before=$(loadavg)

# CPU seconds: every process on the machine (/proc/stat, USER_HZ=100) and
# this script's children, so that the report can say how much of the
# machine other processes used while we measured.
machine_cpu() { awk '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8+$9)/100}' /proc/stat 2>/dev/null || echo 0; }
# `times` must run in this shell (not in $(...)) to see this shell's children.
children_cpu() { awk 'NR==2{split($1,u,"m"); split($2,s,"m"); printf "%.2f", u[1]*60+u[2]+s[1]*60+s[2]}' "$1"; }
now() { date +%s.%N; }
foreign_cores() { # machine0 children0 wall0 machine1 children1 wall1
	awk -v m0="$1" -v c0="$2" -v w0="$3" -v m1="$4" -v c1="$5" -v w1="$6" \
		'BEGIN{f=((m1-m0)-(c1-c0))/(w1-w0); if (f<0) f=0; printf "%.2f", f}'
}

# The host-phase probe (../shared/tools/hostphase): a cache-line round
# trip between the vCPUs, which cross-core benchmarks follow. Skipped
# where gcc or the probe's source is missing.
hostphase_src=../shared/tools/hostphase/c2c.c
hostphase() {
	if [ -x "$work/c2c" ]; then
		"$work/c2c" | sed -n 's/.*c2c_rt_ns=\([0-9.]*\).*/\1 ns/p'
	fi
}
if command -v gcc >/dev/null 2>&1 && [ -r "$hostphase_src" ]; then
	gcc -O2 -pthread -o "$work/c2c" "$hostphase_src" || echo "benchmarks.sh: the host-phase probe did not build; continuing without it" >&2
fi

bench_re='^Benchmark(SpawnManyLocal|SpawnManyRemoteIdle|SpawnManyRemoteBusy1|SpawnManyRemoteBusy2|YieldMany|PingPong|ChainedSpawn|YieldRoundTrip)$'
bench_cmd="go test -run '^\$' -bench '$bench_re' -benchtime $BENCHTIME -count $COUNT -timeout 60m ./scheduler/"
echo "+ $bench_cmd" >&2
times > "$work/times0"
phase_before=$(hostphase)
m0=$(machine_cpu) w0=$(now)
eval "$bench_cmd" | tee "$work/bench.txt"
times > "$work/times1"
m1=$(machine_cpu) w1=$(now)
phase_after=$(hostphase)
phase_args=()
if [ -n "$phase_before" ]; then
	phase_args=(-hostphase "before the benchmarks $phase_before, after them $phase_after")
fi
bench_foreign=$(foreign_cores "$m0" "$(children_cpu "$work/times0")" "$w0" "$m1" "$(children_cpu "$work/times1")" "$w1")

stat_args=()
if command -v benchstat >/dev/null 2>&1; then
	benchstat "$work/bench.txt" > "$work/benchstat.txt"
	stat_args=(-benchstat "$work/benchstat.txt")
fi

yield_args=()
yield_cmd=""
if [ "$SKIP_YIELD" != 1 ]; then
	yield_cmd="WASMSCHED_YIELD_EXPERIMENT=1 WASMSCHED_YIELD_EXPERIMENT_RUNS=$YIELD_RUNS WASMSCHED_YIELD_EXPERIMENT_SECONDS=$YIELD_SECONDS WASMSCHED_YIELD_EXPERIMENT_OUT=<out>/yieldexp.json go test -run '^TestYieldExperiment\$' -count 1 -timeout 60m -v ./scheduler/"
	echo "+ $yield_cmd" >&2
	eval "${yield_cmd//<out>/$work}" | tee "$work/yieldexp.log"
	yield_args=(-yieldexp "$work/yieldexp.json" -yieldlog "$work/yieldexp.log" -yieldcmd "$yield_cmd")
fi

load_after=$(loadavg)
commit=${COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}

part_args=()
while IFS= read -r part; do
	part_args+=(-part "$part")
done < <(find . -name 'BENCHMARKS*.part.md' -not -path './.git/*' | sed 's|^\./||' | sort)

go run ./internal/benchreport \
	-bench "$work/bench.txt" "${stat_args[@]}" "${yield_args[@]}" "${part_args[@]}" \
	-cmd "scripts/benchmarks.sh (COUNT=$COUNT BENCHTIME=$BENCHTIME YIELD_RUNS=$YIELD_RUNS YIELD_SECONDS=$YIELD_SECONDS)" \
	-benchcmd "$bench_cmd" -goversion "$(go version)" -commit "$commit" \
	-load "before the benchmarks: $load_before; after the experiment: $load_after" \
	-foreign "$bench_foreign" "${phase_args[@]}" -o "$OUT"
if [ -n "${KEEP:-}" ]; then
	mkdir -p "$KEEP"
	cp "$work"/* "$KEEP"/
fi
echo "benchmarks.sh: wrote $OUT" >&2
