package ledger

import (
	"testing"
	"time"
)

// TestPacing checks the pacing rule: nothing for a trickle; under load,
// hold a batch until its newest is paceTrail old and rest paceRatio times
// its time after it; nothing behind an old or a long backlog.
func TestPacing(t *testing.T) {
	ms := time.Millisecond
	now := time.Unix(1_000_000, 0)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	cases := []struct {
		name     string
		b        batchLoad
		took     time.Duration
		wantHold time.Duration
		wantRest time.Duration
	}{
		{"a trickle", batchLoad{10, 0, ago(time.Second), ago(0)}, 300 * ms, 0, 0},
		{"a big batch, nothing behind", batchLoad{paceMinBatch, 0, ago(time.Second), ago(500 * ms)}, 300 * ms, paceTrail - 500*ms, paceRatio * 300 * ms},
		{"young backlog", batchLoad{10, 5000, ago(time.Second), ago(500 * ms)}, 300 * ms, paceTrail - 500*ms, paceRatio * 300 * ms},
		{"trailing already", batchLoad{4096, 5000, ago(paceTrail + time.Second), ago(paceTrail)}, 300 * ms, 0, paceRatio * 300 * ms},
		{"long batch", batchLoad{4096, 5000, ago(paceTrail + time.Second), ago(paceTrail)}, 5 * time.Second, 0, paceMax},
		{"server clock ahead", batchLoad{4096, 5000, ago(-time.Minute), ago(-time.Minute)}, 300 * ms, paceTrail, paceRatio * 300 * ms},
		{"old backlog", batchLoad{4096, 5000, ago(paceMaxLag + ms), ago(paceTrail)}, 300 * ms, 0, 0},
		{"long backlog", batchLoad{4096, paceMaxPending + 1, ago(time.Second), ago(0)}, 300 * ms, 0, 0},
		{"empty", batchLoad{}, 300 * ms, 0, 0},
	}
	for _, c := range cases {
		if got := c.b.hold(now); got != c.wantHold {
			t.Errorf("%s: hold = %v, want %v", c.name, got, c.wantHold)
		}
		if got := c.b.rest(c.took, now); got != c.wantRest {
			t.Errorf("%s: rest after %v = %v, want %v", c.name, c.took, got, c.wantRest)
		}
	}
}
