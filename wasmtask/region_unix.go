//go:build unix

package wasmtask

import (
	"errors"

	"golang.org/x/sys/unix"
)

// region is a reserved range of address space whose first bytes are made
// accessible as a linear memory grows (see memory.go). The reservation is
// PROT_NONE and MAP_NORESERVE: it costs page-table space only, no memory
// and no swap commitment, until pages are made accessible and touched.
type region struct {
	mem []byte // the whole reservation
}

func reserveRegion(n int64) (region, error) {
	if n <= 0 {
		return region{}, nil
	}
	n = (n + pageSize - 1) &^ (pageSize - 1)
	b, err := unix.Mmap(-1, 0, int(n), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return region{}, err
	}
	return region{mem: b}, nil
}

func (r *region) size() int64 { return int64(len(r.mem)) }

// commit makes bytes [from, to) accessible; they read as zeros.
func (r *region) commit(from, to int64) error {
	if to > int64(len(r.mem)) {
		return errors.New("beyond the reservation")
	}
	if to == from {
		return nil
	}
	return unix.Mprotect(r.mem[from:to], unix.PROT_READ|unix.PROT_WRITE)
}

// view is the first n bytes (n within what is committed).
func (r *region) view(n int64) []byte {
	if r.mem == nil {
		return []byte{}
	}
	return r.mem[:n:n]
}

// release unmaps the reservation: its pages go back to the OS at once.
func (r *region) release() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}
