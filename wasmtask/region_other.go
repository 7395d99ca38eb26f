//go:build !unix

package wasmtask

import "errors"

// region is a linear memory's backing store where mmap is not available:
// a Go slice, allocated (and zeroed) up to the reservation on first use.
// Grows do not copy (the capacity is the reservation); memory goes back
// to the OS when Go's scavenger returns it.
type region struct {
	mem      []byte
	reserved int64
}

func reserveRegion(n int64) (region, error) { return region{reserved: max(n, 0)}, nil }

func (r *region) size() int64 { return r.reserved }

func (r *region) commit(from, to int64) error {
	if to > r.reserved {
		return errors.New("beyond the reservation")
	}
	if int64(cap(r.mem)) < to {
		// Allocate the whole reservation's capacity lazily in steps of
		// doubling, copying what exists: the price of no mmap.
		c := min(max(to, 2*int64(cap(r.mem))), r.reserved)
		m := make([]byte, len(r.mem), c)
		copy(m, r.mem)
		r.mem = m
	}
	r.mem = r.mem[:to]
	return nil
}

func (r *region) view(n int64) []byte {
	if r.mem == nil {
		return []byte{}
	}
	return r.mem[:n:n]
}

func (r *region) release() { r.mem = nil }
