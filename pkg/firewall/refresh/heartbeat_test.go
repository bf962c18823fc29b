package refresh

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// waitUntil polls cond every 10 ms until it holds, failing after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s within %s: %v", what, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// beatsAfter is a condition: LastBeat later than at.
func beatsAfter(r *Refresher, at time.Time) func() error {
	return func() error {
		if b := r.LastBeat(); !b.After(at) {
			return fmt.Errorf("LastBeat %s, want after %s", b.Format(time.StampMilli), at.Format(time.StampMilli))
		}
		return nil
	}
}

// TestRunBeatsWhileAFetchIsSlow: Agora's API answering slowly is not a hung
// reconcile loop. A refresh is stuck in its fetch (the real ncsip client
// against the fake API, which holds every answer for an hour; the client
// gives up only after ncs.timeout times its attempts), and the reconcile
// loop, idle for its hour-long interval, must keep marking meanwhile.
func TestRunBeatsWhileAFetchIsSlow(t *testing.T) {
	api := ncsiptest.NewServer(t, "id", "secret", "198.51.100.1")
	api.SetDelay(time.Hour)
	client, err := ncsip.New(ncsip.Config{Endpoints: []string{api.Endpoint()}, CustomerID: "id", CustomerSecret: "secret",
		Timeout: time.Minute}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	fw := &fakeFirewall{}
	ref, err := New(Config{Fetcher: client, Firewall: fw, Store: &fakeStore{}, MinIPs: 1, MaxShrink: 0.5, RemoveGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- ref.Run(ctx, time.Hour) }()
	refreshDone := make(chan error, 1)
	go func() { _, err := ref.Refresh(ctx, Options{}); refreshDone <- err }()
	waitUntil(t, 5*time.Second, "the fetch reaches the API", func() error {
		if api.Requests() == 0 {
			return fmt.Errorf("no request yet")
		}
		return nil
	})

	waitUntil(t, 10*time.Second, "heartbeats while the fetch hangs", beatsAfter(ref, time.Now().Add(3*heartbeatEvery)))
	select {
	case err := <-refreshDone:
		t.Fatalf("refresh ended during the test: %v; want it still waiting on the API", err)
	default:
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("Run after cancel: got %v, want nil", err)
	}
	<-refreshDone
}

// hangingFirewall's Reconcile blocks until release is closed: a kernel call
// that never returns.
type hangingFirewall struct {
	*fakeFirewall
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *hangingFirewall) Reconcile(ctx context.Context) (bool, error) {
	h.once.Do(func() { close(h.entered) })
	<-h.release
	return h.fakeFirewall.Reconcile(ctx)
}

// TestRunStopsBeatingWhileReconcileHangs: the heartbeat is the loop's own,
// so a pass stuck in the firewall stops it, and it resumes after.
func TestRunStopsBeatingWhileReconcileHangs(t *testing.T) {
	fw := &hangingFirewall{fakeFirewall: &fakeFirewall{}, entered: make(chan struct{}), release: make(chan struct{})}
	ref, err := New(Config{Firewall: fw, Store: &fakeStore{}, MinIPs: 1, MaxShrink: 0.5, RemoveGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- ref.Run(ctx, 10*time.Millisecond) }()
	<-fw.entered
	hungAt := time.Now()
	// Proving an absence takes time: three heartbeat periods.
	waitUntil(t, 10*time.Second, "three heartbeat periods", func() error {
		if time.Since(hungAt) < 3*heartbeatEvery {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if b := ref.LastBeat(); b.After(hungAt) {
		t.Errorf("LastBeat while Reconcile hangs: got %s, want at most %s", b.Format(time.StampMilli), hungAt.Format(time.StampMilli))
	}
	close(fw.release)
	waitUntil(t, 5*time.Second, "heartbeats once Reconcile returns", beatsAfter(ref, time.Now()))
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("Run after cancel: got %v, want nil", err)
	}
}
