package worker

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestStatTableCoversStats: StatTable names every field of Stats once, in
// declaration order, so that nothing iterating it (publication, sums, the
// metrics collector) can miss or double a statistic.
func TestStatTableCoversStats(t *testing.T) {
	typ := reflect.TypeOf(Stats{})
	if typ.NumField() != int(NumStats) {
		t.Fatalf("Stats has %d fields, StatTable %d", typ.NumField(), NumStats)
	}
	var s Stats
	base := uintptr(unsafe.Pointer(&s))
	for i, info := range StatTable {
		off := uintptr(unsafe.Pointer(info.Field(&s))) - base
		if f := typ.Field(i); f.Offset != off {
			t.Errorf("StatTable[%d] (%s) reads the field at offset %d, want %s at %d", i, info.Metric, off, f.Name, f.Offset)
		}
	}
}

// TestPublishRoundTrip: what the owner counts is what readers load.
func TestPublishRoundTrip(t *testing.T) {
	var c counters
	for i := range c {
		c[i] = uint64(i*7 + 1)
	}
	var p published
	p.store(&c)
	got := p.load()
	for i := range StatTable {
		if v := got.Get(Stat(i)); v != c[i] {
			t.Errorf("%s: loaded %d, stored %d", StatTable[i].Metric, v, c[i])
		}
	}
	var sum Stats
	sum.Add(got)
	sum.Add(got)
	if sum.Polls != 2*got.Polls || sum.DeferredDepth != 2*got.DeferredDepth {
		t.Errorf("Add: %+v", sum)
	}
}
