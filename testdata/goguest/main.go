// Command goguest is a CPU-bound Go program built for GOOS=wasip1 (see
// testdata/build.sh). It does real work with a broad slice of the standard
// library (hashing, sorting, maps, big integers, formatting, compression)
// and prints a deterministic report, so a run of the plain and of the
// instrumented binary can be compared byte for byte.
//
// Usage: goguest [scale] (default 1; work grows linearly).
package main

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	scale := 1
	if len(os.Args) > 1 {
		if n, err := strconv.Atoi(os.Args[1]); err == nil && n > 0 {
			scale = n
		}
	}

	// 1. Pseudo-random data, SHA-256 chained over it.
	data := make([]byte, 64<<10)
	x := uint64(88172645463325252)
	for i := range data {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		data[i] = byte(x)
	}
	sum := sha256.Sum256(nil)
	for i := 0; i < 8*scale; i++ {
		h := sha256.New()
		h.Write(sum[:])
		h.Write(data)
		copy(sum[:], h.Sum(nil))
	}
	fmt.Println("sha256:", hex.EncodeToString(sum[:]))

	// 2. Sort records and fold them.
	type rec struct {
		key string
		val int
	}
	recs := make([]rec, 20000*scale)
	for i := range recs {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		recs[i] = rec{key: strconv.FormatUint(x%100000, 36), val: int(x % 1000)}
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].key != recs[j].key {
			return recs[i].key < recs[j].key
		}
		return recs[i].val < recs[j].val
	})
	fold := crc32.NewIEEE()
	for _, r := range recs {
		fmt.Fprintf(fold, "%s=%d;", r.key, r.val)
	}
	fmt.Printf("sorted: %d records, first %s=%d, last %s=%d, crc %08x\n",
		len(recs), recs[0].key, recs[0].val, recs[len(recs)-1].key, recs[len(recs)-1].val, fold.Sum32())

	// 3. Word counts in a map.
	counts := map[string]int{}
	words := strings.Fields(strings.Repeat("the quick brown fox jumps over the lazy dog and the cat ", 2000*scale))
	for _, w := range words {
		counts[w]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s:%d ", k, counts[k])
	}
	fmt.Println("words:", sb.String())

	// 4. Big integers: factorial and a Fibonacci number.
	f := big.NewInt(1)
	for i := int64(2); i <= int64(300*scale); i++ {
		f.Mul(f, big.NewInt(i))
	}
	a, b := big.NewInt(0), big.NewInt(1)
	for i := 0; i < 2000*scale; i++ {
		a.Add(a, b)
		a, b = b, a
	}
	fmt.Printf("big: fact digits %d, fib mod 1e9+7 = %s\n", len(f.String()), new(big.Int).Mod(a, big.NewInt(1_000_000_007)))

	// 5. Compression round trip.
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	zw.Write(bytes.Repeat(data[:4096], 4*scale))
	zw.Close()
	fmt.Printf("flate: %d -> %d bytes, crc %08x\n", 4096*4*scale, buf.Len(), crc32.ChecksumIEEE(buf.Bytes()))

	// 6. Integer loop.
	var acc uint64
	for i := uint64(0); i < uint64(3_000_000*scale); i++ {
		acc = acc*6364136223846793005 + i
	}
	fmt.Printf("loop: %016x\n", acc)
}
