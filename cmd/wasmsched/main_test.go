package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines (but the one nats.go can leak per
// object store Put: see natsObjectPutRace), and removes the binary the
// multi-process tests built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natsObjectPutRace, goleak.Cleanup(func(code int) {
		removeBuiltServe()
		os.Exit(code)
	}))
}

// invoke runs the command in-process.
func invoke(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// trapWasm is a module exporting _start and boom, both `unreachable`.
var trapWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
	0x03, 0x02, 0x01, 0x00, // func 0: type 0
	0x07, 0x11, 0x02, // exports: 2
	0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
	0x04, 'b', 'o', 'o', 'm', 0x00, 0x00,
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: unreachable
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// spinRef computes spin(n) in Go, the recurrence of testdata/spin.wat.
func spinRef(n uint64) uint64 {
	acc := uint64(1)
	for ; n != 0; n-- {
		acc = acc*6364136223846793005 + n
	}
	return acc
}

func TestUsage(t *testing.T) {
	if code, _, errOut := invoke(t); code != exitUsage || !strings.Contains(errOut, "usage: wasmsched") {
		t.Errorf("no args: exit %d, %q", code, errOut)
	}
	if code, _, errOut := invoke(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if code, out, _ := invoke(t, "help"); code != 0 || !strings.Contains(out, "compare") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}

// natsObjectPutRace: see package jobs' TestMain; serve's uploads go
// through the same Put.
var natsObjectPutRace = goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect")
