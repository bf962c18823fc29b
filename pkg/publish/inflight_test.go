package publish

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestProbeLeader: against a stream with a leader the probe is rejected and
// stores nothing; with no stream to answer it ends the publishes in flight
// with errLeaderLost, which classify as no_stream.
func TestProbeLeader(t *testing.T) {
	srv := startNATS(t)
	_, js := srv.client()
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), false)
	if out, err := p.Publish(context.Background(), testMsg(0)); err != nil || out != Published {
		t.Fatalf("publish: got %v, %v, want published", out, err)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := p.inflight.watch(cancel)
	defer stop()
	p.probeLeader()
	if n, err := streamCount(js, DefaultStream); err != nil || n != 1 {
		t.Errorf("stream after a probe: got %d messages (%v), want 1 (the probe is never stored)", n, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("publish in flight ended by a probe the leader answered: %v", context.Cause(ctx))
	}

	if err := js.DeleteStream(context.Background(), DefaultStream); err != nil {
		t.Fatalf("delete stream: %v", err)
	}
	p.probeLeader()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("publish in flight not ended after a probe found no responder")
	}
	if c := context.Cause(ctx); !errors.Is(c, errLeaderLost) || failureReason(c) != reasonNoStream {
		t.Errorf("cause: got %v (reason %s), want errLeaderLost (no_stream)", c, failureReason(c))
	}
}
