package watchdog

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// notifySocket is a fake systemd NOTIFY_SOCKET recording every line.
type notifySocket struct {
	mu    sync.Mutex
	lines []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on a notify socket: %v", err)
	}
	n := &notifySocket{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.lines = append(n.lines, strings.Split(strings.TrimSpace(string(buf[:k])), "\n")...)
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	t.Setenv("NOTIFY_SOCKET", path)
	return n
}

func (n *notifySocket) pings() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(n.lines), func(s string) bool { return s != "WATCHDOG=1" }))
}

// stuckFirewall's Reconcile blocks while stuck is set: a kernel call that
// does not return.
type stuckFirewall struct {
	mu      sync.Mutex
	stuck   chan struct{} // nil: not stuck; else closed to release
	entered chan struct{}
}

func (f *stuckFirewall) Apply(context.Context, []netip.Prefix) error { return nil }
func (f *stuckFirewall) Reconcile(context.Context) (bool, error) {
	f.mu.Lock()
	stuck, entered := f.stuck, f.entered
	f.entered = nil
	f.mu.Unlock()
	if stuck != nil {
		if entered != nil {
			close(entered)
		}
		<-stuck
	}
	return false, nil
}

type memStore struct{}

func (memStore) Load() (*refresh.State, error) { return nil, nil }
func (memStore) Save(*refresh.State) error     { return nil }

// TestDaemonPartsAgainstNotifySocket wires real parts as the daemon does (a
// webhook server with its self-probe, a refresher's reconcile loop) to the
// watchdog with its default notifier and systemd's environment, against a
// fake NOTIFY_SOCKET: pings arrive; the reconcile loop stuck in the
// firewall stops them and is named; they resume when it returns.
func TestDaemonPartsAgainstNotifySocket(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "200000") // pings every 100 ms
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(ctx) }()
	}

	hook, err := webhook.NewServer(webhook.Config{Listen: "127.0.0.1:0", Path: "/agora/ncs", Secrets: []string{"secret"}},
		nopPublisher{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := hook.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hook.Shutdown(context.Background()) }()
	probe := webhook.NewProbe(hook, nil)

	fw := &stuckFirewall{}
	ref, err := refresh.New(refresh.Config{Firewall: fw, Store: memStore{}, MinIPs: 1, MaxShrink: 0.5, RemoveGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	w, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.Interval(), 100*time.Millisecond; got != want {
		t.Fatalf("interval from WATCHDOG_USEC=200ms: got %s, want %s", got, want)
	}
	// Short silences for the test; the daemon uses the *MaxSilence values.
	_ = w.Add("webhook", probe, WebhookMaxSilence)
	_ = w.Add("refresher", ref, 3*time.Second)
	goRun(probe.Run)
	goRun(func(ctx context.Context) error { return ref.Run(ctx, 50*time.Millisecond) })
	var checks atomic.Int64
	w.checked = func() { checks.Add(1) }
	goRun(w.Run)

	waitFor(t, "5 pings on the notify socket", func() bool { return sock.pings() >= 5 })

	release, entered := make(chan struct{}), make(chan struct{})
	fw.mu.Lock()
	fw.stuck, fw.entered = release, entered
	fw.mu.Unlock()
	<-entered
	waitFor(t, "the refresher named as stalled", func() bool { return slices.Equal(w.Stalled(), []string{"refresher"}) })
	// Pings already in the socket's queue may still arrive: count from
	// 10 checks later, over the 10 after that.
	c0 := checks.Load()
	waitFor(t, "10 checks", func() bool { return checks.Load() >= c0+10 })
	before := sock.pings()
	waitFor(t, "10 more checks", func() bool { return checks.Load() >= c0+20 })
	if got := sock.pings(); got != before {
		t.Errorf("pings while the reconcile loop is stuck: got %d more, want 0", got-before)
	}

	fw.mu.Lock()
	fw.stuck = nil
	fw.mu.Unlock()
	close(release)
	waitFor(t, "pings again once the loop returns", func() bool { return sock.pings() > before })
	if s := w.Stalled(); s != nil {
		t.Errorf("Stalled after recovery: got %q, want none", s)
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, webhook.Notification) (webhook.Outcome, error) {
	return webhook.Published, nil
}
