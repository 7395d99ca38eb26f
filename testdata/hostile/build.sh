#!/bin/sh
# Rebuilds the hostile modules (needs wabt's wat2wasm, and Go). The .wasm
# files are committed, so tests need no tool. Each attack's source is its
# .wat here, or gen/main.go for the generated ones (the decode bombs, the
# 100,000-function module, the WASI sweep). What each one does and what
# the host must answer is in hostile_test.go (cmd/wasmsched).
set -eu
cd "$(dirname "$0")"
(cd ../.. && go run ./testdata/hostile/gen)
for f in *.wat; do
	wat2wasm "$f" -o "${f%.wat}.wasm"
done
ls -l *.wasm
