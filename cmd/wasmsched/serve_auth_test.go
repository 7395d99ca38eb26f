package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmsched/wasmsched/jobs"
)

// doAs sends a request with headers.
func doAs(t *testing.T, method, url string, hdr map[string]string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// With --auth-token-file a request needs a known bearer token; the token
// names its tenant, and a tenant sees and cancels only its own jobs.
func TestServeAuth(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("# tenants\nalice aaaaaaaaaaaaaaaaaaaa\nbob bbbbbbbbbbbbbbbbbbbb\n"), 0o600)
	toks, err := readTokens(tokens)
	if err != nil {
		t.Fatal(err)
	}
	_, hs := testServer(t, serveConfig{tokens: toks})
	alice := map[string]string{"Authorization": "Bearer aaaaaaaaaaaaaaaaaaaa", tenantHeader: "bob"} // the header is ignored
	bob := map[string]string{"Authorization": "Bearer bbbbbbbbbbbbbbbbbbbb"}
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer aaaaaaaaaaaaaaaaaaab"}, {"Authorization": "aaaaaaaaaaaaaaaaaaaa"},
		{"Authorization": "Bearer " + strings.Repeat("a", 60<<10)}} {
		if code, _, raw := doAs(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", h); code != http.StatusUnauthorized && code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("POST with %.40v: %d %s, want 401", h, code, raw)
		}
	}
	code, m, raw := doAs(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=4611686018427387904", alice)
	if code != http.StatusAccepted || m["tenant"] != "alice" {
		t.Fatalf("alice's POST: %d %s", code, raw)
	}
	id := m["id"].(string)
	if code, _, _ := doAs(t, "GET", hs.URL+"/jobs/"+id, bob); code != http.StatusNotFound {
		t.Fatalf("bob reads alice's job: %d, want 404", code)
	}
	if code, _, _ := doAs(t, "DELETE", hs.URL+"/jobs/"+id, bob); code != http.StatusNotFound {
		t.Fatalf("bob cancels alice's job: %d, want 404", code)
	}
	if _, _, raw := doAs(t, "GET", hs.URL+"/jobs", bob); strings.Contains(raw, id) {
		t.Fatalf("bob's list shows alice's job: %s", raw)
	}
	if _, _, raw := doAs(t, "GET", hs.URL+"/jobs", alice); !strings.Contains(raw, id) {
		t.Fatalf("alice's list lacks her job: %s", raw)
	}
	if code, _, raw := doAs(t, "DELETE", hs.URL+"/jobs/"+id, alice); code != http.StatusAccepted {
		t.Fatalf("alice cancels her job: %d %s", code, raw)
	}
}

func TestReadTokensRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"empty": "# nothing\n\n", "short": "alice abc\n", "three fields": "a b c\n", "bad tenant": "a.b aaaaaaaaaaaaaaaaaaaa\n",
		"binary": "\x00\x01\x02",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := readTokens(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Without auth the tenant is a header, checked like any input.
func TestServeTenantHeader(t *testing.T) {
	_, hs := testServer(t, serveConfig{})
	for _, bad := range []string{"a.b", "a b", strings.Repeat("x", 65), "wasmsched.>", "é"} {
		if code, _, raw := doAs(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", map[string]string{tenantHeader: bad}); code != http.StatusBadRequest {
			t.Errorf("tenant %q: %d %s, want 400", bad, code, raw)
		}
	}
	code, m, raw := doAs(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", map[string]string{tenantHeader: "team-7"})
	if code != http.StatusAccepted || m["tenant"] != "team-7" {
		t.Fatalf("tenant team-7: %d %s", code, raw)
	}
	waitJob(t, hs.URL, m["id"].(string))
}

// /healthz follows the NATS connection; a second serve on the same data
// directory is refused.
func TestServeReadinessAndDataDirLock(t *testing.T) {
	ns, err := jobs.StartEmbeddedNATS(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, hs := testServer(t, serveConfig{natsURL: ns.ClientURL()})
	if code, _, body := do(t, "GET", hs.URL+"/healthz", nil); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	ns.Shutdown()
	waitFor(t, func() bool {
		code, _, body := do(t, "GET", hs.URL+"/healthz", nil)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "NATS")
	})

	dir := t.TempDir()
	testServer(t, serveConfig{dataDir: dir})
	if _, err := newServer(serveConfig{dataDir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second serve on one data dir: %v", err)
	}
}

// FuzzParseTokens: any token file parses to tenants that are valid and
// tokens of at least 16 characters, or is refused; it never panics.
func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{"alice aaaaaaaaaaaaaaaaaaaa\n", "aaaaaaaaaaaaaaaaaaaa", "# c\n\n a  bbbbbbbbbbbbbbbbbbbbbbbb \n", "a b c", "\x00\xff\n",
		strings.Repeat("x", 70000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		toks, err := parseTokens(strings.NewReader(text))
		if err != nil {
			return
		}
		for tok, ten := range toks {
			if len(tok) < 16 || !jobs.ValidTenant(ten) || strings.ContainsAny(tok, " \t\n") {
				t.Fatalf("accepted token %q for tenant %q", tok, ten)
			}
		}
	})
}

// /debug/pprof/ is served only with --pprof, and behind the auth.
func TestServePprof(t *testing.T) {
	_, off := testServer(t, serveConfig{})
	if code, _, _ := do(t, "GET", off.URL+"/debug/pprof/", nil); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without --pprof: %d, want 404", code)
	}
	toks := map[string]string{"pppppppppppppppppppp": "ops"}
	_, on := testServer(t, serveConfig{pprof: true, tokens: toks})
	if code, _, _ := do(t, "GET", on.URL+"/debug/pprof/", nil); code != http.StatusUnauthorized {
		t.Fatalf("/debug/pprof/ without a token: %d, want 401", code)
	}
	code, _, raw := doAs(t, "GET", on.URL+"/debug/pprof/goroutine?debug=1", map[string]string{"Authorization": "Bearer pppppppppppppppppppp"})
	if code != 200 || !strings.Contains(raw, "goroutine profile") {
		t.Fatalf("/debug/pprof/goroutine with the token: %d %.200s", code, raw)
	}
}
