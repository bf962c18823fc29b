package ledger

import (
	"testing"
	"time"
)

// TestRestFor checks the pacing rule: no rest for a trickle; under load,
// trail the stream by paceTrail and rest at least paceRatio times the
// batch's time; never rest behind an old or a long backlog.
func TestRestFor(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name           string
		n              int
		pending        uint64
		oldAge, newAge time.Duration
		took           time.Duration
		wantRest       time.Duration
	}{
		{"a trickle", 10, 0, time.Second, 0, 300 * ms, 0},
		{"a big batch, nothing behind: trail", paceMinBatch, 0, time.Second, 500 * ms, 300 * ms, paceTrail - 500*ms},
		{"young backlog: trail", 10, 5000, time.Second, 500 * ms, 300 * ms, paceTrail - 500*ms},
		{"trailing already: the ratio", 4096, 5000, paceTrail + time.Second, paceTrail, 300 * ms, paceRatio * 300 * ms},
		{"long batch: paceMax", 4096, 5000, paceTrail + time.Second, paceTrail, 5 * time.Second, paceMax},
		{"server clock ahead: at most paceTrail", 4096, 5000, -time.Minute, -time.Minute, 300 * ms, paceTrail},
		{"old backlog: full speed", 4096, 5000, paceMaxLag + ms, paceTrail, 300 * ms, 0},
		{"long backlog: full speed", 4096, paceMaxPending + 1, time.Second, 0, 300 * ms, 0},
		{"no time taken", 4096, 5000, time.Second, 0, 0, 0},
	}
	for _, c := range cases {
		if got := restFor(c.n, c.pending, c.oldAge, c.newAge, c.took); got != c.wantRest {
			t.Errorf("%s: restFor(%d, %d, %v, %v, %v) = %v, want %v", c.name, c.n, c.pending, c.oldAge, c.newAge, c.took, got, c.wantRest)
		}
	}
}
