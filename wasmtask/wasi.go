package wasmtask

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
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
//   - poll_oneoff is this package's own (pollOneoff): its clock
//     subscriptions (every sleep: Go's time.Sleep, C's nanosleep, Rust's
//     thread::sleep) wait on a runtime timer. The worker runs other tasks
//     meanwhile; Abort, a job timeout or Shutdown end the sleeper at once,
//     as aborted. (The instance's Nanosleep, which only wazero's
//     poll_oneoff called, suspends the same way.)
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

// wake finishes a suspension begun with suspending: accounting, and a new
// epoch deadline (time suspended is not charged).
func (g *guest) wake(s suspension) {
	now := g.resumed(s)
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
	s := g.suspending(-1)
	g.co.Sleep(min(time.Duration(ns), maxSleep))
	g.wake(s)
}

// schedYield is the instance's sys.Osyield: WASI sched_yield does what the
// guest's policy says.
func (g *guest) schedYield() {
	g.stats.SchedYields++
	now := nanos() // the policy's and the suspension's
	act := g.decide(ReasonSchedYield, g.consumed(), now)
	switch act.Kind {
	case ActContinue:
		return
	case ActTrap:
		g.policyTrap(act.Err)
	}
	s := g.suspending(now)
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
	g.wake(s)
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
	susp := g.suspending(-1)
	g.co.Park()
	g.wake(susp)
	s.mu.Lock()
	s.waiting = false
	s.mu.Unlock()
}

// WASI errno values (preview 1).
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNotsup  = 58
)

// Subscription and event layouts of poll_oneoff (preview 1).
const (
	subscriptionSize = 48
	eventSize        = 32
	eventClock       = 0
	eventFdRead      = 1
	eventFdWrite     = 2
)

// pollOneoff replaces wazero's poll_oneoff. wazero's computes the buffers'
// sizes in 32 bits (a subscription count of 2^28 wraps both to zero, and
// its loop then indexes an empty slice: a Go panic in the host), sleeps on
// the goroutine, and after a clock subscription always waits the full
// timeout even when a descriptor is ready. This one:
//
//   - checks nsubscriptions (0: EINVAL) and both buffers in 64 bits
//     (EFAULT), before reading anything;
//   - relative clock subscriptions wait on a runtime timer (the guest
//     suspends); absolute ones are not supported (ENOTSUP, as wazero);
//   - fd_read on stdin (fd 0) is ready when Options.Stdin has data or has
//     ended (the guest suspends until then); on any other descriptor, and
//     fd_write on any, the event is ready at once, as poll(2) says of
//     regular files (a bad descriptor is reported by the read or write
//     that follows);
//   - it returns as soon as an event is ready, reporting only the ready
//     ones: descriptor events first, else the clocks that have expired.
func (g *guest) pollOneoff(mod api.Module, in, out, nsubs, resultNevents uint32) uint32 {
	if nsubs == 0 {
		return errnoInval
	}
	mem := mod.Memory()
	if mem == nil {
		return errnoFault
	}
	size := uint64(mem.Size())
	if uint64(in)+uint64(nsubs)*subscriptionSize > size || uint64(out)+uint64(nsubs)*eventSize > size ||
		uint64(resultNevents)+4 > size {
		return errnoFault
	}
	raw, _ := mem.Read(in, nsubs*subscriptionSize)
	subs, errno := parseSubscriptions(raw)
	if errno != errnoSuccess {
		return errno
	}
	type sub struct {
		userdata []byte
		kind     byte
		deadline time.Duration // clock: runtime time at which it fires
	}
	var clocks, stdinReads, ready []sub
	rt := g.co.Context().Runtime()
	now := rt.Now()
	for _, ps := range subs {
		s := sub{userdata: ps.userdata[:], kind: ps.kind}
		switch {
		case ps.kind == eventClock:
			s.deadline = now + ps.timeout
			clocks = append(clocks, s)
		case ps.fd == 0 && ps.kind == eventFdRead && g.stdin != nil:
			stdinReads = append(stdinReads, s)
		default:
			ready = append(ready, s)
		}
	}
	write := func(evs []sub) uint32 {
		buf := make([]byte, eventSize)
		for i, e := range evs {
			clear(buf)
			copy(buf[0:8], e.userdata)
			buf[10] = e.kind
			mem.Write(out+uint32(i)*eventSize, buf)
		}
		mem.WriteUint32Le(resultNevents, uint32(len(evs)))
		return errnoSuccess
	}
	if len(ready) > 0 {
		return write(ready)
	}
	var earliest time.Duration = -1
	for _, c := range clocks {
		if earliest < 0 || c.deadline < earliest {
			earliest = c.deadline
		}
	}
	if len(stdinReads) > 0 {
		timeoutMillis := int32(-1)
		if earliest >= 0 {
			timeoutMillis = int32(min(max((earliest-now+time.Millisecond-1)/time.Millisecond, 0), math.MaxInt32))
		}
		if ok, _ := g.stdin.Poll(experimentalsys.POLLIN, timeoutMillis); ok {
			return write(stdinReads)
		}
	} else if earliest >= 0 && earliest > now {
		g.stats.Sleeps++
		s := g.suspending(-1)
		g.co.Sleep(earliest - now)
		g.wake(s)
	}
	now = rt.Now()
	var fired []sub
	for _, c := range clocks {
		if c.deadline <= now {
			fired = append(fired, c)
		}
	}
	return write(fired)
}

// pollSub is one parsed poll_oneoff subscription.
type pollSub struct {
	userdata [8]byte
	kind     byte          // eventClock, eventFdRead, eventFdWrite
	timeout  time.Duration // clock: relative timeout, at most maxSleep
	fd       int32         // fd_read, fd_write
}

// parseSubscriptions decodes poll_oneoff's subscriptions (48 bytes each;
// a trailing partial one is ignored). It reads only within b and returns
// the errno of the first invalid one: an unknown event type or clock flag
// (EINVAL), an absolute clock (ENOTSUP), a negative descriptor (EBADF).
func parseSubscriptions(b []byte) ([]pollSub, uint32) {
	n := len(b) / subscriptionSize
	subs := make([]pollSub, 0, n)
	for i := range n {
		r := b[i*subscriptionSize : (i+1)*subscriptionSize]
		s := pollSub{kind: r[8]}
		copy(s.userdata[:], r[0:8])
		switch s.kind {
		case eventClock:
			switch flags := binary.LittleEndian.Uint16(r[40:42]); flags {
			case 0:
			case 1:
				return nil, errnoNotsup
			default:
				return nil, errnoInval
			}
			s.timeout = time.Duration(min(binary.LittleEndian.Uint64(r[24:32]), uint64(maxSleep)))
		case eventFdRead, eventFdWrite:
			if s.fd = int32(binary.LittleEndian.Uint32(r[16:20])); s.fd < 0 {
				return nil, errnoBadf
			}
		default:
			return nil, errnoInval
		}
		subs = append(subs, s)
	}
	return subs, errnoSuccess
}
