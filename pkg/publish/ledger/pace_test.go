package ledger

import (
	"testing"
	"time"
)

// TestRestFor checks the pacing rule: rest paceRatio times the batch's
// time (at most paceMax) only while a young backlog waits behind it.
func TestRestFor(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name     string
		pending  uint64
		age      time.Duration
		took     time.Duration
		wantRest time.Duration
	}{
		{"caught up", 0, time.Second, 300 * ms, 0},
		{"young backlog", 5000, time.Second, 300 * ms, paceRatio * 300 * ms},
		{"long batch capped", 5000, time.Second, 5 * time.Second, paceMax},
		{"old backlog: full speed", 5000, paceMaxLag + ms, 300 * ms, 0},
		{"no time taken", 5000, time.Second, 0, 0},
	}
	for _, c := range cases {
		if got := restFor(c.pending, c.age, c.took); got != c.wantRest {
			t.Errorf("%s: restFor(%d, %v, %v) = %v, want %v", c.name, c.pending, c.age, c.took, got, c.wantRest)
		}
	}
}
