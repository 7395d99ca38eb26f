package instrument

// Config selects the names of the injected import and export and the cost
// table. The zero value is valid and means the defaults.
type Config struct {
	ImportModule string     // default "wasmsched"
	ImportName   string     // default "check"; signature () -> ()
	FuelExport   string     // default "wasmsched_fuel": exported mutable i64 global = remaining fuel of the current slice
	Costs        *CostTable // nil = DefaultCosts() (Wasmtime's default rule)
}

// Report summarises one instrumentation.
type Report struct {
	Functions int // defined functions instrumented (the injected helper excluded)
	Loops     int // loop headers given a charge and a check
	Checks    int // check sites inserted (entries of calling functions, loop headers, dynamic bulk ops)
	BytesIn   int
	BytesOut  int
}

// Result is the instrumented module and its report.
type Result struct {
	Wasm   []byte
	Report Report
}

const (
	DefaultImportModule = "wasmsched"
	DefaultImportName   = "check"
	DefaultFuelExport   = "wasmsched_fuel"
)

var defaultCosts = DefaultCosts()

// Instrument rewrites wasm so that it meters its own fuel (see the package
// documentation). It never panics; malformed input yields a *DecodeError,
// an unusable configuration a *ConfigError.
func Instrument(wasm []byte, cfg Config) (res Result, err error) {
	defer func() {
		// Defence in depth: the decoder is bounds-checked everywhere, but a
		// bug must surface as an error, never as a panic in the embedder.
		if p := recover(); p != nil {
			res = Result{}
			err = &DecodeError{Offset: -1, Section: "?", Func: -1, Msg: "internal error: " + sprint(p)}
		}
	}()
	if cfg.ImportModule == "" {
		cfg.ImportModule = DefaultImportModule
	}
	if cfg.ImportName == "" {
		cfg.ImportName = DefaultImportName
	}
	if cfg.FuelExport == "" {
		cfg.FuelExport = DefaultFuelExport
	}
	costs := cfg.Costs
	if costs == nil {
		costs = defaultCosts
	} else if err := costs.validate(); err != nil {
		return Result{}, err
	}
	m, err := parse(wasm)
	if err != nil {
		return Result{}, err
	}
	w := &rewriter{m: m, cfg: cfg, costs: costs, knobs: defaultKnobs}
	out, err := w.run(wasm)
	if err != nil {
		return Result{}, err
	}
	w.report.BytesIn = len(wasm)
	w.report.BytesOut = len(out)
	return Result{Wasm: out, Report: w.report}, nil
}

func sprint(p any) string {
	switch v := p.(type) {
	case error:
		return v.Error()
	case string:
		return v
	}
	return "panic"
}
