package publish

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestForwarderBeatsWhileNATSIsDown: a NATS outage is not a hung loop. With
// the server shut down and messages waiting in the spool, the forwarder
// sits in its backoff and idle waits; it must keep marking its heartbeat
// there, or the watchdog would have systemd restart a daemon that only
// waits for NATS.
func TestForwarderBeatsWhileNATSIsDown(t *testing.T) {
	srv := startNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), true)
	eventually(t, 5*time.Second, "a first heartbeat", func() error {
		if p.LastBeat().IsZero() {
			return fmt.Errorf("LastBeat is zero")
		}
		return nil
	})

	srv.stop()
	eventually(t, 5*time.Second, "publisher notices the disconnect", func() error {
		if p.Status(context.Background()).Connected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	for i := range 3 {
		if out, err := p.Publish(context.Background(), testMsg(i)); err != nil || out != Spooled {
			t.Fatalf("publish %d while NATS is down: got %v, %v, want spooled, nil", i, out, err)
		}
	}
	// Nothing wakes the loop now (the idle recheck is 30 s away): only its
	// waits' own heartbeat can move LastBeat on, well past the last pass.
	after := time.Now().Add(3 * heartbeatEvery)
	eventually(t, 10*time.Second, "heartbeats during the outage", func() error {
		if b := p.LastBeat(); !b.After(after) {
			return fmt.Errorf("LastBeat %s, want after %s", b.Format(time.StampMilli), after.Format(time.StampMilli))
		}
		return nil
	})
	if d := p.Status(context.Background()).SpoolDepth; d != 3 {
		t.Errorf("spool depth during the outage: got %d, want 3", d)
	}
}
