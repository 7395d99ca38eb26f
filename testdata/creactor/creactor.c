// creactor: a C reactor on Debian's wasi-libc, built with
//
//	clang --target=wasm32-wasi -mexec-model=reactor (see testdata/build.sh)
//
// The host calls _initialize once (wasi-libc's crt1-reactor.o: it runs the
// C constructors), then its exports as often as it likes; the C heap and
// globals survive from one call to the next.
//
// Exports (the same as testdata/goreactor's):
//   - next() int64: the call counter, incremented (state across calls);
//   - spin(n int64) int64: n steps of an LCG, CPU-bound (preemption);
//   - async_add(a, b int64) int64: calls the host's test.add_async, which
//     suspends the guest while the host computes a+b;
//   - alloc(n int32) int32, free(p int32) and greet(p, n int32) int64: the
//     (ptr, len) convention of wasmtask's CallBytes, on malloc — greet
//     answers "hello, <input>" as (ptr << 32) | len.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int64_t counter;
static int initialized;

__attribute__((constructor)) static void init(void) { initialized++; }

__attribute__((import_module("test"), import_name("add_async")))
int64_t add_async(int64_t a, int64_t b);

__attribute__((export_name("next"))) int64_t next(void) {
	return initialized == 1 ? ++counter : -1; // -1: the constructor did not run exactly once
}

__attribute__((export_name("spin"))) int64_t spin(int64_t n) {
	uint64_t acc = 1;
	for (; n != 0; n--) acc = acc * 6364136223846793005ULL + (uint64_t)n;
	return (int64_t)acc;
}

__attribute__((export_name("async_add"))) int64_t async_add_export(int64_t a, int64_t b) {
	return add_async(a, b);
}

__attribute__((export_name("alloc"))) int32_t alloc(int32_t n) {
	return (int32_t)(uintptr_t)malloc(n > 0 ? (size_t)n : 1);
}

__attribute__((export_name("free"))) void free_export(int32_t p) { free((void *)(uintptr_t)p); }

__attribute__((export_name("greet"))) int64_t greet(int32_t p, int32_t n) {
	static const char prefix[] = "hello, ";
	size_t k = sizeof prefix - 1;
	char *out = malloc(k + (size_t)n);
	if (out == NULL) return 0;
	memcpy(out, prefix, k);
	memcpy(out + k, (const void *)(uintptr_t)p, (size_t)n);
	free((void *)(uintptr_t)p);
	return (int64_t)((uint64_t)(uintptr_t)out << 32 | (uint64_t)(k + (size_t)n));
}
