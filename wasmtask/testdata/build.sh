#!/usr/bin/env bash
# Rebuilds the wasmtask test guests (needs wabt's wat2wasm).
set -euo pipefail
cd "$(dirname "$0")"
for f in guests startloop bigmem wasi memory reactor wazerohost hostloop cmdexport; do
  wat2wasm "$f.wat" -o "$f.wasm"
done
