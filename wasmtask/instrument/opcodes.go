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
	opI32Const           = 0x41
	opI64Const           = 0x42
	opF32Const           = 0x43
	opF64Const           = 0x44
	opI64LtS             = 0x53
	opI32Add             = 0x6a
	opI32Sub             = 0x6b
	opI32Mul             = 0x6c
	opI64Add             = 0x7c
	opI64Sub             = 0x7d
	opI64Mul             = 0x7e
	opI64ExtendI32U      = 0xad
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

// 0xFC sub-opcodes.
const (
	miscMemoryInit = 8
	miscDataDrop   = 9
	miscMemoryCopy = 10
	miscMemoryFill = 11
	miscTableInit  = 12
	miscElemDrop   = 13
	miscTableCopy  = 14
	miscTableGrow  = 15
	miscTableSize  = 16
	miscTableFill  = 17
)

// Value type codes.
const (
	valI32       = 0x7f
	valI64       = 0x7e
	valRefNull   = 0x63 // (ref null ht)
	valRef       = 0x64 // (ref ht)
	blockTypeNil = 0x40
)
