package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/jobs"
)

// dashboardFile is dashboards/wasmsched.json, relative to this package's
// directory, where go test runs.
const dashboardFile = "../../dashboards/wasmsched.json"

// The parts of a Grafana dashboard the checks read.
type (
	dashboard struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []dashVariable `json:"list"`
		} `json:"templating"`
	}
	dashPanel struct {
		Type        string          `json:"type"`
		Title       string          `json:"title"`
		Datasource  json.RawMessage `json:"datasource"`
		Targets     []dashTarget    `json:"targets"`
		Panels      []dashPanel     `json:"panels"` // a collapsed row's
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
		} `json:"fieldConfig"`
	}
	dashTarget struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	}
	dashVariable struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      json.RawMessage `json:"query"` // a string, or {"query": ...} in newer Grafana
		Datasource json.RawMessage `json:"datasource"`
	}
)

// TestDashboardNamesExportedMetrics keeps dashboards/wasmsched.json
// honest: every metric it queries is one a real serve exports, so a
// renamed family breaks this test rather than a panel, silently.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exp := scrapeServeReplicas(t)
	used, problems := checkDashboard(d, exp)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("dashboard queries %d metrics: %s", len(used), strings.Join(used, " "))
}

// TestDashboardCheckCatches proves the checks fail on what they are meant
// to catch, against a fixed exposition rather than a server.
func TestDashboardCheckCatches(t *testing.T) {
	exp := newScrapedFamilies()
	exp.parse(`# TYPE wasmsched_jobs_submitted_total counter
wasmsched_jobs_submitted_total{tenant="default"} 1
# TYPE wasmsched_workers gauge
wasmsched_workers 2
# TYPE wasmsched_job_duration_seconds histogram
wasmsched_job_duration_seconds_bucket{tenant="default",le="+Inf"} 1
wasmsched_job_duration_seconds_sum{tenant="default"} 0.1
wasmsched_job_duration_seconds_count{tenant="default"} 1
`)
	ds := json.RawMessage(`{"type":"prometheus","uid":"${datasource}"}`)
	vars := `{"templating":{"list":[
		{"name":"datasource","type":"datasource","query":"prometheus"},
		{"name":"instance","type":"query","datasource":{"type":"prometheus","uid":"${datasource}"},"query":"label_values(wasmsched_workers, instance)"},
		{"name":"tenant","type":"query","datasource":{"type":"prometheus","uid":"${datasource}"},"query":{"query":"label_values(wasmsched_jobs_submitted_total, tenant)"}}]}}`
	base := func() dashboard {
		var d dashboard
		if err := json.Unmarshal([]byte(vars), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	panel := func(exprs ...string) dashPanel {
		p := dashPanel{Type: "timeseries", Title: "p", Datasource: ds}
		p.FieldConfig.Defaults.Unit = "s"
		for i, e := range exprs {
			p.Targets = append(p.Targets, dashTarget{RefID: string(rune('A' + i)), Expr: e, Datasource: ds})
		}
		return p
	}
	good := `histogram_quantile(0.99, sum by (le) (rate(wasmsched_job_duration_seconds_bucket{instance=~"$instance",tenant=~"$tenant"}[$__rate_interval])))`
	cases := []struct {
		name string
		edit func(*dashboard)
		want string // in some problem; "" for none
	}{
		{"good", func(d *dashboard) { d.Panels = []dashPanel{panel(good)} }, ""},
		{"nested in a row", func(d *dashboard) {
			d.Panels = []dashPanel{{Type: "row", Title: "r", Panels: []dashPanel{panel(good, `wasmsched_bogus_total{instance=~"$instance"}`)}}}
		}, "wasmsched_bogus_total"},
		{"bogus metric", func(d *dashboard) {
			d.Panels = []dashPanel{panel(`sum(rate(wasmsched_jobs_submited_total{instance=~"$instance",tenant=~"$tenant"}[5m]))`)}
		}, "wasmsched_jobs_submited_total"},
		{"histogram's bare name", func(d *dashboard) {
			d.Panels = []dashPanel{panel(`wasmsched_job_duration_seconds{instance=~"$instance",tenant=~"$tenant"}`)}
		}, "wasmsched_job_duration_seconds"},
		{"bogus template metric", func(d *dashboard) {
			d.Panels = []dashPanel{panel(good)}
			d.Templating.List[2].Query = json.RawMessage(`"label_values(wasmsched_tenants, tenant)"`)
		}, "wasmsched_tenants"},
		{"no panels", func(d *dashboard) {}, "no panels"},
		{"no targets", func(d *dashboard) { d.Panels = []dashPanel{panel(good), panel()} }, "no targets"},
		{"no unit", func(d *dashboard) {
			p := panel(good)
			p.FieldConfig.Defaults.Unit = ""
			d.Panels = []dashPanel{p}
		}, "no unit"},
		{"fixed datasource", func(d *dashboard) {
			p := panel(good)
			p.Datasource = json.RawMessage(`{"type":"prometheus","uid":"P1809F7CD0C75ACF3"}`)
			d.Panels = []dashPanel{p}
		}, "datasource"},
		{"no tenant filter", func(d *dashboard) {
			d.Panels = []dashPanel{panel(`sum(rate(wasmsched_jobs_submitted_total{instance=~"$instance"}[5m]))`)}
		}, `tenant=~"$tenant"`},
		{"no instance filter", func(d *dashboard) { d.Panels = []dashPanel{panel(`wasmsched_workers`)} }, `instance=~"$instance"`},
		{"unknown variable", func(d *dashboard) {
			d.Panels = []dashPanel{panel(`wasmsched_workers{instance=~"$instance",x="$replica"}`)}
		}, "$replica"},
		{"unknown function", func(d *dashboard) {
			d.Panels = []dashPanel{panel(`rat(wasmsched_jobs_submitted_total{instance=~"$instance",tenant=~"$tenant"}[5m])`)}
		}, "rat"},
	}
	for _, c := range cases {
		d := base()
		c.edit(&d)
		_, problems := checkDashboard(d, exp)
		all := strings.Join(problems, "\n")
		switch {
		case c.want == "" && len(problems) > 0:
			t.Errorf("%s: unexpected problems:\n%s", c.name, all)
		case c.want != "" && !strings.Contains(all, c.want):
			t.Errorf("%s: no problem naming %q; got:\n%s", c.name, c.want, all)
		}
	}
}

func TestDashboardExprMetrics(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (tenant) (rate(a_total{tenant=~"$tenant",le="x"}[$__rate_interval]))`:          "a_total",
		`histogram_quantile(0.5, sum(rate(b_bucket{instance=~"$instance"}[5m])) by (le, job))`: "b_bucket",
		`sum without (worker) (c) / on (instance) group_left (x) d offset 5m > bool 0`:         "c d",
		`max(e{a="{not}",b='q\'}'}) or label_replace(f, "dst", "$1", "src", "(.*)") # g h`:     "e f",
		`count_values("v", x:rule:rate5m) and topk(3, y[1h:5m] @ start()) unless ${z}`:         "x:rule:rate5m y",
		`SUM BY (k) (m) * 1e3 + 0x1f - Inf / NaN`:                                              "m",
	} {
		ms, _, err := promExprMetrics(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.name)
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("%s: metrics %q, want %q", expr, got, want)
		}
	}
	for _, bad := range []string{`{__name__=~"wasmsched_.*"}`, `sum(rate(x[5m])`, `x{a="b"`, `"open`} {
		if ms, _, err := promExprMetrics(bad); err == nil {
			t.Errorf("%s: no error (metrics %v)", bad, ms)
		}
	}
}

// checkDashboard returns the sorted metric names d queries and what is
// wrong with it against what a server exports.
func checkDashboard(d dashboard, exp *scrapedFamilies) (used, problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := map[string]bool{}
	vars := map[string]bool{}
	var dsVar bool
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			dsVar = true
		}
	}
	if !dsVar {
		bad(`templating: no variable "datasource" of type datasource for prometheus`)
	}
	for _, name := range []string{"instance", "tenant"} {
		if !vars[name] {
			bad("templating: no variable %q", name)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := "variable " + v.Name
		if !usesDatasourceVariable(v.Datasource) {
			bad("%s: datasource %s, want uid ${datasource}", where, v.Datasource)
		}
		q, err := grafanaVariableQuery(v.Query)
		if err != nil {
			bad("%s: %v", where, err)
			continue
		}
		sels, err := grafanaVariableMetrics(q)
		if err != nil {
			bad("%s: %q: %v", where, q, err)
		}
		for _, s := range sels {
			names[s.name] = true
			if !exp.has(s.name) {
				bad("%s: %q names %s, which serve does not export", where, q, s.name)
			}
		}
	}

	var panels int
	var walk func(ps []dashPanel, where string)
	walk = func(ps []dashPanel, where string) {
		for _, p := range ps {
			at := where + "panel " + fmt.Sprintf("%q", p.Title)
			if p.Type == "row" {
				walk(p.Panels, at+" > ")
				continue
			}
			panels++
			if strings.TrimSpace(p.Title) == "" {
				bad("%s: no title", at)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				bad("%s: no unit", at)
			}
			if !usesDatasourceVariable(p.Datasource) {
				bad("%s: datasource %s, want uid ${datasource}", at, p.Datasource)
			}
			if len(p.Targets) == 0 {
				bad("%s: no targets", at)
			}
			for _, tg := range p.Targets {
				at := at + " target " + tg.RefID
				if len(tg.Datasource) > 0 && !usesDatasourceVariable(tg.Datasource) {
					bad("%s: datasource %s, want uid ${datasource}", at, tg.Datasource)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					bad("%s: no expr", at)
					continue
				}
				sels, refs, err := promExprMetrics(tg.Expr)
				if err != nil {
					bad("%s: %q: %v", at, tg.Expr, err)
				}
				for _, r := range refs {
					// $__rate_interval, $__interval and their kin are Grafana's.
					if !vars[r] && !strings.HasPrefix(r, "__") {
						bad("%s: $%s is not a dashboard variable", at, r)
					}
				}
				for _, s := range sels {
					names[s.name] = true
					if !exp.has(s.name) {
						bad("%s: %s is not a metric serve exports", at, s.name)
						continue
					}
					// Panels follow the variables: every series has an
					// instance (Prometheus adds it), and a family with a
					// tenant label is filtered by it.
					want := []string{`instance=~"$instance"`}
					if exp.labels[s.name]["tenant"] {
						want = append(want, `tenant=~"$tenant"`)
					}
					for _, w := range want {
						if !s.matchers[w] {
							bad("%s: %s is not filtered by %s", at, s.name, w)
						}
					}
				}
			}
		}
	}
	walk(d.Panels, "")
	if panels == 0 {
		bad("dashboard: no panels")
	}
	for n := range names {
		used = append(used, n)
	}
	sort.Strings(used)
	return used, problems
}

// usesDatasourceVariable reports whether a panel's, target's or variable's
// datasource is the ${datasource} variable, so the dashboard works with
// whichever Prometheus the importer picks.
func usesDatasourceVariable(raw json.RawMessage) bool {
	var ds struct{ UID string }
	return json.Unmarshal(raw, &ds) == nil && ds.UID == "${datasource}"
}

// grafanaVariableQuery is a query variable's query, which Grafana stores
// as a string or, in newer versions, as an object.
func grafanaVariableQuery(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var o struct{ Query string }
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("query %s: neither a string nor {\"query\": ...}", raw)
	}
	return o.Query, nil
}

// grafanaVariableMetrics returns the metrics of a Prometheus variable query:
// Grafana's label_values(label), label_values(promSelector, label),
// label_names(), metrics(regexp) and query_result(expr).
func grafanaVariableMetrics(q string) ([]promSelector, error) {
	q = strings.TrimSpace(q)
	fn, rest, ok := strings.Cut(q, "(")
	if !ok || !strings.HasSuffix(rest, ")") {
		return nil, errors.New("not a variable query function")
	}
	args := strings.TrimSuffix(rest, ")")
	switch strings.TrimSpace(fn) {
	case "label_values":
		i := strings.LastIndex(args, ",")
		if i < 0 {
			return nil, nil // label_values(label): every series
		}
		sels, _, err := promExprMetrics(args[:i])
		return sels, err
	case "query_result":
		sels, _, err := promExprMetrics(args)
		return sels, err
	case "label_names", "metrics":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown variable query function %q", fn)
}

// promSelector is a metric named by an expression, with its label matchers,
// each as written without spaces (`tenant=~"$tenant"`).
type promSelector struct {
	name     string
	matchers map[string]bool
}

// PromQL's functions and aggregation operators (names followed by "("),
// and its keywords: none of these is a metric. A name unknown here that
// is followed by "(" is reported, catching a misspelt function.
var (
	promFunctions = wordSet(`abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time
		ceil changes clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week
		day_of_year days_in_month deg delta deriv double_exponential_smoothing end exp floor
		histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev
		histogram_stdvar histogram_sum holt_winters hour idelta increase info irate label_join
		label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute
		month pi predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn
		sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt start stddev_over_time
		stdvar_over_time sum_over_time tan tanh time timestamp ts_of_first_over_time
		ts_of_last_over_time ts_of_max_over_time ts_of_min_over_time vector year`)
	promAggregations = wordSet(`avg bottomk count count_values group limit_ratio limitk max min quantile
		stddev stdvar sum topk`)
	promLabelLists = wordSet(`by without on ignoring group_left group_right`) // then "(labels)"
	promKeywords   = wordSet(`and or unless bool offset atan2 inf nan`)
)

func wordSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// grafanaVarRE finds Grafana's variables ($v, ${v}) in a range or a
// label value.
var grafanaVarRE = regexp.MustCompile(`\$\{?([a-zA-Z0-9_]+)`)

var promMatcherRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`" + `)\s*$`)

// promExprMetrics scans a PromQL expression (after Grafana's variables, which
// it also returns) for the metrics it names. It is a lexer, not a parser:
// strings, numbers and durations, label matchers in {}, ranges in [] and
// the label lists of by/without/on/ignoring/group_* are skipped; a name
// followed by "(" is a function; any other name that is not a keyword is
// a metric.
func promExprMetrics(expr string) (sels []promSelector, vars []string, err error) {
	isStart := func(c byte) bool { return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	isName := func(c byte) bool { return isStart(c) || '0' <= c && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(expr) && strings.IndexByte(" \t\r\n", expr[i]) >= 0 {
			i++
		}
		return i
	}
	// skipString returns the index after the string starting at i.
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d", i)
	}
	// closing returns the index after the bracket that closes the one at
	// i, with the top-level pieces between commas.
	closing := func(i int) (int, []string, error) {
		open, shut := expr[i], map[byte]byte{'(': ')', '[': ']', '{': '}'}[expr[i]]
		depth, from := 0, i+1
		var parts []string
		for j := i; j < len(expr); {
			switch c := expr[j]; {
			case c == '"' || c == '\'' || c == '`':
				var err error
				if j, err = skipString(j); err != nil {
					return 0, nil, err
				}
				continue
			case c == open:
				depth++
			case c == shut:
				if depth--; depth == 0 {
					return j + 1, append(parts, expr[from:j]), nil
				}
			case c == ',' && depth == 1:
				parts, from = append(parts, expr[from:j]), j+1
			}
			j++
		}
		return 0, nil, fmt.Errorf("unclosed %q at %d", open, i)
	}
	depth := 0 // of parentheses, to catch an unbalanced expression
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case strings.IndexByte(" \t\r\n", c) >= 0:
			i++
		case c == '#': // a comment, to the end of the line
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			if i, err = skipString(i); err != nil {
				return nil, nil, err
			}
		case c == '$':
			i++
			start := i
			if i < len(expr) && expr[i] == '{' {
				end := strings.IndexByte(expr[i:], '}')
				if end < 0 {
					return nil, nil, fmt.Errorf("unclosed ${ at %d", i-1)
				}
				name, _, _ := strings.Cut(expr[i+1:i+end], ":") // ${v:format}
				vars, i = append(vars, name), i+end+1
				continue
			}
			for i < len(expr) && isName(expr[i]) {
				i++
			}
			vars = append(vars, expr[start:i])
		case c == '[':
			end, _, err := closing(i)
			if err != nil {
				return nil, nil, err
			}
			for _, v := range grafanaVarRE.FindAllStringSubmatch(expr[i:end], -1) {
				vars = append(vars, v[1])
			}
			i = end
		case c == '{':
			return nil, nil, fmt.Errorf("promSelector without a metric name at %d", i)
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, nil, fmt.Errorf("unbalanced ) at %d", i)
			}
			i++
		case '0' <= c && c <= '9' || c == '.': // a number or a duration
			for i < len(expr) && (isName(expr[i]) || expr[i] == '.') {
				i++
			}
		case isStart(c):
			start := i
			for i < len(expr) && isName(expr[i]) {
				i++
			}
			name, lower := expr[start:i], strings.ToLower(expr[start:i])
			next := skipSpace(i)
			switch {
			case promLabelLists[lower]:
				if next < len(expr) && expr[next] == '(' {
					if i, _, err = closing(next); err != nil {
						return nil, nil, err
					}
				}
			case promKeywords[lower], promAggregations[lower], promFunctions[name]:
			case next < len(expr) && expr[next] == '(':
				return nil, nil, fmt.Errorf("unknown function %s at %d", name, start)
			default:
				s := promSelector{name: name, matchers: map[string]bool{}}
				if next < len(expr) && expr[next] == '{' {
					end, parts, err := closing(next)
					if err != nil {
						return nil, nil, err
					}
					for _, p := range parts {
						if strings.TrimSpace(p) == "" {
							continue // a trailing comma
						}
						m := promMatcherRE.FindStringSubmatch(p)
						if m == nil {
							return nil, nil, fmt.Errorf("%s: bad label matcher %q", name, p)
						}
						s.matchers[m[1]+m[2]+m[3]] = true
						for _, v := range grafanaVarRE.FindAllStringSubmatch(m[3], -1) {
							vars = append(vars, v[1])
						}
					}
					i = end
				}
				sels = append(sels, s)
			}
		default: // an operator or a comma
			i++
		}
	}
	if depth != 0 {
		return nil, nil, errors.New("unbalanced (")
	}
	return sels, vars, nil
}

// scrapedFamilies is what a /metrics scrape shows: the kind of each family (from
// its # TYPE line), and the label names of each series name.
type scrapedFamilies struct {
	kinds  map[string]string
	labels map[string]map[string]bool
}

func newScrapedFamilies() *scrapedFamilies {
	return &scrapedFamilies{kinds: map[string]string{}, labels: map[string]map[string]bool{}}
}

var scrapeLabelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

// parse adds a Prometheus text exposition.
func (e *scrapedFamilies) parse(text string) {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			e.kinds[f[2]] = f[3]
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if e.labels[name] == nil {
			e.labels[name] = map[string]bool{}
		}
		if strings.HasPrefix(rest, "{") {
			for _, m := range scrapeLabelRE.FindAllStringSubmatch(rest[:strings.LastIndexByte(rest, '}')+1], -1) {
				e.labels[name][m[1]] = true
			}
		}
	}
}

// has reports whether name is a series name of an exported family: the
// family's own name, or for a histogram x its x_bucket, x_sum and x_count
// (a histogram has no series named x), for a summary also those two.
func (e *scrapedFamilies) has(name string) bool {
	if k, ok := e.kinds[name]; ok {
		return k != "histogram"
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if fam, ok := strings.CutSuffix(name, suffix); ok {
			switch e.kinds[fam] {
			case "histogram":
				return true
			case "summary":
				return suffix != "_bucket"
			}
		}
	}
	return false
}

// scrapeServeReplicas returns what two real serve replicas export once every job
// family has series. Counters by tenant have no series until they count,
// so besides a job run to its end, a long job is handed back by replica a
// as it drains and redelivered to replica b, then cancelled there.
func scrapeServeReplicas(t *testing.T) *scrapedFamilies {
	ns, err := jobs.StartEmbeddedNATS(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown) // after the replicas' cleanups, which run first
	exp := newScrapedFamilies()
	scrape := func(base string) {
		code, _, body := do(t, "GET", base+"/metrics", nil)
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", code, body)
		}
		exp.parse(body)
	}
	submit := func(base, query string) string {
		code, m, raw := do(t, "POST", base+"/jobs?"+query, nil)
		id, _ := m["id"].(string)
		if code != http.StatusAccepted || id == "" {
			t.Fatalf("POST /jobs?%s: %d %s", query, code, raw)
		}
		return id
	}
	// until polls a job until cond holds.
	until := func(base, id, what string, cond func(map[string]any) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			code, m, raw := do(t, "GET", base+"/jobs/"+id, nil)
			if code != http.StatusOK {
				t.Fatalf("GET /jobs/%s: %d %s", id, code, raw)
			}
			if cond(m) {
				return
			}
		}
		t.Fatalf("job %s: not %s after 30 s", id, what)
	}

	a, ha := testServer(t, serveConfig{natsURL: ns.ClientURL(), replica: "a"})
	if j := waitJob(t, ha.URL, submit(ha.URL, "guest=spin&export=spin&args=1000")); j["status"] != "done" {
		t.Fatalf("job ended %v, want done", j)
	}
	// Seconds of guest code, within the default fuel: it runs until
	// cancelled.
	long := submit(ha.URL, "guest=spin&export=spin&args=5000000000")
	until(ha.URL, long, "running on a", func(j map[string]any) bool { return j["status"] == "running" })
	gone, cancel := context.WithCancel(context.Background())
	cancel() // no grace: running jobs are handed back at once
	if finished, handedBack := a.svc.Drain(gone); finished != 0 || handedBack != 1 {
		t.Fatalf("drain: %d finished, %d handed back; want 0, 1", finished, handedBack)
	}
	scrape(ha.URL)

	_, hb := testServer(t, serveConfig{natsURL: ns.ClientURL(), replica: "b"})
	until(hb.URL, long, "running on b", func(j map[string]any) bool {
		return j["status"] == "running" && j["replica"] == "b"
	})
	if code, _, raw := do(t, "DELETE", hb.URL+"/jobs/"+long, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE /jobs/%s: %d %s", long, code, raw)
	}
	waitJob(t, hb.URL, long)
	scrape(hb.URL)
	return exp
}
