package ledger

import (
	"testing"
	"time"
)

// TestRestFor checks the pacing rule: rest paceRatio times the batch's
// time (at most paceMax) after a big batch or with a backlog behind it,
// only while the batch's oldest notification is young.
func TestRestFor(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name     string
		n        int
		pending  uint64
		age      time.Duration
		took     time.Duration
		wantRest time.Duration
	}{
		{"a trickle", 10, 0, time.Second, 300 * ms, 0},
		{"a big batch, nothing behind", paceMinBatch, 0, time.Second, 300 * ms, paceRatio * 300 * ms},
		{"young backlog", 10, 5000, time.Second, 300 * ms, paceRatio * 300 * ms},
		{"long batch capped", 4096, 5000, time.Second, 5 * time.Second, paceMax},
		{"old backlog: full speed", 4096, 5000, paceMaxLag + ms, 300 * ms, 0},
		{"no time taken", 4096, 5000, time.Second, 0, 0},
	}
	for _, c := range cases {
		if got := restFor(c.n, c.pending, c.age, c.took); got != c.wantRest {
			t.Errorf("%s: restFor(%d, %d, %v, %v) = %v, want %v", c.name, c.n, c.pending, c.age, c.took, got, c.wantRest)
		}
	}
}
