#!/usr/bin/env bash
# Runs the CI entry point (.ci/run) several times in a row while busy loops
# keep every core occupied, as on a CI machine shared with other work. CI
# must be green under load, so this is the check for timing assumptions in
# the tests.
#
#   scripts/ci-under-load.sh [-n RUNS]
#
# RUNS defaults to $CI_UNDER_LOAD_RUNS, else 10. One busy process per core
# (nproc) runs for the whole loop; they are killed when the script exits,
# whether it finishes, fails or is interrupted. Each run prints one line
# (pass or fail, duration); the log of a failing run is kept (in
# $CI_UNDER_LOAD_LOGDIR, else a new directory under $TMPDIR or /tmp), the
# log of a passing one is deleted. Exits 0 only if every run passed, after
# a summary "K/N passed". Works from any directory.
#
# Test results are not cached across runs (GOFLAGS gets -count=1): a run
# that only replays the previous run's cached results proves nothing. The
# build cache is kept.
set -uo pipefail

usage() {
	echo "usage: $0 [-n RUNS]   (RUNS default: \$CI_UNDER_LOAD_RUNS, else 10)"
}

runs=${CI_UNDER_LOAD_RUNS:-10}
while getopts ':n:h' opt; do
	case $opt in
	n) runs=$OPTARG ;;
	h)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
if [[ $# -gt 0 ]]; then
	usage >&2
	exit 2
fi
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 1)); then
	echo "$0: RUNS must be a positive integer, got '$runs'" >&2
	exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 2
cd "$root" || exit 2
if [[ -n ${CI_UNDER_LOAD_LOGDIR:-} ]]; then
	logdir=$CI_UNDER_LOAD_LOGDIR
	mkdir -p "$logdir" || exit 2
	own_logdir=false
else
	logdir=$(mktemp -d "${TMPDIR:-/tmp}/ci-under-load.XXXXXX") || exit 2
	own_logdir=true
fi

export GOFLAGS="${GOFLAGS:+$GOFLAGS }-count=1"

# Job control: every background job gets a process group of its own, so a
# run of .ci/run (go test and the test binaries it starts) can be stopped
# as a whole, and Ctrl-C reaches this script, whose trap does the stopping.
set -m

busy=()
ci=""
passed=0
done_runs=0

cleanup() {
	trap - EXIT INT TERM
	if [[ -n $ci ]]; then
		kill -TERM -- "-$ci" 2>/dev/null
		wait "$ci" 2>/dev/null
	fi
	if ((${#busy[@]} > 0)); then
		kill "${busy[@]}" 2>/dev/null
		wait "${busy[@]}" 2>/dev/null
	fi
}
interrupted() {
	echo
	echo "interrupted during run $((done_runs + 1)) of $runs: $passed/$done_runs completed runs passed; logs of failing runs and of the interrupted one in $logdir"
	cleanup
	exit "$1"
}
trap cleanup EXIT
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

cores=$(nproc)
for _ in $(seq "$cores"); do
	(while :; do :; done) &
	busy+=($!)
done
echo "ci-under-load: $runs run(s) of .ci/run in $root, $cores busy loop(s) (pids ${busy[*]}); logs in $logdir"

for i in $(seq "$runs"); do
	log="$logdir/run-$i.log"
	start=$SECONDS
	bash .ci/run >"$log" 2>&1 &
	ci=$!
	wait "$ci"
	rc=$?
	ci=""
	took=$((SECONDS - start))
	done_runs=$i
	if ((rc == 0)); then
		passed=$((passed + 1))
		rm -f "$log"
		printf 'run %d/%d: PASS in %ds\n' "$i" "$runs" "$took"
	else
		printf 'run %d/%d: FAIL (exit %d) in %ds; log %s\n' "$i" "$runs" "$rc" "$took" "$log"
		grep -E -e '^(--- FAIL|FAIL|panic:)' -e '_test\.go:[0-9]+:' "$log" | head -n 20 | sed 's/^/    /'
	fi
done

echo "$passed/$runs passed"
if ((passed == runs)); then
	if $own_logdir; then
		rmdir "$logdir" 2>/dev/null
	fi
	exit 0
fi
echo "failing logs in $logdir"
exit 1
