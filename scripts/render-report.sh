#!/usr/bin/env bash
# Renders an HTML report of `wasmsched compare --report FILE.html` to a PNG
# in headless Chromium, to look at it as a reader would (the same flags as
# internal/compare's TestRenderHTML).
#
# Usage: scripts/render-report.sh REPORT.html [OUT.png]
#   OUT.png defaults to REPORT.png beside the report.
#
# Environment (defaults in brackets):
#   SIZE [1200,4800]   the window, WIDTH,HEIGHT in CSS pixels: the screenshot
#                      is the window, so make it tall enough for the page
#                      (about 1,400 px per scenario)
#   CHROMIUM []        the browser binary (default: chromium, chromium-browser,
#                      google-chrome or google-chrome-stable from PATH)
#
# Chromium is not needed by anything else in the project; on Debian:
# apt-get install chromium.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
report=$1
out=${2:-${report%.html}.png}
size=${SIZE:-1200,4800}
if [ ! -r "$report" ]; then
	echo "render-report.sh: cannot read $report" >&2
	exit 2
fi

browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
	for name in chromium chromium-browser google-chrome google-chrome-stable; do
		if command -v "$name" >/dev/null 2>&1; then
			browser=$name
			break
		fi
	done
fi
if [ -z "$browser" ] || ! command -v "$browser" >/dev/null 2>&1; then
	echo "render-report.sh: no Chromium found${browser:+ at $browser} (chromium, chromium-browser, google-chrome in PATH; or set CHROMIUM); apt-get install chromium" >&2
	exit 1
fi

abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
report=$(abs "$report")
out=$(abs "$out")

# A profile of its own, thrown away: nothing is read from or left in the
# user's browser profile.
profile=$(mktemp -d "${TMPDIR:-/tmp}/render-report.XXXXXX")
trap 'rm -rf "$profile"' EXIT

# Chromium logs harmless D-Bus errors in containers; keep its output for
# a failure only.
if ! log=$("$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$profile" --screenshot="$out" --window-size="$size" \
	"file://$report" 2>&1) || [ ! -s "$out" ]; then
	printf '%s\n' "$log" >&2
	echo "render-report.sh: $browser did not write $out" >&2
	exit 1
fi
echo "render-report.sh: $out ($size)" >&2
