package instrument

// reader is a bounds-checked cursor over a byte slice. Every read reports
// failure through r.err (the first error wins) so that decoding code can run
// straight-line and check once; reads after an error return zero values.
type reader struct {
	b       []byte
	pos     int
	base    int // absolute offset of b[0] in the module, for error messages
	section string
	err     error
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = &DecodeError{Offset: r.base + r.pos, Section: r.section, Msg: msg}
	}
}

func (r *reader) eof() bool { return r.pos >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.pos {
		r.fail("unexpected end")
		return nil
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s
}

// u32 decodes an unsigned LEB128 value of at most 5 bytes whose unused bits
// are zero, exactly the rule wazero (and the spec) applies.
func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	var v uint32
	var s uint
	for i := 0; i < 5; i++ {
		if r.pos >= len(r.b) {
			r.fail("unexpected end of LEB128")
			return 0
		}
		c := r.b[r.pos]
		r.pos++
		if c < 0x80 {
			if i == 4 && c&0xf0 != 0 {
				r.fail("u32 LEB128 overflow")
				return 0
			}
			return v | uint32(c)<<s
		}
		v |= uint32(c&0x7f) << s
		s += 7
	}
	r.fail("u32 LEB128 too long")
	return 0
}

// signed decodes a signed LEB128 value of at most `bits` bits. The unused
// bits of a maximal-length encoding are not checked: wazero checks only some
// of them, and every signed immediate is copied unchanged, so being more
// lenient than wazero can never make an invalid module valid.
func (r *reader) signed(bits uint) int64 {
	if r.err != nil {
		return 0
	}
	maxLen := int((bits + 6) / 7)
	var v int64
	var s uint
	for i := 0; i < maxLen; i++ {
		if r.pos >= len(r.b) {
			r.fail("unexpected end of LEB128")
			return 0
		}
		c := r.b[r.pos]
		r.pos++
		v |= int64(c&0x7f) << s
		s += 7
		if c < 0x80 {
			if s < 64 && c&0x40 != 0 {
				v |= -1 << s
			}
			return v
		}
	}
	r.fail("signed LEB128 too long")
	return 0
}

func (r *reader) s32() int32 { return int32(r.signed(32)) }
func (r *reader) s33() int64 { return r.signed(33) }
func (r *reader) s64() int64 { return r.signed(64) }

func (r *reader) name() []byte {
	n := r.u32()
	return r.bytes(int(n))
}

// count reads the length of a vector whose elements take at least one byte
// each, and rejects it if it exceeds the bytes that remain: such a count is
// malformed, and a decoder that preallocates by it (wazero does) would
// allocate without bound. what names the vector for the error message.
func (r *reader) count(what string) uint32 {
	start := r.pos
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.pos) {
		r.pos = start
		r.fail(what + " count exceeds the remaining bytes")
		return 0
	}
	return n
}

// limit records a *LimitError if v exceeds max (and no error is recorded
// yet), and reports whether v is within the limit.
func (r *reader) limit(what string, v, max uint64) bool {
	if r.err != nil {
		return false
	}
	if v > max {
		r.err = &LimitError{What: what, Value: v, Max: max, Offset: r.base + r.pos}
		return false
	}
	return true
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// maxLEB32 is the length of the longest LEB128 encoding of a u32.
const maxLEB32 = 5

func sizeU32(v uint32) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
