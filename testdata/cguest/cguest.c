// cguest: a freestanding C guest (clang --target=wasm32 -nostdlib, see
// testdata/build.sh). It exports CPU-bound functions (a sieve, a hash over a
// buffer, bulk memory copies/fills) and a WASI _start that runs them and
// prints the results through fd_write, so plain and instrumented runs can be
// compared byte for byte.

typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long size_t;

__attribute__((import_module("wasi_snapshot_preview1"), import_name("fd_write")))
int fd_write(int fd, const void *iovs, int iovs_len, int *nwritten);

static unsigned char buf[1 << 16];
static unsigned char buf2[1 << 16];
static unsigned char flags[1 << 20];

// sieve returns the number of primes below n (n <= 2^20).
__attribute__((export_name("sieve")))
u32 sieve(u32 n) {
	if (n > sizeof(flags)) n = sizeof(flags);
	__builtin_memset(flags, 1, n); // memory.fill with a dynamic size
	u32 count = 0;
	for (u32 i = 2; i < n; i++) {
		if (!flags[i]) continue;
		count++;
		for (u32 j = i * 2; j < n; j += i) flags[j] = 0;
	}
	return count;
}

// hash fills the buffer with xorshift data and returns rounds of FNV-1a over it.
__attribute__((export_name("hash")))
u64 hash(u32 rounds) {
	u64 x = 88172645463325252ull;
	for (u32 i = 0; i < sizeof(buf); i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	u64 h = 1469598103934665603ull;
	for (u32 r = 0; r < rounds; r++)
		for (u32 i = 0; i < sizeof(buf); i++) {
			h ^= buf[i];
			h *= 1099511628211ull;
		}
	return h;
}

// memops shuffles the buffer with memory.copy/memory.fill of varying sizes
// and returns a checksum.
__attribute__((export_name("memops")))
u32 memops(u32 rounds) {
	u32 sum = 0;
	for (u32 r = 0; r < rounds; r++) {
		u32 n = (r * 7919u) % (sizeof(buf) / 2) + 1;
		__builtin_memcpy(buf2 + (r % 97), buf + (r % 89), n);
		__builtin_memset(buf + (r % 31), (int)r, n / 3);
		__builtin_memmove(buf + 1, buf, 64); // constant size
		for (u32 i = 0; i < 64; i++) sum = sum * 31 + buf2[(i * 131 + r) % sizeof(buf2)];
	}
	return sum;
}

static int put(char *p, u64 v) {
	char t[24];
	int n = 0;
	do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
	for (int i = 0; i < n; i++) p[i] = t[n - 1 - i];
	return n;
}

static void print(const char *label, u64 v) {
	char line[64];
	int n = 0;
	while (*label) line[n++] = *label++;
	n += put(line + n, v);
	line[n++] = '\n';
	struct { const char *p; size_t n; } iov = { line, (size_t)n };
	int w;
	fd_write(1, &iov, 1, &w);
}

__attribute__((export_name("_start")))
void _start(void) {
	print("sieve(1000000) = ", sieve(1000000));
	print("hash(64) = ", hash(64));
	print("memops(2000) = ", memops(2000));
}
