package watchdog

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
)

// fakePart is a heartbeat the test sets by hand.
type fakePart struct{ ns atomic.Int64 }

func (f *fakePart) LastBeat() time.Time {
	if n := f.ns.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
func (f *fakePart) beat(at time.Time) { f.ns.Store(at.UnixNano()) }

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// fakeNotifier records what would have gone to systemd.
type fakeNotifier struct {
	mu    sync.Mutex
	lines []string
}

func (n *fakeNotifier) notify(s string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, s)
	return nil
}

func (n *fakeNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.lines)
}

// TestStepPingsOnlyWhileAllFresh drives the checks by hand on a fake clock:
// all fresh pings; one part silent past its max silence stops the pings
// and is named; it pings again once that part beats.
func TestStepPingsOnlyWhileAllFresh(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	n := &fakeNotifier{}
	core, logs := observer.New(zap.InfoLevel)
	w, err := New(Config{Notify: n.notify, Interval: time.Second, Now: clk.now}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	webhook, publisher := &fakePart{}, &fakePart{}
	if err := w.Add("webhook", webhook, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("publisher", publisher, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("publisher", publisher, 30*time.Second); err == nil {
		t.Errorf("a name added twice: got nil, want an error")
	}

	// Never beaten yet, inside the max silence from the start: fresh.
	w.step()
	if got := n.count(); got != 1 {
		t.Fatalf("pings at start: got %d, want 1", got)
	}
	for range 5 {
		now := clk.add(5 * time.Second)
		webhook.beat(now)
		publisher.beat(now)
		w.step()
	}
	if got, want := n.lines, slices.Repeat([]string{"WATCHDOG=1"}, 6); !slices.Equal(got, want) {
		t.Fatalf("pings while all beat: got %q, want %q", got, want)
	}
	if s := w.Stalled(); s != nil {
		t.Fatalf("Stalled while all beat: got %q, want none", s)
	}

	// The webhook's loop hangs: the publisher still beats.
	hungAt := clk.now()
	for clk.now().Sub(hungAt) <= 10*time.Second {
		publisher.beat(clk.add(time.Second))
		w.step()
	}
	before := n.count()
	if s := w.Stalled(); !slices.Equal(s, []string{"webhook"}) {
		t.Fatalf("Stalled after 11 s of webhook silence: got %q, want [webhook]", s)
	}
	for range 20 {
		publisher.beat(clk.add(time.Second))
		w.step()
	}
	if got := n.count(); got != before {
		t.Errorf("pings while the webhook is stalled: got %d more, want 0", got-before)
	}
	if got := logs.FilterMessageSnippet("part stalled").FilterField(zap.String("part", "webhook")).Len(); got != 1 {
		t.Errorf("stall log lines for webhook: got %d, want 1 (logged once)", got)
	}

	// It beats again: pings resume, Stalled is empty, the recovery is logged once.
	webhook.beat(clk.add(time.Second))
	publisher.beat(clk.now())
	w.step()
	w.step()
	if got := n.count(); got != before+2 {
		t.Errorf("pings after the webhook beats again: got %d more, want 2", got-before)
	}
	if s := w.Stalled(); s != nil {
		t.Errorf("Stalled after recovery: got %q, want none", s)
	}
	if got := logs.FilterMessage("part beats again").Len(); got != 1 {
		t.Errorf("recovery log lines: got %d, want 1", got)
	}
}

// TestNeverBeatingPartStalls: a loop that never starts is caught once its
// max silence has passed since the watchdog started.
func TestNeverBeatingPartStalls(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	n := &fakeNotifier{}
	w, err := New(Config{Notify: n.notify, Interval: time.Second, Now: clk.now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("refresher", &fakePart{}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	clk.add(6 * time.Second)
	w.step()
	if got := n.count(); got != 0 {
		t.Errorf("pings with a part that never beat past its max silence: got %d, want 0", got)
	}
	if s := w.Stalled(); !slices.Equal(s, []string{"refresher"}) {
		t.Errorf("Stalled: got %q, want [refresher]", s)
	}
}

// loopPart is a real loop: a goroutine that marks its heartbeat every few
// milliseconds until it is made to hang.
type loopPart struct {
	fakePart
	hang chan chan struct{} // send a channel: the loop blocks until it is closed
}

func startLoop(ctx context.Context) *loopPart {
	p := &loopPart{hang: make(chan chan struct{})}
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			p.beat(time.Now())
			select {
			case <-ctx.Done():
				return
			case release := <-p.hang:
				select { // stuck, as a loop waiting on a lock that never comes
				case <-release:
				case <-ctx.Done():
					return
				}
			case <-t.C:
			}
		}
	}()
	return p
}

// TestRunStopsPingingWhileALoopHangs runs the real loop on the real clock
// against goroutines that beat, one of which is made to hang.
func TestRunStopsPingingWhileALoopHangs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := &fakeNotifier{}
	core, logs := observer.New(zap.InfoLevel)
	w, err := New(Config{Notify: n.notify, Interval: 10 * time.Millisecond}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	var checks atomic.Int64
	w.checked = func() { checks.Add(1) }
	good, bad := startLoop(ctx), startLoop(ctx)
	const maxSilence = 200 * time.Millisecond
	_ = w.Add("good", good, maxSilence)
	_ = w.Add("bad", bad, maxSilence)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	waitFor(t, "3 pings while both loops beat", func() bool { return n.count() >= 3 })

	release := make(chan struct{})
	bad.hang <- release
	waitFor(t, "the hung loop named by Stalled", func() bool { return slices.Equal(w.Stalled(), []string{"bad"}) })
	waitFor(t, "the stall logged", func() bool { return logs.FilterMessageSnippet("part stalled").Len() == 1 })
	// From the check that logged the stall on, no ping: let 10 more checks run.
	pings, c0 := n.count(), checks.Load()
	waitFor(t, "10 more checks", func() bool { return checks.Load() >= c0+10 })
	if got := n.count(); got != pings {
		t.Errorf("pings while a loop is hung: got %d more, want 0", got-pings)
	}

	close(release)
	waitFor(t, "pings again once the loop beats", func() bool { return n.count() > pings })
	if s := w.Stalled(); s != nil {
		t.Errorf("Stalled after recovery: got %q, want none", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: got %v, want nil", err)
	}
}

// TestRunWithoutSystemd: no WATCHDOG_USEC, no pings, stalls still reported.
func TestRunWithoutSystemd(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("WATCHDOG_PID", "")
	n := &fakeNotifier{}
	w, err := New(Config{Notify: n.notify}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Interval() != 0 {
		t.Errorf("Interval without systemd: got %s, want 0", w.Interval())
	}
	_ = w.Add("p", &fakePart{}, time.Hour)
	w.step()
	if got := n.count(); got != 0 {
		t.Errorf("pings without systemd's watchdog: got %d, want 0", got)
	}
}

// TestIntervalFromSystemd: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises.
func TestIntervalFromSystemd(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	w, err := New(Config{Notify: (&fakeNotifier{}).notify}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.Interval(), 15*time.Second; got != want {
		t.Errorf("Interval with WatchdogSec=30s: got %s, want %s", got, want)
	}
}

func TestMaxFetchTime(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  ncsip.Config
		want time.Duration
	}{
		{"defaults", ncsip.Config{}, 70 * time.Second},
		{"timeout 30s", ncsip.Config{Timeout: 30 * time.Second}, 150 * time.Second},
		{"no retries", ncsip.Config{Timeout: 5 * time.Second, Backoff: []time.Duration{}}, 5 * time.Second},
		{"long backoff", ncsip.Config{Timeout: time.Second, Backoff: []time.Duration{20 * time.Second}, MaxRetryAfter: 5 * time.Second}, 22 * time.Second},
	} {
		if got := MaxFetchTime(c.cfg); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

// waitFor polls cond until it holds, failing after a bounded deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: got nothing within 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestMaxSilences(t *testing.T) {
	if got, want := PublisherMaxSilence(3*time.Second), 36*time.Second; got != want {
		t.Errorf("PublisherMaxSilence(3s): got %s, want %s", got, want)
	}
	if got, want := SchedulerMaxSilence(ncsip.Config{}), 170*time.Second; got != want {
		t.Errorf("SchedulerMaxSilence(defaults): got %s, want %s", got, want)
	}
}
