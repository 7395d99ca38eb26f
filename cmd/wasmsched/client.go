package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The job service's client commands: submit, status, cancel. What they
// read from the server is untrusted like their flags: answers are read up
// to a cap, the IDs it returns are checked before they go into a URL, and
// control characters in what is printed are escaped.

const clientCommon = `
Connection flags (all three commands):
  --server URL       the job service; default http://127.0.0.1:8470, or
                     $WASMSCHED_SERVER when the flag is not given
  --token-file FILE  bearer token (surrounding whitespace trimmed), sent as
                     "Authorization: Bearer TOKEN"; default $WASMSCHED_TOKEN
  --tenant NAME      sent as the X-Wasmsched-Tenant header (only when given):
                     1 to 64 letters, digits, - or _
  --json             print the server's JSON answer (indented) instead of a summary
  --timeout D        limit on each HTTP request (default 30s)

Exit status:
  0  success (submit --wait: the job ended "done")
  1  the job ended "failed" or "cancelled" (submit --wait), waiting was
     interrupted, the server could not be reached or did not answer within
     --timeout, or it answered an error, printed on stderr as
     "wasmsched COMMAND: 429 Too Many Requests: MESSAGE"
  2  usage error: an unknown or invalid flag, a missing or unreadable FILE
     or one over 1 GiB, FILE and --guest both or neither, a bad --server URL
     or job ID

flags:
`

const submitUsage = `usage: wasmsched submit [flags] FILE.wasm [-- argv...]
       wasmsched submit [flags] --guest NAME [-- argv...]

Submits a job to a wasmsched job service: uploads FILE.wasm, or names a
guest embedded in the server (spin, cguest, goguest). A WASI command runs
its _start with argv after "--"; --export FN calls an exported function
with --args instead (typed by the server from its signature).

Prints the job's ID alone on the first line, so that
  id=$(wasmsched submit --guest cguest | head -1)
works. With --wait it then polls the job (every 20ms, backing off to
500ms) until it ends and prints its status; --timeout bounds each poll,
not the wait. Ctrl-C stops waiting, not the job: it stays on the server
(wasmsched status ID, wasmsched cancel ID). With --json it prints the
server's JSON instead: the accepted job, or with --wait the ended one.
` + clientCommon

const statusUsage = `usage: wasmsched status [flags] ID

Prints a job's state: ID, status (queued, running, done, failed,
cancelled), tenant, guest/export, result or error (with its kind), how
long it was queued and ran, and the guest's stdout and stderr, indented.
A finished job is a success (exit 0) whatever its status.
` + clientCommon

const cancelUsage = `usage: wasmsched cancel [flags] ID

Asks the server to cancel a queued or running job, which then ends
"cancelled". A job that already finished cannot be: the server answers 409
Conflict (exit 1).
` + clientCommon

// Limits on what the client reads, against a hostile or broken server or
// an argument that is not what it should be.
const (
	maxAnswer        = 8 << 20 // bytes of one answer read at most
	maxModuleFile    = 1 << 30 // bytes of FILE.wasm
	maxJobIDLen      = 128
	maxSubmitQuery   = 32 << 10 // bytes of the encoded query: serve caps a request's head at 64 KiB
	defaultServerURL = "http://127.0.0.1:8470"
)

func cmdSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	s, code := parseSubmit(args, stdout, stderr)
	if s == nil {
		return code
	}
	if s.module != nil {
		defer s.module.Close()
	}
	defer s.close()
	return s.run(ctx)
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, id, code := parseIDCommand("status", statusUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	defer c.close()
	a, err := c.do(ctx, http.MethodGet, "/jobs/"+id, nil, nil, 0)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(a.body)
	}
	j, err := decodeClientJob(a.body)
	if err != nil {
		return c.fail(err)
	}
	printClientJob(c.stdout, j)
	return exitOK
}

func cmdCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, id, code := parseIDCommand("cancel", cancelUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	defer c.close()
	a, err := c.do(ctx, http.MethodDelete, "/jobs/"+id, nil, nil, 0)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(a.body)
	}
	// Not the answer's job: it is the job as the cancel found it, still
	// running, and printed it would read as if the cancel had failed.
	fmt.Fprintf(c.stdout, "cancel accepted for job %s: it ends \"cancelled\" (wasmsched status %[1]s)\n", id)
	return exitOK
}

// parseIDCommand parses the flags and the one ID of status and cancel. It
// returns a nil client and the exit status when the command ends here.
func parseIDCommand(name, usage string, args []string, stdout, stderr io.Writer) (*jobClient, string, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	cf := addClientFlags(fs)
	positional, rest, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", exitOK
		}
		return nil, "", exitUsage
	}
	usageErr := func(format string, a ...any) (*jobClient, string, int) {
		fmt.Fprintf(stderr, "wasmsched %s: "+format+"\n", append([]any{name}, a...)...)
		return nil, "", exitUsage
	}
	positional = append(positional, rest...)
	switch len(positional) {
	case 0:
		return usageErr("missing the job ID (see -h)")
	case 1:
	default:
		return usageErr("unexpected argument %q after the job ID", printable(positional[1], false))
	}
	id, err := parseJobID(positional[0])
	if err != nil {
		return usageErr("job ID: %v", err)
	}
	c, err := cf.client(fs, name, stdout, stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	return c, id, 0
}

// parseJobID checks a job ID before it goes into a URL path: it must be
// one path segment that needs no escaping, so an ID cannot reach another
// endpoint ("../metrics", "x?y") of the server.
func parseJobID(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("empty")
	case len(s) > maxJobIDLen:
		return "", fmt.Errorf("longer than %d bytes", maxJobIDLen)
	case s == "." || s == "..":
		return "", fmt.Errorf("%q is not an ID", s)
	}
	for i := 0; i < len(s); i++ {
		if !isURIUnreserved(s[i]) {
			return "", fmt.Errorf("%q has %q: an ID has only letters, digits and - . _ ~", printable(s, false), printable(s[i:i+1], false))
		}
	}
	return s, nil
}

// isURIUnreserved reports whether c is one of URI's unreserved characters
// (RFC 3986), which mean the same escaped or not.
func isURIUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0
}

// clientFlags are the flags the three commands share.
type clientFlags struct {
	server, tokenFile, tenant string
	json                      bool
	timeout                   time.Duration
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{}
	fs.StringVar(&f.server, "server", defaultServerURL, "job service URL ($WASMSCHED_SERVER when the flag is not given and that is set)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding a bearer token ($WASMSCHED_TOKEN when the flag is not given)")
	fs.StringVar(&f.tenant, "tenant", "", "tenant, sent as the X-Wasmsched-Tenant header")
	fs.BoolVar(&f.json, "json", false, "print the server's JSON answer, indented")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "limit on each HTTP request")
	return f
}

// client turns the parsed flags, and the environment where a flag was not
// given, into a client. Its errors are usage errors naming the flag.
func (f *clientFlags) client(fs *flag.FlagSet, cmd string, stdout, stderr io.Writer) (*jobClient, error) {
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	server, serverSrc := f.server, "--server"
	if env := os.Getenv("WASMSCHED_SERVER"); !given["server"] && env != "" {
		server, serverSrc = env, "$WASMSCHED_SERVER"
	}
	base, err := parseServerURL(server)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", serverSrc, err)
	}
	token, err := readBearerToken(f.tokenFile, given["token-file"])
	if err != nil {
		return nil, err
	}
	if given["tenant"] {
		// The server's rule for a tenant name (it becomes a NATS subject
		// token and a metric label).
		if err := checkSimpleName(f.tenant, 64); err != nil {
			return nil, fmt.Errorf("--tenant: %v", err)
		}
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %v", f.timeout)
	}
	// A transport of its own, closed when the command ends: no idle
	// connection outlives it.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		// The API never redirects; following one would send the token
		// and the module wherever a server says.
		return http.ErrUseLastResponse
	}}
	return &jobClient{cmd: cmd, base: base, token: token, tenant: f.tenant, json: f.json, timeout: f.timeout,
		hc: hc, tr: tr, stdout: stdout, stderr: stderr}, nil
}

// parseServerURL accepts an http or https URL with a host and at most a
// path prefix: the API's paths are added to it.
func parseServerURL(s string) (*url.URL, error) {
	if len(s) > 2048 {
		return nil, errors.New("URL longer than 2048 bytes")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q is not a URL", printable(s, false))
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: want an http:// or https:// URL", printable(s, false))
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%q has no host", printable(s, false))
	case u.User != nil:
		return nil, fmt.Errorf("%q has credentials: pass a token with --token-file", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q has a query or fragment: want the server's base URL", printable(s, false))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: port %s is not from 1 to 65535", printable(s, false), printable(p, false))
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// readBearerToken reads the bearer token from --token-file, or else from
// $WASMSCHED_TOKEN; "" when neither gives one.
func readBearerToken(file string, given bool) (string, error) {
	src, tok := "$WASMSCHED_TOKEN", os.Getenv("WASMSCHED_TOKEN")
	if given {
		src = "--token-file"
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %v", err)
		}
		defer f.Close()
		// Not only regular files: a token may come from a pipe,
		// --token-file <(pass show wasmsched).
		b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
		if err != nil {
			return "", fmt.Errorf("--token-file: %v", err)
		}
		if len(b) > 64<<10 {
			return "", fmt.Errorf("--token-file: %s is larger than 64 KiB, not a token", file)
		}
		tok = string(b)
	}
	tok = strings.TrimSpace(tok)
	switch {
	case given && tok == "":
		return "", fmt.Errorf("--token-file: %s is empty", file)
	case len(tok) > 8<<10:
		return "", fmt.Errorf("%s: the token is longer than 8 KiB", src)
	}
	for _, c := range []byte(tok) {
		if c < 0x21 || c > 0x7e {
			// A header value must not break the request; a token is
			// printable ASCII (RFC 6750's b64token is a subset).
			return "", fmt.Errorf("%s: the token has a space, control or non-ASCII character", src)
		}
	}
	return tok, nil
}

// jobClient talks to the job service for one command.
type jobClient struct {
	cmd            string // for messages: "wasmsched submit: ..."
	base           *url.URL
	token, tenant  string
	json           bool
	timeout        time.Duration
	hc             *http.Client
	tr             *http.Transport
	stdout, stderr io.Writer
}

func (c *jobClient) close() { c.tr.CloseIdleConnections() }

// jobAnswer is a successful (2xx) answer of the server.
type jobAnswer struct {
	code     int
	body     []byte
	location string
}

// errClientInterrupted: the command's context was cancelled (Ctrl-C).
var errClientInterrupted = errors.New("interrupted")

// httpStatusError is an answer that is not a success: its code, and the
// server's message (its JSON "error", else the start of its body).
type httpStatusError struct {
	code int
	msg  string
}

func (e *httpStatusError) Error() string {
	s := fmt.Sprintf("%d %s", e.code, http.StatusText(e.code))
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// do sends one request, bounded by --timeout from sending to the last
// byte of the answer, and reads the answer (at most maxAnswer bytes). An
// answer that is not a 2xx is a *httpStatusError.
func (c *jobClient) do(ctx context.Context, method, path string, q url.Values, body io.Reader, size int64) (*jobAnswer, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(rctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/wasm")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.tenant != "" {
		req.Header.Set("X-Wasmsched-Tenant", c.tenant)
	}
	resp, err := c.hc.Do(req)
	var b []byte
	if err == nil {
		b, err = readJobAnswer(resp)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, errClientInterrupted
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("no answer from %s within --timeout %v", c.base.Redacted(), c.timeout)
	case resp != nil && (resp.StatusCode < 200 || resp.StatusCode > 299):
		// The code says what went wrong; its message is what was lost.
		return nil, &httpStatusError{code: resp.StatusCode, msg: "(message unread: " + err.Error() + ")"}
	case resp != nil:
		return nil, fmt.Errorf("reading the answer of %s: %v", c.base.Redacted(), err)
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the method and URL are said once, here
		}
		return nil, fmt.Errorf("cannot reach the server at %s: %v", c.base.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &httpStatusError{code: resp.StatusCode, msg: serverErrorMessage(b)}
	}
	return &jobAnswer{code: resp.StatusCode, body: b, location: resp.Header.Get("Location")}, nil
}

// readJobAnswer reads and closes a response body of at most maxAnswer
// bytes: a server cannot make the client hold more.
func readJobAnswer(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > maxAnswer {
		return nil, fmt.Errorf("the answer of %d bytes is over the client's limit of %d MiB", resp.ContentLength, maxAnswer>>20)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("the answer is over the client's limit of %d MiB", maxAnswer>>20)
	}
	return b, nil
}

// serverErrorMessage is the server's error message in an answer: the
// "error" of its JSON, else the start of the body, on one line.
func serverErrorMessage(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return printable(e.Error, false)
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return printable(s, false)
}

// fail reports err on stderr; it returns exit status 1.
func (c *jobClient) fail(err error) int {
	fmt.Fprintf(c.stderr, "wasmsched %s: %v\n", c.cmd, err)
	return exitFailure
}

// printJSON prints the server's JSON as it is, indented.
func (c *jobClient) printJSON(b []byte) int {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(b), "", "  "); err != nil {
		return c.fail(fmt.Errorf("the server's answer is not JSON: %v", err))
	}
	buf.WriteByte('\n')
	c.stdout.Write(buf.Bytes())
	return exitOK
}

// submitCmd is a parsed `wasmsched submit`.
type submitCmd struct {
	*jobClient
	module *os.File // FILE.wasm, open; nil with --guest
	size   int64
	query  url.Values
	wait   bool
}

// parseSubmit parses submit's flags, FILE and argv. It returns nil and the
// exit status when the command ends here (help, usage error).
func parseSubmit(args []string, stdout, stderr io.Writer) (*submitCmd, int) {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, submitUsage); fs.PrintDefaults() }
	cf := addClientFlags(fs)
	var o submitOpts
	fs.StringVar(&o.guest, "guest", "", "run this guest embedded in the server (spin, cguest, goguest) instead of uploading FILE")
	fs.StringVar(&o.export, "export", "", "call this exported function instead of the WASI _start")
	fs.StringVar(&o.args, "args", "", "the export's arguments, comma-separated: 1,2")
	fs.StringVar(&o.fuel, "fuel", "", "fuel budget of the job, a positive integer (at most the server's)")
	fs.DurationVar(&o.jobTimeout, "job-timeout", 0, "deadline of the job (at most the server's)")
	fs.BoolVar(&o.allowCommandExports, "allow-command-exports", false, "let --export call a function of a WASI command")
	wait := fs.Bool("wait", false, "wait for the job to end and print its status")
	positional, argv, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	usageErr := func(format string, a ...any) (*submitCmd, int) {
		fmt.Fprintf(stderr, "wasmsched submit: "+format+"\n", a...)
		return nil, exitUsage
	}
	fs.Visit(func(fl *flag.Flag) { o.given = append(o.given, fl.Name) })
	o.argv = argv
	switch {
	case len(positional) > 1:
		return usageErr("unexpected argument %q after FILE (guest arguments go after --)", printable(positional[1], false))
	case len(positional) == 1 && o.has("guest"):
		return usageErr("both FILE %q and --guest %q: give one", printable(positional[0], false), printable(o.guest, false))
	case len(positional) == 0 && !o.has("guest"):
		return usageErr("missing FILE.wasm or --guest NAME (see -h)")
	}
	q, err := o.query()
	if err != nil {
		return usageErr("%v", err)
	}
	s := &submitCmd{query: q, wait: *wait}
	if len(positional) == 1 {
		if s.module, s.size, err = openModuleFile(positional[0]); err != nil {
			return usageErr("FILE: %v", err)
		}
	}
	if s.jobClient, err = cf.client(fs, "submit", stdout, stderr); err != nil {
		if s.module != nil {
			s.module.Close()
		}
		return usageErr("%v", err)
	}
	return s, 0
}

// openModuleFile opens FILE.wasm and checks it is a regular file of at
// most maxModuleFile bytes, before a byte of it is read. The size is the
// open file's, so it is the file that is sent.
func openModuleFile(path string) (*os.File, int64, error) {
	// Checked before opening too: opening a FIFO would wait for a writer.
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file", printable(path, false))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	switch {
	case err != nil:
	case !st.Mode().IsRegular():
		err = fmt.Errorf("%s is not a regular file", printable(path, false))
	case st.Size() == 0:
		err = fmt.Errorf("%s is empty", printable(path, false))
	case st.Size() > maxModuleFile:
		err = fmt.Errorf("%s is %d bytes, over the limit of 1 GiB", printable(path, false), st.Size())
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// submitOpts are submit's job flags, before they are checked.
type submitOpts struct {
	guest, export, args, fuel string
	jobTimeout                time.Duration
	allowCommandExports       bool
	argv                      []string
	given                     []string // the flags given
}

func (o *submitOpts) has(name string) bool {
	for _, g := range o.given {
		if g == name {
			return true
		}
	}
	return false
}

// query checks the job flags and argv and returns the query of POST
// /jobs. Its errors name the flag.
func (o *submitOpts) query() (url.Values, error) {
	q := url.Values{}
	if o.has("guest") {
		if err := checkSimpleName(o.guest, 64); err != nil {
			return nil, fmt.Errorf("--guest: %v", err)
		}
		q.Set("guest", o.guest)
	}
	if o.has("export") {
		if err := checkExportName(o.export, 1024); err != nil {
			return nil, fmt.Errorf("--export: %v", err)
		}
		q.Set("export", o.export)
	}
	if o.has("args") {
		if err := checkExportArgs(o.args, o.has("export")); err != nil {
			return nil, fmt.Errorf("--args: %v", err)
		}
		q.Set("args", o.args)
	}
	if o.has("fuel") {
		n, err := strconv.ParseInt(o.fuel, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--fuel: %q is not a positive integer of at most %d", printable(o.fuel, false), int64(math.MaxInt64))
		}
		q.Set("fuel", strconv.FormatInt(n, 10))
	}
	if o.has("job-timeout") {
		if o.jobTimeout <= 0 {
			return nil, fmt.Errorf("--job-timeout must be positive, got %v", o.jobTimeout)
		}
		q.Set("timeout", o.jobTimeout.String())
	}
	if o.allowCommandExports {
		q.Set("allow_command_exports", "1")
	}
	if len(o.argv) > 0 && o.has("export") {
		return nil, errors.New("argv after -- is a WASI command's; an --export takes --args")
	}
	for i, a := range o.argv {
		if strings.IndexByte(a, 0) >= 0 || !utf8.ValidString(a) {
			return nil, fmt.Errorf("argv[%d] after --: has a NUL byte or is not UTF-8", i+1)
		}
		q.Add("arg", a)
	}
	if n := len(q.Encode()); n > maxSubmitQuery {
		return nil, fmt.Errorf("the arguments take %d bytes in the URL, over the limit of %d KiB", n, maxSubmitQuery>>10)
	}
	return q, nil
}

// checkSimpleName checks a guest or tenant name: letters, digits, - and _.
func checkSimpleName(s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("want 1 to %d characters, got %d", max, len(s))
	}
	for _, c := range []byte(s) {
		if !isURIUnreserved(c) || c == '.' || c == '~' {
			return fmt.Errorf("%q: a name has only letters, digits, - and _", printable(s, false))
		}
	}
	return nil
}

// checkExportName checks a function name: UTF-8 without control characters.
func checkExportName(s string, max int) error {
	switch {
	case s == "" || len(s) > max:
		return fmt.Errorf("want 1 to %d bytes, got %d", max, len(s))
	case !utf8.ValidString(s) || printable(s, false) != s:
		return fmt.Errorf("%q is not UTF-8 without control characters", printable(s, false))
	}
	return nil
}

// checkExportArgs checks --args: comma-separated values, none empty. The
// server parses them by the export's signature.
func checkExportArgs(s string, export bool) error {
	if !export {
		return errors.New("needs --export (a WASI command takes argv after --)")
	}
	if s == "" {
		return errors.New("empty: give the values, 1,2 (or leave --args out for none)")
	}
	for i, a := range strings.Split(s, ",") {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("value %d of %q is empty", i+1, printable(s, false))
		}
		for _, r := range a {
			if r < 0x20 || r > 0x7e {
				return fmt.Errorf("value %d has a control or non-ASCII character: a value is a number", i+1)
			}
		}
	}
	return nil
}

// run submits the job, prints its ID and, with --wait, waits for its end.
func (s *submitCmd) run(ctx context.Context) int {
	var body io.Reader
	if s.module != nil {
		// The size was checked on the open file; a file that grows
		// meanwhile is sent as it was, one that shrinks fails the request.
		body = io.LimitReader(s.module, s.size)
	}
	a, err := s.do(ctx, http.MethodPost, "/jobs", s.query, body, s.size)
	if errors.Is(err, errClientInterrupted) {
		return s.fail(errors.New("interrupted while submitting: the server may have accepted the job before it could answer with its ID"))
	}
	if err != nil {
		return s.fail(err)
	}
	j, err := decodeClientJob(a.body)
	if err != nil {
		return s.fail(err)
	}
	id := j.ID
	if id == "" {
		// Location is /jobs/ID, maybe as an absolute URL.
		if i := strings.LastIndex(a.location, "/jobs/"); i >= 0 {
			id = a.location[i+len("/jobs/"):]
		}
	}
	if id, err = parseJobID(id); err != nil {
		return s.fail(fmt.Errorf("the server accepted the job but answered an invalid job ID: %v", err))
	}
	if !s.wait {
		if s.json {
			return s.printJSON(a.body)
		}
		fmt.Fprintln(s.stdout, id)
		return exitOK
	}
	if !s.json {
		fmt.Fprintln(s.stdout, id)
	}
	raw, j, err := s.waitJob(ctx, id)
	if errors.Is(err, errClientInterrupted) {
		return s.fail(fmt.Errorf("interrupted: stopped waiting; job %s is still on the server (wasmsched status %[1]s, wasmsched cancel %[1]s)", id))
	}
	if err != nil {
		return s.fail(fmt.Errorf("waiting for job %s: %v", id, err))
	}
	if s.json {
		if code := s.printJSON(raw); code != exitOK {
			return code
		}
	} else {
		printClientJob(s.stdout, j)
	}
	if j.Status != "done" {
		return exitFailure
	}
	return exitOK
}

// waitJob polls a job until its status is final, backing off from 20ms to
// 500ms between polls. A few polls in a row may fail on the way (a server
// restarting, a proxy's 502/503/504): the job is still there.
func (c *jobClient) waitJob(ctx context.Context, id string) ([]byte, *clientJob, error) {
	const maxMisses = 5
	delay, misses := 20*time.Millisecond, 0
	for {
		a, err := c.do(ctx, http.MethodGet, "/jobs/"+id, nil, nil, 0)
		if err == nil {
			j, err := decodeClientJob(a.body)
			if err != nil {
				return nil, nil, err
			}
			if statusIsFinal(j.Status) {
				return a.body, j, nil
			}
			misses = 0
		} else if !retryable(err) || misses >= maxMisses {
			return nil, nil, err
		} else {
			misses++
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, errClientInterrupted
		case <-t.C:
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// retryable reports whether a failed poll may succeed if tried again.
func retryable(err error) bool {
	var se *httpStatusError
	if errors.As(err, &se) {
		return se.code == http.StatusBadGateway || se.code == http.StatusServiceUnavailable || se.code == http.StatusGatewayTimeout
	}
	return !errors.Is(err, errClientInterrupted)
}

func statusIsFinal(status string) bool {
	return status == "done" || status == "failed" || status == "cancelled"
}

// clientJob is the job as the client shows it. Every field is optional and
// one of an unexpected type is left empty: a newer or older server's job
// still prints.
type clientJob struct {
	ID, Tenant, Guest, Export, Status string
	Result                            []string
	Error, Kind                       string
	Stdout, Stderr                    string
	Submitted, Started, Finished      time.Time
	Seconds                           float64
	HasSeconds                        bool
	Deliveries                        int64
	Replica                           string
}

// decodeClientJob decodes a job's JSON object, leniently (see clientJob).
func decodeClientJob(b []byte) (*clientJob, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("the server's answer is not a job (a JSON object): %s", serverErrorMessage(b))
	}
	str := func(k string) string {
		var s string
		json.Unmarshal(m[k], &s)
		return s
	}
	when := func(k string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, str(k))
		return t
	}
	j := &clientJob{ID: str("id"), Tenant: str("tenant"), Guest: str("guest"), Export: str("export"), Status: str("status"),
		Error: str("error"), Kind: str("error_kind"), Stdout: str("stdout"), Stderr: str("stderr"),
		Submitted: when("submitted"), Started: when("started"), Finished: when("finished"), Replica: str("replica")}
	j.HasSeconds = string(m["seconds"]) != "null" && json.Unmarshal(m["seconds"], &j.Seconds) == nil
	json.Unmarshal(m["deliveries"], &j.Deliveries)
	var result []json.RawMessage
	json.Unmarshal(m["result"], &result)
	for _, r := range result {
		var s string
		if json.Unmarshal(r, &s) != nil {
			s = string(r) // a number, as the server wrote it
		}
		j.Result = append(j.Result, s)
	}
	return j, nil
}

// printClientJob prints the compact block of status (and submit --wait): one
// line per field the job has, then its output indented.
func printClientJob(w io.Writer, j *clientJob) {
	var b strings.Builder
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%-10s %s\n", label, printable(value, false))
		}
	}
	line("id", j.ID)
	line("status", j.Status)
	line("tenant", j.Tenant)
	if j.Export != "" {
		line("guest", j.Guest+"/"+j.Export)
	} else {
		line("guest", j.Guest)
	}
	line("result", strings.Join(j.Result, ", "))
	if j.Kind != "" {
		line("error", j.Error+" ("+j.Kind+")")
	} else {
		line("error", j.Error)
	}
	line("timing", j.timing())
	line("replica", j.Replica)
	if j.Deliveries > 1 {
		line("deliveries", strconv.FormatInt(j.Deliveries, 10))
	}
	for _, out := range []struct{ name, text string }{{"stdout", j.Stdout}, {"stderr", j.Stderr}} {
		if out.text == "" {
			continue
		}
		b.WriteString(out.name + ":\n")
		for l := range strings.SplitSeq(strings.TrimRight(printable(out.text, true), "\n"), "\n") {
			b.WriteString("    " + l + "\n")
		}
	}
	io.WriteString(w, b.String())
}

// timing says how long the job was queued and ran, from the server's own
// times (its clock, not this machine's).
func (j *clientJob) timing() string {
	var parts []string
	switch {
	case !j.Submitted.IsZero() && !j.Started.IsZero():
		parts = append(parts, "queued for "+roundSeconds(j.Started.Sub(j.Submitted).Seconds()))
	case !j.Submitted.IsZero() && j.Status == "queued":
		parts = append(parts, "queued since "+j.Submitted.Format(time.RFC3339))
	}
	secs, ok := j.Seconds, j.HasSeconds
	if !ok && !j.Started.IsZero() && !j.Finished.IsZero() {
		secs, ok = j.Finished.Sub(j.Started).Seconds(), true
	}
	switch {
	case j.Status == "queued":
	case ok && statusIsFinal(j.Status):
		parts = append(parts, "ran for "+roundSeconds(secs))
	case ok && secs > 0:
		parts = append(parts, "running for "+roundSeconds(secs))
	case !j.Started.IsZero():
		// A server that counts seconds only at the end: its start, not
		// this machine's clock against the server's.
		parts = append(parts, "running since "+j.Started.Format(time.RFC3339))
	}
	return strings.Join(parts, ", ")
}

// roundSeconds prints seconds as a duration: to the millisecond from a
// second up, to the microsecond below.
func roundSeconds(secs float64) string {
	if secs < 0 || secs > 1e9 || secs != secs {
		return strconv.FormatFloat(secs, 'g', -1, 64) + "s" // not a duration the server meant
	}
	d := time.Duration(secs * float64(time.Second))
	if d >= time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// printable makes server-given text safe to print on a terminal: invalid
// UTF-8 becomes U+FFFD, and control characters (escape sequences could
// rewrite the screen) and bidi controls are shown escaped, except newlines
// and tabs when multiline.
func printable(s string, multiline bool) string {
	escape := func(r rune) bool {
		if multiline && (r == '\n' || r == '\t') {
			return false
		}
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
	}
	if utf8.ValidString(s) && strings.IndexFunc(s, escape) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if escape(r) {
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
