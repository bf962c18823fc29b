package ledger

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestNotCaughtUpWhileIndexLoads: a consumer with nothing pending is not
// enough to be caught up; while the index does not yet hold the whole
// bucket (a restart on a big bucket), its counts are partial and no time
// fact may be raised, so caught_up stays false and 0 until it does.
func TestNotCaughtUpWhileIndexLoads(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	l, err := New(DefaultConfig(), n.connect(), zap.NewNop(), reg)
	if err != nil {
		t.Fatalf("new ledger: %v", err)
	}
	stream, err := js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	cons, err := l.ensureConsumer(ctx, js)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	tl := &testLedger{Ledger: l, reg: reg}
	r := &runner{l: l, js: js, stream: stream}
	r.cons.Store(&cons)

	// Nothing pending on the consumer, the index not loaded (no watch ran).
	if got := r.refreshLag(ctx); got {
		t.Errorf("refreshLag with the index loading: got caught up, want not")
	}
	if s := l.Status(); s.CaughtUp || s.LagMessages != 0 {
		t.Errorf("status with the index loading: got caught_up %v lag %d, want false 0", s.CaughtUp, s.LagMessages)
	}
	if got := tl.metric(t, "ncs_gateway_ledger_caught_up"); got != 0 {
		t.Errorf("ncs_gateway_ledger_caught_up with the index loading: got %v, want 0", got)
	}

	l.loaded.Store(true)
	if got := r.refreshLag(ctx); !got {
		t.Errorf("refreshLag with the index loaded: got not caught up, want caught up")
	}
	if s := l.Status(); !s.CaughtUp || !s.IndexLoaded {
		t.Errorf("status with the index loaded: got caught_up %v index_loaded %v, want true true", s.CaughtUp, s.IndexLoaded)
	}
	if got := tl.metric(t, "ncs_gateway_ledger_caught_up"); got != 1 {
		t.Errorf("ncs_gateway_ledger_caught_up with the index loaded: got %v, want 1", got)
	}
}

// TestIdleFetchAllocatesLittle: an idle ledger fetches about once a second
// (fetchWait); each fetch must cost little. A fetch by bytes alone made
// the client allocate a channel of a million messages (16 MB) per fetch,
// the garbage that drove the daemon's peak heap and RSS.
func TestIdleFetchAllocatesLittle(t *testing.T) {
	n := startNATS(t)
	n.client()
	tl := runLedger(t, n, DefaultConfig())
	eventually(t, 10*time.Second, "caught up on an empty stream", func() error {
		if s := tl.Status(); !s.CaughtUp {
			return fmt.Errorf("got caught_up false, want true")
		}
		return nil
	})
	const passes = 3
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	last, seen := tl.LastBeat(), 0
	eventually(t, (passes+2)*fetchWait+5*time.Second, "fetch loop passes", func() error {
		if b := tl.LastBeat(); b.After(last) {
			last, seen = b, seen+1
		}
		if seen < passes {
			return fmt.Errorf("got %d passes, want %d", seen, passes)
		}
		return nil
	})
	runtime.ReadMemStats(&after)
	const limit = 8 << 20
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Errorf("allocated over %d idle fetches (the nats-server's included): got %d MiB, want under %d MiB", passes, got>>20, limit>>20)
	}
}
