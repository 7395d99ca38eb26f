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

// LimitError reports a module that decodes but whose instrumented form would
// exceed a binary-format limit (for example, more than 2^32-1 locals).
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return "instrument: " + e.Msg }
