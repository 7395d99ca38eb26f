package instrument

// CostTable gives the fuel cost of every operator. The zero value charges
// nothing; DefaultCosts returns Wasmtime's default rule.
//
// Costs must be non-negative. PerByte and PerElement must be at most
// MaxUnitCost so that size*unit, computed in i64 by the guest for a 32-bit
// size, can never overflow.
type CostTable struct {
	// Op is the cost of each single-byte opcode (0x00..0xFB).
	Op [256]int64
	// Misc, Vec and Atomic are the costs of the 0xFC-, 0xFD- and
	// 0xFE-prefixed operators, indexed by their LEB128 sub-opcode.
	Misc   [32]int64
	Vec    [512]int64
	Atomic [128]int64
	// PerByte is charged per byte by memory.copy, memory.fill and
	// memory.init, in addition to the operator's own cost.
	PerByte int64
	// PerElement is charged per element by table.copy, table.fill,
	// table.init and table.grow (per element added), in addition to the
	// operator's own cost.
	PerElement int64
	// FunctionEntry is charged on every function entry.
	FunctionEntry int64
}

// MaxUnitCost bounds CostTable.PerByte and PerElement.
const MaxUnitCost = 1<<31 - 1

// maxStaticCost bounds any single operator cost so that sums stay far from
// overflow (a function body has fewer than 2^32 operators).
const maxStaticCost = 1 << 30

// DefaultCosts returns Wasmtime's default fuel rule: 0 for nop, drop, block,
// loop, unreachable, return, else and end; 1 for every other operator; 1 per
// function entry; 1 per byte of memory.copy/fill/init and 1 per element of
// table.copy/fill/init/grow.
func DefaultCosts() *CostTable {
	c := &CostTable{PerByte: 1, PerElement: 1, FunctionEntry: 1}
	for i := range c.Op {
		c.Op[i] = 1
	}
	for _, op := range []byte{opNop, opDrop, opBlock, opLoop, opUnreachable, opReturn, opElse, opEnd} {
		c.Op[op] = 0
	}
	for i := range c.Misc {
		c.Misc[i] = 1
	}
	for i := range c.Vec {
		c.Vec[i] = 1
	}
	for i := range c.Atomic {
		c.Atomic[i] = 1
	}
	return c
}

func (c *CostTable) validate() error {
	bad := func(v int64) bool { return v < 0 || v > maxStaticCost }
	for _, v := range c.Op {
		if bad(v) {
			return &ConfigError{Msg: "operator cost out of range [0, 2^30]"}
		}
	}
	for _, t := range [][]int64{c.Misc[:], c.Vec[:], c.Atomic[:]} {
		for _, v := range t {
			if bad(v) {
				return &ConfigError{Msg: "operator cost out of range [0, 2^30]"}
			}
		}
	}
	if bad(c.FunctionEntry) {
		return &ConfigError{Msg: "function entry cost out of range [0, 2^30]"}
	}
	if c.PerByte < 0 || c.PerByte > MaxUnitCost || c.PerElement < 0 || c.PerElement > MaxUnitCost {
		return &ConfigError{Msg: "per-unit cost out of range [0, 2^31-1]"}
	}
	return nil
}
