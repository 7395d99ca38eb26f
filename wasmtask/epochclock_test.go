package wasmtask

import "testing"

// TestEpochClockEstimates pins when an epoch check estimates the time and
// when it reads the clock: estimates only with a measured rate, only short
// of half the time left to the next event, and at most maxEstimatedChecks
// in a row; a read restarts the count and measures the rate.
func TestEpochClockEstimates(t *testing.T) {
	var c epochClock
	start := nanos()
	c.restart(start, 0)
	if _, est := c.now(1000, start+1e12); est {
		t.Fatal("estimated without a measured rate")
	}
	if c.nsPerFuel <= 0 {
		t.Fatalf("a read after 1000 fuel measured rate %v", c.nsPerFuel)
	}
	c.nsPerFuel = 1 // 1 ns per fuel from here on
	far := c.readAt + 1e12
	for i := range maxEstimatedChecks {
		now, est := c.now(c.usedAt+int64(i+1), far)
		if !est {
			t.Fatalf("check %d: read the clock with the next event far away", i+1)
		}
		if want := c.readAt + int64(i+1); now != want {
			t.Fatalf("check %d: estimate %d, want %d", i+1, now, want)
		}
	}
	if _, est := c.now(c.usedAt+maxEstimatedChecks+1, far); est {
		t.Fatalf("estimated past %d checks in a row", maxEstimatedChecks)
	}
	if c.estimates != 0 {
		t.Fatalf("a read left %d estimates counted", c.estimates)
	}
	c.nsPerFuel = 1
	near := c.readAt + 100
	if _, est := c.now(c.usedAt+49, near); !est {
		t.Fatal("read the clock before half the time to the next event")
	}
	if _, est := c.now(c.usedAt+50, near); est {
		t.Fatal("estimated at half the time to the next event")
	}
	c.nsPerFuel = 1
	if _, est := c.now(c.usedAt+1, c.readAt-1); est {
		t.Fatal("estimated with the next event already past")
	}
}
