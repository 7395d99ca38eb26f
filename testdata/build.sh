#!/bin/sh
# Rebuilds the guest binaries in testdata/. Needs wabt (wat2wasm), clang with
# the wasm32 target and wasm-ld, Debian's wasi-libc and
# libclang-rt-14-dev-wasm32 (for creactor), and Go. The built .wasm files are committed so
# that tests need no tool.
set -eu
cd "$(dirname "$0")"
wat2wasm spin.wat -o spin.wasm
wat2wasm --enable-tail-call fuel.wat -o fuel.wasm
wat2wasm benchguest.wat -o benchguest.wasm
wat2wasm wasienv.wat -o wasienv.wasm
clang --target=wasm32 -O2 -nostdlib -mbulk-memory -Wl,--no-entry -Wl,--export-dynamic \
	-o cguest.wasm cguest/cguest.c
(cd goguest && GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags=-buildid= -o ../goguest.wasm .)
clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -o creactor.wasm creactor/creactor.c
(cd goreactor && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-buildid= -o ../goreactor.wasm .)
ls -l spin.wasm fuel.wasm benchguest.wasm wasienv.wasm cguest.wasm goguest.wasm goreactor.wasm creactor.wasm
