package instrument

// Single-byte opcodes the instrumenter treats specially.
const (
	opUnreachable        = 0x00
	opNop                = 0x01
	opBlock              = 0x02
	opLoop               = 0x03
	opIf                 = 0x04
	opElse               = 0x05
	opTry                = 0x06 // legacy exception handling
	opCatch              = 0x07 // legacy
	opThrow              = 0x08
	opRethrow            = 0x09 // legacy
	opThrowRef           = 0x0a
	opEnd                = 0x0b
	opBr                 = 0x0c
	opBrIf               = 0x0d
	opBrTable            = 0x0e
	opReturn             = 0x0f
	opCall               = 0x10
	opCallIndirect       = 0x11
	opReturnCall         = 0x12
	opReturnCallIndirect = 0x13
	opCallRef            = 0x14
	opReturnCallRef      = 0x15
	opDelegate           = 0x18 // legacy
	opCatchAll           = 0x19 // legacy
	opDrop               = 0x1a
	opSelect             = 0x1b
	opSelectT            = 0x1c
	opTryTable           = 0x1f
	opLocalGet           = 0x20
	opLocalSet           = 0x21
	opLocalTee           = 0x22
	opGlobalGet          = 0x23
	opGlobalSet          = 0x24
	opTableGet           = 0x25
	opTableSet           = 0x26
	opLoadFirst          = 0x28 // i32.load: the loads and stores up to opStoreLast take a memarg
	opStoreLast          = 0x3e // i64.store32
	opMemorySize         = 0x3f
	opMemoryGrow         = 0x40
	opI32Const           = 0x41
	opI64Const           = 0x42
	opF32Const           = 0x43
	opF64Const           = 0x44
	opNumericFirst       = 0x45 // i32.eqz: the numeric operators up to opNumericLast take no immediate
	opI64Eqz             = 0x50
	opI64Ne              = 0x52
	opI64LtS             = 0x53
	opI32Add             = 0x6a
	opI32Sub             = 0x6b
	opI32Mul             = 0x6c
	opI64Add             = 0x7c
	opI64Sub             = 0x7d
	opI64Mul             = 0x7e
	opI64ExtendI32U      = 0xad
	opNumericLast        = 0xc4 // i64.extend32_s
	opRefNull            = 0xd0
	opRefIsNull          = 0xd1
	opRefFunc            = 0xd2
	opRefAsNonNull       = 0xd4
	opBrOnNull           = 0xd5
	opBrOnNonNull        = 0xd6
	opPrefixMisc         = 0xfc
	opPrefixVec          = 0xfd
	opPrefixAtomic       = 0xfe
)

// 0xFC sub-opcodes (0 to miscTruncSatLast are the non-trapping
// conversions, which take no immediate).
const (
	miscTruncSatLast = 7 // i64.trunc_sat_f64_u
	miscMemoryInit   = 8
	miscDataDrop     = 9
	miscMemoryCopy   = 10
	miscMemoryFill   = 11
	miscTableInit    = 12
	miscElemDrop     = 13
	miscTableCopy    = 14
	miscTableGrow    = 15
	miscTableSize    = 16
	miscTableFill    = 17
)

// 0xFD (SIMD) sub-opcodes, named by the immediates they take (the others
// take none).
const (
	vecMemargLast   = 11 // v128.load (0) to v128.store (11): memarg
	vecConst        = 12 // v128.const: 16 bytes
	vecShuffle      = 13 // i8x16.shuffle: 16 lane indices
	vecLaneFirst    = 21 // i8x16.extract_lane_s (21) to f64x2.replace_lane (34): a lane index
	vecLaneLast     = 34
	vecMemLaneFirst = 84 // v128.load8_lane (84) to v128.store64_lane (91): memarg and a lane index
	vecMemLaneLast  = 91
	vecLoad32Zero   = 92 // memarg
	vecLoad64Zero   = 93 // memarg
)

// 0xFE (threads) sub-opcodes: 0 to 2 (memory.atomic.notify and the waits)
// take a memarg, atomic.fence a reserved byte, and the accesses a memarg.
// The others are undefined.
const (
	atomicFence       = 0x03
	atomicAccessFirst = 0x10 // i32.atomic.load
	atomicAccessLast  = 0x4e // i64.atomic.rmw32.cmpxchg_u
)

// Value type codes (an abstract heap type has the code of its nullable
// reference type).
const (
	valI32       = 0x7f
	valI64       = 0x7e
	valF32       = 0x7d
	valF64       = 0x7c
	valV128      = 0x7b
	valFuncRef   = 0x70
	valExternRef = 0x6f
	valExnRef    = 0x69
	valRefNull   = 0x63 // (ref null ht)
	valRef       = 0x64 // (ref ht)
	blockTypeNil = 0x40
)

// Abstract heap types, as the s33 values that encode them.
const (
	heapFunc   = -0x10
	heapExtern = -0x11
	heapExn    = -0x17
)

// Catch clause kinds of try_table.
const (
	catchKindTag    = 0 // catch tag label
	catchKindTagRef = 1 // catch_ref tag label
	catchKindAll    = 2 // catch_all label
	catchKindAllRef = 3 // catch_all_ref label
)

// Other codes of the binary format.
const (
	typeFunc      = 0x60 // func type form
	typeRecGroup  = 0x4e // rec group of types
	externFunc    = 0    // import and export kinds
	externTable   = 1
	externMemory  = 2
	externGlobal  = 3
	externTag     = 4
	limitsHasMax  = 1    // flags of a table's or memory's limits
	limitsShared  = 2    // (threads)
	tableHasInit  = 0x40 // table type prefix: an initializer expression follows
	globalMutable = 1
	// memargHasMemIdx is the flag in a memarg's alignment field saying that
	// a memory index follows (multi-memory).
	memargHasMemIdx = 0x40
	maxU32          = 1<<32 - 1
)
