package instrument

import "fmt"

// DecodeError reports malformed input: the module is not a binary that this
// package (and wazero) can parse. Offset is the absolute byte offset in the
// input where decoding failed; Section names the section being decoded
// ("header", "type", "code", ...), and Func the defined-function index
// (counting from the first function of the code section) when Section is
// "code", or -1.
type DecodeError struct {
	Offset  int
	Section string
	Func    int
	Msg     string
}

func (e *DecodeError) Error() string {
	if e.Section == "code" && e.Func >= 0 {
		return fmt.Sprintf("instrument: decode %s section, function %d, offset %#x: %s", e.Section, e.Func, e.Offset, e.Msg)
	}
	return fmt.Sprintf("instrument: decode %s section, offset %#x: %s", e.Section, e.Offset, e.Msg)
}

// ConfigError reports an unusable Config or a module that cannot be
// instrumented with it (for example, it already exports FuelExport).
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return "instrument: " + e.Msg }

// LimitError reports a module that declares more than Config.Limits allows
// (or than the binary format allows once the instrumentation's additions
// are counted, for example more than 2^32-1 locals). What names the limit,
// as the Limits field that sets it ("Functions", "Locals", "Elements", ...);
// Value is what the module declares (for a total, the running total where
// it first exceeded Max), and Max the limit in force. Offset is the byte
// offset in the input where the limit was exceeded, or -1 if unknown.
type LimitError struct {
	What   string
	Value  uint64
	Max    uint64
	Offset int
	Msg    string // optional detail
}

func (e *LimitError) Error() string {
	s := fmt.Sprintf("instrument: module exceeds limit %s: %d > %d", e.What, e.Value, e.Max)
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (offset %#x)", e.Offset)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}
