package wasmtask

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/wasmsched/wasmsched/scheduler"
)

// WASI calls that wait.
//
// wazero implements WASI on the calling goroutine: a sleep is a
// time.Sleep, sched_yield a runtime.Gosched, a read of stdin a blocking
// Read. Here that goroutine is a worker's, so each would hold the worker
// and be deaf to Abort. A guest's instance is configured instead so that
// every WASI call that can wait suspends the guest's task:
//
//   - poll_oneoff with clock subscriptions (every sleep: Go's time.Sleep,
//     C's nanosleep, Rust's thread::sleep) sleeps on a runtime timer. The
//     worker runs other tasks meanwhile; Abort, a job timeout or Shutdown
//     end the sleeper at once, as aborted.
//   - sched_yield asks the guest's Policy, with Reason ReasonSchedYield,
//     and does what it says (continue, yield through its path, wait for its
//     future, trap).
//   - Reading stdin (fd_read, and poll_oneoff's stdin subscriptions) from a
//     reader that can block: the Read runs on a helper goroutine and the
//     guest suspends until it returns. In-memory readers (*bytes.Reader,
//     *strings.Reader, *bytes.Buffer) are read directly. A guest that ends
//     while the helper's Read is blocked leaves that goroutine until the
//     Read returns: give the guest a reader that ends.
//
// What is not suspended, and returns when the embedder's code does:
// writes to Options.Stdout and Options.Stderr, and file operations on
// Options.FS. Supply writers that do not block (a buffer) and files on
// local disks. poll_oneoff's fd_write subscriptions answer at once
// (wazero: not supported).

// maxSleep caps a WASI sleep so that deadline arithmetic cannot overflow:
// a guest sleeping a century is asleep forever, and Abort still ends it.
const maxSleep = 100 * 365 * 24 * time.Hour

// suspending counts the guest as suspended (on its worker's shard) and
// returns the shard and the clock reading for resumed.
func (g *guest) suspending() (*counterShard, int64) {
	sh := g.e.stats.shard(g.co.Context().WorkerID())
	sh.suspended.Inc()
	g.openWait = sh
	return sh, nanos()
}

// wake finishes a suspension begun with suspending: accounting, and a new
// epoch deadline (time suspended is not charged).
func (g *guest) wake(sh *counterShard, start int64) {
	now := g.resumed(sh, start)
	if g.hasE {
		g.armEpoch(g.opts.EpochDeadline, now)
	}
}

// nanosleep is the instance's sys.Nanosleep: a WASI sleep suspends the
// guest on a runtime timer.
func (g *guest) nanosleep(ns int64) {
	if ns <= 0 {
		return
	}
	g.stats.Sleeps++
	sh, start := g.suspending()
	g.co.Sleep(min(time.Duration(ns), maxSleep))
	g.wake(sh, start)
}

// schedYield is the instance's sys.Osyield: WASI sched_yield does what the
// guest's policy says.
func (g *guest) schedYield() {
	g.stats.SchedYields++
	now := nanos()
	act := g.callPolicy(g.info(ReasonSchedYield, g.consumed(), now))
	switch act.Kind {
	case ActContinue:
		return
	case ActTrap:
		g.policyTrap(act.Err)
	}
	sh, start := g.suspending()
	if act.Kind == ActYieldCustom {
		g.stats.Custom++
		scheduler.Await(g.co, act.Future)
	} else {
		if g.resolvePath(act.Path) == scheduler.PathImmediate {
			g.stats.Immediate++
		} else {
			g.stats.Deferred++
		}
		g.co.YieldVia(g.resolvePath(act.Path))
	}
	g.wake(sh, start)
}

// guestStdin is a guest's stdin when Options.Stdin may block. Read and
// Poll run on the guest's task; the embedder's reader is read on a helper
// goroutine, one Read at a time, while the guest is suspended.
type guestStdin struct {
	g   *guest
	src io.Reader

	mu      sync.Mutex
	buf     []byte // read from src, not yet read by the guest
	err     error  // src's error (io.EOF at the end), sticky
	reading bool   // a helper's Read is outstanding
	waiting bool   // the guest is parked on waker
	waker   scheduler.Waker
}

// stdinChunk bounds one Read of the embedder's reader (and so the bytes
// held for the guest).
const stdinChunk = 64 << 10

// inMemoryReader reports whether r never blocks, so it can be read on the
// guest's task directly.
func inMemoryReader(r io.Reader) bool {
	switch r.(type) {
	case *bytes.Reader, *strings.Reader, *bytes.Buffer:
		return true
	}
	return false
}

func newGuestStdin(g *guest, src io.Reader) *guestStdin { return &guestStdin{g: g, src: src} }

// Read implements io.Reader for wazero's stdin file.
func (s *guestStdin) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		s.mu.Lock()
		if len(s.buf) > 0 {
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			s.mu.Unlock()
			return n, nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		s.startLocked(len(p))
		s.park()
	}
}

// Poll implements experimentalsys.Pollable for poll_oneoff's stdin
// subscriptions: ready when data (or the end) is there, else the guest
// suspends until it is or the timeout passes (a negative timeout waits
// without end).
func (s *guestStdin) Poll(flag experimentalsys.Pflag, timeoutMillis int32) (bool, experimentalsys.Errno) {
	if flag != experimentalsys.POLLIN {
		return false, experimentalsys.ENOTSUP
	}
	rt := s.g.co.Context().Runtime()
	deadline := rt.Now() + time.Duration(timeoutMillis)*time.Millisecond
	for {
		s.mu.Lock()
		if len(s.buf) > 0 || s.err != nil {
			s.mu.Unlock()
			return true, 0
		}
		s.startLocked(stdinChunk)
		if timeoutMillis == 0 || (timeoutMillis > 0 && rt.Now() >= deadline) {
			s.mu.Unlock()
			return false, 0
		}
		if timeoutMillis > 0 {
			s.g.co.Context().WakeAt(deadline)
		}
		s.park()
	}
}

// startLocked starts a helper Read unless one is outstanding.
func (s *guestStdin) startLocked(n int) {
	if s.reading {
		return
	}
	s.reading = true
	go s.pump(min(max(n, 512), stdinChunk))
}

func (s *guestStdin) pump(n int) {
	b := make([]byte, n)
	k, err := s.src.Read(b)
	s.mu.Lock()
	s.buf = append(s.buf, b[:k]...)
	if err != nil {
		s.err = err
	}
	s.reading = false
	wake, w := s.waiting, s.waker
	s.waiting = false
	s.mu.Unlock()
	if wake {
		w.Wake()
	}
}

// park suspends the guest until the helper delivers (or a timer set by the
// caller fires). Called with s.mu held; returns with it released.
func (s *guestStdin) park() {
	g := s.g
	s.waker, s.waiting = g.co.Context().Waker(), true
	s.mu.Unlock()
	g.stats.StdinWaits++
	sh, start := g.suspending()
	g.co.Park()
	g.wake(sh, start)
	s.mu.Lock()
	s.waiting = false
	s.mu.Unlock()
}
