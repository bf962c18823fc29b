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

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := p.inflight.add(stopFunc(cancel), time.Now(), time.Now().Add(time.Hour))
	removed := false
	defer func() {
		if !removed {
			p.inflight.remove(e)
		}
	}()
	p.probeLeader()
	if n, err := streamCount(js, DefaultStream); err != nil || n != 1 {
		t.Errorf("stream after a probe: got %d messages (%v), want 1 (the probe is never stored)", n, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("publish in flight ended by a probe the leader answered: %v", ctx.Err())
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
	removed = true
	if c := p.inflight.remove(e); !errors.Is(c, errLeaderLost) || failureReason(c) != reasonNoStream {
		t.Errorf("cause: got %v (reason %s), want errLeaderLost (no_stream)", c, failureReason(c))
	}
}

// TestInflightProbe: the shared timer calls the probe once the oldest
// publish in flight has waited probeAfter, not before, and disarms when
// nothing is in flight (so it probes no more); end stops exactly the publishes then in flight.
func TestInflightProbe(t *testing.T) {
	probes := make(chan struct{}, 16)
	f := &inflight{probe: func() { probes <- struct{}{} }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	young := f.add(stopFunc(cancel), time.Now(), time.Now().Add(time.Hour))
	select {
	case <-probes:
		t.Fatal("probe before any publish waited probeAfter")
	default:
	}
	old := f.add(stopFunc(func() {}), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)) // behind young, but overdue
	f.remove(young)
	select {
	case <-probes:
	case <-time.After(5 * time.Second):
		t.Fatal("no probe within 5 s for a publish in flight for an hour")
	}
	if ctx.Err() != nil {
		t.Fatal("a probe alone ended a publish")
	}

	// end stops what is in flight, and not what starts after.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	cur := f.add(stopFunc(cancel2), time.Now(), time.Now().Add(time.Hour))
	f.end(errLeaderLost)
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	later := f.add(stopFunc(cancel3), time.Now(), time.Now().Add(time.Hour))
	if ctx2.Err() == nil {
		t.Error("publish in flight not ended by end")
	}
	if c := f.remove(cur); !errors.Is(c, errLeaderLost) {
		t.Errorf("cause of an ended publish: got %v, want errLeaderLost", c)
	}
	if ctx3.Err() != nil {
		t.Error("publish started after end was ended")
	}
	if c := f.remove(later); c != nil {
		t.Errorf("cause of a publish started after end: got %v, want nil", c)
	}
	if c := f.remove(old); !errors.Is(c, errLeaderLost) {
		t.Errorf("cause of the overdue publish: got %v, want errLeaderLost", c)
	}

	// Nothing in flight: the timer disarms.
	if !eventuallyTrue(5*time.Second, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return !f.armed }) {
		t.Fatal("timer still armed 5 s after the last publish ended")
	}
}

// eventuallyTrue polls cond until it holds or within passes.
func eventuallyTrue(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// TestInflightDeadline: the shared timer ends a publish at its deadline
// with errPublishTimeout (a timeout), and not the younger one behind it.
func TestInflightDeadline(t *testing.T) {
	f := &inflight{}
	now := time.Now()
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	first := f.add(stopFunc(cancel1), now, now.Add(50*time.Millisecond))
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	second := f.add(stopFunc(cancel2), now, now.Add(time.Hour))
	select {
	case <-ctx1.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("publish not ended 5 s after its 50 ms deadline")
	}
	if c := f.remove(first); !errors.Is(c, errPublishTimeout) || failureReason(c) != reasonTimeout {
		t.Errorf("cause: got %v (reason %s), want errPublishTimeout (timeout)", c, failureReason(c))
	}
	if ctx2.Err() != nil {
		t.Error("publish before its deadline ended")
	}
	if c := f.remove(second); c != nil {
		t.Errorf("cause of the running publish: got %v, want nil", c)
	}
}
