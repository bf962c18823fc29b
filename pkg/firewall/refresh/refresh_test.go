package refresh

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// fixture is a Refresher wired to the fake Agora API, a fake firewall and
// a fake store, with a clock the test moves.
type fixture struct {
	api   *ncsiptest.Server
	fw    *fakeFirewall
	store *fakeStore
	reg   *prometheus.Registry
	logs  *observer.ObservedLogs
	ref   *Refresher
	clock time.Time
}

type fixtureConfig struct {
	minIPs    int
	maxShrink float64
	fw        Firewall // default: the fixture's fakeFirewall
}

func newFixture(t *testing.T, fc fixtureConfig, ips ...string) *fixture {
	t.Helper()
	if fc.minIPs == 0 {
		fc.minIPs = 1
	}
	if fc.maxShrink == 0 {
		fc.maxShrink = 0.5
	}
	api := ncsiptest.NewServer(t, "id", "secret", ips...)
	client, err := ncsip.New(ncsip.Config{
		Endpoints: []string{api.Endpoint()}, CustomerID: "id", CustomerSecret: "secret",
		Timeout: time.Second, Backoff: []time.Duration{time.Millisecond},
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	f := &fixture{api: api, fw: &fakeFirewall{}, store: &fakeStore{}, reg: prometheus.NewRegistry(), logs: logs,
		clock: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	if fc.fw == nil {
		fc.fw = f.fw
	}
	f.ref, err = New(Config{
		Fetcher: client, Firewall: fc.fw, Store: f.store,
		StaticAllow: prefixes("192.0.2.0/28"),
		MinIPs:      fc.minIPs, MaxShrink: fc.maxShrink, RemoveGrace: 24 * time.Hour,
		Metrics: NewMetrics(f.reg), Log: zap.New(core),
		Now: func() time.Time { return f.clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestRefreshAppliesMergesAndPersists(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "203.0.113.2", "198.51.100.1", "2001:db8::1")
	ctx := context.Background()

	p, err := f.ref.Refresh(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := addrs("198.51.100.1", "203.0.113.2", "2001:db8::1")
	if !slices.Equal(p.Added, want) {
		t.Errorf("added: got %v, want %v", p.Added, want)
	}
	if got := f.store.addrs(); !slices.Equal(got, want) {
		t.Errorf("persisted: got %v, want %v", got, want)
	}
	wantApplied := prefixes("192.0.2.0/28", "198.51.100.1/32", "203.0.113.2/32", "2001:db8::1/128")
	if got := f.fw.kernel(); !slices.Equal(got, wantApplied) {
		t.Errorf("applied: got %v, want %v", got, wantApplied)
	}
	if p.Entries != len(wantApplied) {
		t.Errorf("plan entries: got %d, want %d", p.Entries, len(wantApplied))
	}

	// 203.0.113.2 leaves the list: it stays allowed for remove_grace.
	f.api.SetIPs([]string{"198.51.100.1", "2001:db8::1", "203.0.113.9"})
	f.clock = f.clock.Add(time.Hour)
	p, err = f.ref.Refresh(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Grace, addrs("203.0.113.2")) || !slices.Equal(p.Added, addrs("203.0.113.9")) || len(p.Removed) != 0 {
		t.Errorf("got grace %v added %v removed %v, want grace [203.0.113.2] added [203.0.113.9] removed []", p.Grace, p.Added, p.Removed)
	}
	if !slices.Contains(f.fw.kernel(), netip.MustParsePrefix("203.0.113.2/32")) {
		t.Errorf("applied %v lacks 203.0.113.2 during its grace period", f.fw.kernel())
	}

	// A day later it is gone.
	f.clock = f.clock.Add(24 * time.Hour)
	p, err = f.ref.Refresh(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Removed, addrs("203.0.113.2")) || len(p.Grace) != 0 {
		t.Errorf("got removed %v grace %v, want removed [203.0.113.2] grace []", p.Removed, p.Grace)
	}
	if slices.Contains(f.fw.kernel(), netip.MustParsePrefix("203.0.113.2/32")) {
		t.Errorf("applied %v still holds 203.0.113.2 after its grace period", f.fw.kernel())
	}
}

func TestRefreshFailuresKeepTheLastGoodList(t *testing.T) {
	ten := []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5",
		"198.51.100.6", "198.51.100.7", "198.51.100.8", "198.51.100.9", "198.51.100.10"}
	tests := []struct {
		name       string
		fc         fixtureConfig
		break_     func(*fixture)
		wantReason string
	}{
		{"server errors", fixtureConfig{}, func(f *fixture) { f.api.QueueStatus(500, 500) }, "fetch_server_error"},
		{"unauthorized", fixtureConfig{}, func(f *fixture) { f.api.QueueStatus(401) }, "fetch_unauthorized"},
		{"garbage", fixtureConfig{}, func(f *fixture) { f.api.QueueFault(ncsiptest.Garbage, ncsiptest.Garbage) }, "fetch_bad_response"},
		{"empty list", fixtureConfig{}, func(f *fixture) { f.api.SetIPs(nil) }, "fetch_empty"},
		{"shrinks by 90%", fixtureConfig{}, func(f *fixture) { f.api.SetIPs(ten[:1]) }, ReasonShrinkRefused},
		{"below min_ips", fixtureConfig{minIPs: 5, maxShrink: 1}, func(f *fixture) { f.api.SetIPs(ten[:4]) }, ReasonBelowMinIPs},
		{"apply fails", fixtureConfig{}, func(f *fixture) {
			f.api.SetIPs(ten[:8])
			f.fw.failApply = errors.New("netlink: operation not permitted")
		}, ReasonApply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.fc, ten...)
			ctx := context.Background()
			if _, err := f.ref.Refresh(ctx, Options{}); err != nil {
				t.Fatal(err)
			}
			before, applied := f.store.addrs(), f.fw.kernel()
			logged := f.logs.Len()

			tt.break_(f)
			f.clock = f.clock.Add(time.Hour)
			_, err := f.ref.Refresh(ctx, Options{})
			if err == nil {
				t.Fatal("got no error, want a refused refresh")
			}
			if got := Reason(err); got != tt.wantReason {
				t.Errorf("reason: got %q, want %q (%v)", got, tt.wantReason, err)
			}
			if got := f.store.addrs(); !slices.Equal(got, before) {
				t.Errorf("persisted list changed: got %v, want %v", got, before)
			}
			if got := f.fw.kernel(); !slices.Equal(got, applied) {
				t.Errorf("applied list changed: got %v, want %v", got, applied)
			}
			if st := f.ref.Status(); st.Last.OK || st.Last.Reason != tt.wantReason {
				t.Errorf("status: got %+v, want a failure with reason %q", st.Last, tt.wantReason)
			}
			if got := value(t, f.ref.metrics.refreshFailures.WithLabelValues(tt.wantReason)); got != 1 {
				t.Errorf("refresh_failures_total{reason=%q}: got %v, want 1", tt.wantReason, got)
			}
			// The caller reports the error; Refresh must not log it too.
			for _, e := range f.logs.All()[logged:] {
				if e.Level >= zapcore.ErrorLevel {
					t.Errorf("Refresh logged its own failure: %q", e.Message)
				}
			}
		})
	}
}

func TestRefreshForcePassesTheShrinkGate(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "198.51.100.1", "198.51.100.2", "198.51.100.3")
	ctx := context.Background()
	if _, err := f.ref.Refresh(ctx, Options{}); err != nil {
		t.Fatal(err)
	}
	f.api.SetIPs([]string{"203.0.113.1"})
	if _, err := f.ref.Refresh(ctx, Options{}); Reason(err) != ReasonShrinkRefused {
		t.Fatalf("got %v, want shrink_refused", err)
	}
	if _, err := f.ref.Refresh(ctx, Options{Force: true}); err != nil {
		t.Fatalf("forced refresh: got %v, want success", err)
	}
	if got := f.store.addrs(); !slices.Contains(got, netip.MustParseAddr("203.0.113.1")) {
		t.Errorf("persisted: got %v, want it to hold 203.0.113.1", got)
	}
}

func TestRefreshDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "198.51.100.1")
	p, err := f.ref.Refresh(context.Background(), Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Added, addrs("198.51.100.1")) {
		t.Errorf("plan added: got %v, want [198.51.100.1]", p.Added)
	}
	if got := f.store.addrs(); got != nil {
		t.Errorf("persisted: got %v, want nothing", got)
	}
	if f.fw.applies != 0 {
		t.Errorf("applies: got %d, want 0", f.fw.applies)
	}
}

// TestFailedPersistIsRetriedNeverReverted: a save that fails (disk full)
// after the apply leaves the new list in the kernel; reconciles retry the
// save until it succeeds and never put the stale saved list back.
func TestFailedPersistIsRetriedNeverReverted(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "198.51.100.1")
	ctx := context.Background()
	if _, err := f.ref.Refresh(ctx, Options{}); err != nil {
		t.Fatal(err)
	}
	f.store.failSave = errDiskFull
	f.api.SetIPs([]string{"198.51.100.1", "198.51.100.2"})
	f.clock = f.clock.Add(time.Hour)
	_, err := f.ref.Refresh(ctx, Options{})
	if Reason(err) != ReasonPersist || !errors.Is(err, errDiskFull) {
		t.Fatalf("got %v, want a persist failure wrapping the disk error", err)
	}
	want := prefixes("192.0.2.0/28", "198.51.100.1/32", "198.51.100.2/32")
	for i := range 3 {
		if err := f.ref.Reconcile(ctx); !errors.Is(err, errDiskFull) {
			t.Fatalf("reconcile %d: got %v, want the retried save's error", i, err)
		}
		if got := f.fw.kernel(); !slices.Equal(got, want) {
			t.Fatalf("reconcile %d: kernel got %v, want %v (never reverted)", i, got, want)
		}
	}
	if got := value(t, f.ref.metrics.persistFailures); got != 4 {
		t.Errorf("persist failures: got %v, want 4 (the refresh and three retries)", got)
	}
	if st := f.ref.Status(); st.PersistError == "" || !slices.Contains(st.State.Addrs(), netip.MustParseAddr("198.51.100.2")) {
		t.Errorf("status: got %+v, want the applied list and a persist error", st)
	}

	f.store.failSave = nil
	if err := f.ref.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile after the disk recovered: %v", err)
	}
	if got := f.store.addrs(); !slices.Equal(got, addrs("198.51.100.1", "198.51.100.2")) {
		t.Errorf("persisted after retry: got %v, want the applied list", got)
	}
	if got := value(t, f.ref.metrics.persistPending); got != 0 {
		t.Errorf("persist pending: got %v, want 0", got)
	}
	if st := f.ref.Status(); st.PersistError != "" {
		t.Errorf("status persist error: got %q, want none", st.PersistError)
	}
}

// TestApplyPersisted: a start applies the saved list (or static_allow
// alone) before anything else, and reconcile never reads the file again.
func TestApplyPersisted(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "198.51.100.1")
	ctx := context.Background()
	n, err := f.ref.ApplyPersisted(ctx)
	if err != nil || n != 0 {
		t.Fatalf("got %d, %v; want 0, nil", n, err)
	}
	if want := prefixes("192.0.2.0/28"); !slices.Equal(f.fw.kernel(), want) {
		t.Errorf("applied: got %v, want %v", f.fw.kernel(), want)
	}
	if _, err := f.ref.Refresh(ctx, Options{}); err != nil {
		t.Fatal(err)
	}

	// Someone writes the file behind the daemon's back: it is not adopted.
	f.store.st = &State{Entries: []Entry{{Addr: netip.MustParseAddr("203.0.113.66")}}}
	if err := f.ref.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if want := prefixes("192.0.2.0/28", "198.51.100.1/32"); !slices.Equal(f.fw.kernel(), want) {
		t.Errorf("after reconcile: got %v, want %v", f.fw.kernel(), want)
	}

	// A restart applies the persisted list.
	g := newFixture(t, fixtureConfig{}, "198.51.100.1")
	g.store.st = &State{Entries: []Entry{{Addr: netip.MustParseAddr("203.0.113.7")}}}
	if n, err := g.ref.ApplyPersisted(ctx); err != nil || n != 1 {
		t.Fatalf("got %d, %v; want 1, nil", n, err)
	}
	if want := prefixes("192.0.2.0/28", "203.0.113.7/32"); !slices.Equal(g.fw.kernel(), want) {
		t.Errorf("after restart: got %v, want %v", g.fw.kernel(), want)
	}
}

func TestRefreshWithoutEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	ref, err := New(Config{Firewall: &fakeFirewall{}, Store: &fakeStore{}, MinIPs: DefaultMinIPs, MaxShrink: DefaultMaxShrink, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Refresh(context.Background(), Options{}); Reason(err) != ReasonNoEndpoints {
		t.Fatalf("got %v, want an error saying no endpoints are configured", err)
	}
	if got := value(t, ref.metrics.fetchEnabled); got != 0 {
		t.Errorf("fetch enabled: got %v, want 0", got)
	}
}

// TestFailureSeriesExistAtStart: every reason's series is at 0 before the
// first failure, so increase() sees that failure.
func TestFailureSeriesExistAtStart(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "198.51.100.1")
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() == "ncs_gateway_refresh_failures_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = true
			}
		}
	}
	for _, r := range []string{"fetch_server_error", "fetch_timeout", "fetch_empty", ReasonShrinkRefused, ReasonBelowMinIPs, ReasonApply, ReasonPersist} {
		if !got[r] {
			t.Errorf("no ncs_gateway_refresh_failures_total{reason=%q} at start; have %v", r, got)
		}
	}
	if v := value(t, f.ref.metrics.fetchEnabled); v != 1 {
		t.Errorf("fetch enabled: got %v, want 1", v)
	}
}

// TestRunReconcilesOnRulesetChange: a Watcher's change notice triggers a
// reconcile at once, long before the periodic tick.
func TestRunReconcilesOnRulesetChange(t *testing.T) {
	w := &watchingFirewall{fakeFirewall: &fakeFirewall{}, changed: make(chan func(), 1)}
	f := newFixture(t, fixtureConfig{fw: w}, "198.51.100.1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.ref.Run(ctx, time.Hour) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	var changed func()
	select {
	case changed = <-w.changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Run never started watching the firewall")
	}
	w.mu.Lock()
	w.repair = true
	w.mu.Unlock()
	changed()
	deadline := time.Now().Add(10 * time.Second)
	for value(t, f.ref.metrics.driftRepairs) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("drift repairs: got %v, want 1 after a change notice", value(t, f.ref.metrics.driftRepairs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := value(t, f.ref.metrics.reconciles); n < 1 {
		t.Errorf("reconciles: got %v, want at least 1", n)
	}
	for _, e := range f.logs.All() {
		if strings.Contains(e.Message, "drift repaired") {
			t.Errorf("refresher logged %q: the backend logs the one line per repair", e.Message)
		}
	}
}
