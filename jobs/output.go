package jobs

import (
	"bytes"
	"sync"
)

// outputLimit bounds the stdout and stderr kept per job: they are stored
// in the job's record, whose size JetStream bounds.
const outputLimit = 64 << 10

// limitedBuffer keeps the first outputLimit bytes written to it; safe for
// concurrent use. Writes past the limit succeed (the guest is not failed
// for being verbose) and are dropped.
type limitedBuffer struct {
	mu        sync.Mutex
	b         bytes.Buffer
	truncated bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room := outputLimit - l.b.Len()
	if room < len(p) {
		l.truncated = true
		if room > 0 {
			l.b.Write(p[:room])
		}
		return len(p), nil
	}
	l.b.Write(p)
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated {
		return l.b.String() + "\n[output truncated at 64 KiB]"
	}
	return l.b.String()
}
