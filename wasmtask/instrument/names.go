package instrument

import "unicode/utf8"

// Name subsection ids that wazero decodes (it skips the others).
const (
	nameModule = 0
	nameFuncs  = 1
	nameLocals = 2
)

// custom appends custom section s to out, or drops it: every custom section
// under Config.StripCustom; a "name" section after the first; a name
// section that does not parse strictly (see names); a section other than
// "name" with no content after its name; and, in module order, each other
// section that does not fit in what remains of the Config.MaxCustomBytes
// budget. A kept name section is re-encoded; other
// kept sections are copied byte for byte. A section whose own name is
// malformed (cut off, or not UTF-8) makes the module malformed, as in
// wazero and the spec, whatever becomes of the section.
func (w *rewriter) custom(out []byte, s section) ([]byte, error) {
	r := newReader(s)
	name := r.name()
	if r.err == nil && !utf8.Valid(name) {
		r.pos = 0
		r.fail("custom section name is not valid UTF-8")
	}
	if r.err != nil {
		return nil, r.err
	}
	rep := &w.report
	drop := func() ([]byte, error) {
		rep.CustomDropped++
		rep.CustomDroppedBytes += len(s.payload)
		return out, nil
	}
	isName := string(name) == "name"
	switch {
	case w.cfg.StripCustom:
		if isName && rep.Name == NameAbsent {
			rep.Name = NameStripped
		}
		return drop()
	case isName:
		if w.nameSeen {
			// wazero rejects a second name section; the spec says a
			// module should have at most one. Only the first counts.
			return drop()
		}
		w.nameSeen = true
		p, reason := w.names(r)
		if reason != "" {
			rep.Name = NameDropped
			rep.NameDropReason = reason
			return drop()
		}
		rep.Name = NameReencoded
		return appendSection(out, secCustom, p), nil
	}
	if r.eof() {
		// Nothing but a name. wazero (with debug info on, its default)
		// rejects such a section at the end of a module (its read of zero
		// bytes at EOF fails), and dropping sections after it can put it
		// there.
		return drop()
	}
	budget := w.cfg.MaxCustomBytes
	if budget == 0 {
		budget = DefaultMaxCustomBytes
	}
	if len(s.payload) > budget-rep.CustomKeptBytes {
		return drop()
	}
	rep.CustomKept++
	rep.CustomKeptBytes += len(s.payload)
	return appendSection(out, secCustom, s.payload), nil
}

// names parses the rest of a "name" section (r is past the section's name)
// and returns the section's payload re-encoded, with the function indices
// of the function and local name maps shifted past the injected import, or
// the reason it does not parse. Subsections 0 (module name), 1 (function
// names) and 2 (local names) are parsed strictly: each at most once, sizes
// exact, every count bounded by the bytes that remain, names valid UTF-8,
// function indices in range and, in each map, strictly increasing, as the
// spec requires. Other subsections are left out (they must still lie within
// the section). The output has the kept subsections in increasing id order.
func (w *rewriter) names(r *reader) ([]byte, string) {
	var sub [nameLocals + 1][]byte // re-encoded contents
	var seen [nameLocals + 1]bool
	q := w.nameBuf[:0]
	dropped := 0
	for !r.eof() {
		id := r.byte()
		size := r.u32()
		data := r.bytes(int(size))
		if r.err != nil {
			return nil, "subsection size exceeds the section"
		}
		if id > nameLocals {
			dropped++
			continue
		}
		if seen[id] {
			return nil, "duplicate subsection"
		}
		seen[id] = true
		start := len(q)
		var bad string
		q, bad = w.nameSubsection(q, id, data)
		if bad != "" {
			w.nameBuf = q
			return nil, subsectionName(id) + ": " + bad
		}
		sub[id] = q[start:len(q):len(q)]
	}
	p := appendName(make([]byte, 0, len(q)+nameSectionOverhead), "name")
	for id, b := range sub {
		if seen[id] {
			p = appendSection(p, byte(id), b)
		}
	}
	w.nameBuf = q
	w.report.NameSubsectionsDropped = dropped
	return p, ""
}

// nameSectionOverhead bounds what a re-encoded name section holds besides
// its subsections' contents: its own name, and the three subsections' ids
// and sizes.
const nameSectionOverhead = 1 + len("name") + (nameLocals+1)*(1+maxLEB32)

// nameReader reads a name subsection. bad says why the subsection does
// not parse strictly, when the reader's decoding has not failed.
type nameReader struct {
	reader
	bad string
}

// name reads a name, which must be valid UTF-8 (wazero requires it).
func (nr *nameReader) name() []byte {
	b := nr.reader.name()
	if nr.err == nil && !utf8.Valid(b) {
		nr.bad = "name not valid UTF-8"
	}
	return b
}

// ok reports whether the subsection parses so far.
func (nr *nameReader) ok() bool { return nr.err == nil && nr.bad == "" }

// nameSubsection appends to q the re-encoded contents of subsection id
// (module, function or local names), given as data, and returns the reason
// it does not parse, if it does not.
func (w *rewriter) nameSubsection(q []byte, id byte, data []byte) ([]byte, string) {
	nr := &nameReader{reader: reader{b: data}}
	switch id {
	case nameModule:
		q = appendBytes(q, nr.name())
	case nameFuncs, nameLocals:
		q = w.nameMap(q, nr, id == nameLocals)
	}
	if de, ok := nr.err.(*DecodeError); ok {
		return q, de.Msg
	}
	if nr.bad == "" && !nr.eof() {
		return q, "subsection size mismatch"
	}
	return q, nr.bad
}

// nameMap appends a re-encoded function name map or, with locals, the
// indirect map of local names: function indices in range, strictly
// increasing, and shifted.
func (w *rewriter) nameMap(q []byte, nr *nameReader, locals bool) []byte {
	nFuncs := w.m.nFuncs()
	n := nr.count("name map")
	q = appendU32(q, n)
	prev := int64(-1)
	for i := uint32(0); i < n && nr.ok(); i++ {
		idx := nr.u32()
		if nr.err == nil && (idx >= nFuncs || int64(idx) <= prev) {
			nr.bad = "function index out of range or out of order"
			break
		}
		prev = int64(idx)
		q = appendU32(q, w.outFunc(idx))
		if locals {
			q = localNameMap(q, nr)
		} else {
			q = appendBytes(q, nr.name())
		}
	}
	return q
}

// localNameMap appends one function's re-encoded map of local names: local
// indices strictly increasing.
func localNameMap(q []byte, nr *nameReader) []byte {
	k := nr.count("local name map")
	q = appendU32(q, k)
	prev := int64(-1)
	for j := uint32(0); j < k && nr.ok(); j++ {
		l := nr.u32()
		if nr.err == nil && int64(l) <= prev {
			nr.bad = "local index out of order"
			break
		}
		prev = int64(l)
		q = appendU32(q, l)
		q = appendBytes(q, nr.name())
	}
	return q
}

func subsectionName(id byte) string {
	switch id {
	case nameModule:
		return "module name"
	case nameFuncs:
		return "function names"
	}
	return "local names"
}

// appendBytes appends b as a name (length-prefixed).
func appendBytes(p, b []byte) []byte {
	p = appendU32(p, uint32(len(b)))
	return append(p, b...)
}
