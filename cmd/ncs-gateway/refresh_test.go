package main

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// refreshFixture is a refresher wired to the fake Agora API and the real
// "none" firewall backend, with a clock the test moves.
type refreshFixture struct {
	api   *ncsiptest.Server
	ref   *refresher
	clock time.Time
}

func newRefreshFixture(t *testing.T, mutate func(*Config), ips ...string) *refreshFixture {
	t.Helper()
	cfg := defaultConfig()
	cfg.StateDir = t.TempDir()
	cfg.Firewall.Backend = "none"
	cfg.Firewall.StaticAllow = []string{"192.0.2.0/28"}
	if mutate != nil {
		mutate(&cfg)
	}
	api := ncsiptest.NewServer(t, "id", "secret", ips...)
	client, err := ncsip.New(ncsip.Config{
		Endpoints: []string{api.Endpoint()}, CustomerID: "id", CustomerSecret: "secret",
		Timeout: time.Second, Backoff: []time.Duration{time.Millisecond},
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	fw, err := firewall.New(firewall.Config{Backend: "none", Ports: cfg.Firewall.Ports}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := newRefresher(cfg, client, fw, newGatewayMetrics(newRegistry()), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	f := &refreshFixture{api: api, ref: ref, clock: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	ref.now = func() time.Time { return f.clock }
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

func (f *refreshFixture) persisted(t *testing.T) []netip.Addr {
	t.Helper()
	st, err := f.ref.state.load()
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		return nil
	}
	return st.addrs()
}

func TestRefreshAppliesMergesAndPersists(t *testing.T) {
	f := newRefreshFixture(t, nil, "203.0.113.2", "198.51.100.1", "2001:db8::1")
	ctx := context.Background()

	p, err := f.ref.Refresh(ctx, refreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := addrs("198.51.100.1", "203.0.113.2", "2001:db8::1")
	if !slices.Equal(p.Added, want) {
		t.Errorf("added: got %v, want %v", p.Added, want)
	}
	if got := f.persisted(t); !slices.Equal(got, want) {
		t.Errorf("persisted: got %v, want %v", got, want)
	}
	wantApplied := prefixes("192.0.2.0/28", "198.51.100.1/32", "203.0.113.2/32", "2001:db8::1/128")
	if !slices.Equal(f.ref.lastApplied, wantApplied) {
		t.Errorf("applied: got %v, want %v", f.ref.lastApplied, wantApplied)
	}

	// 203.0.113.2 leaves the list: it stays allowed for remove_grace.
	f.api.SetIPs([]string{"198.51.100.1", "2001:db8::1", "203.0.113.9"})
	f.clock = f.clock.Add(time.Hour)
	p, err = f.ref.Refresh(ctx, refreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Grace, addrs("203.0.113.2")) || !slices.Equal(p.Added, addrs("203.0.113.9")) || len(p.Removed) != 0 {
		t.Errorf("got grace %v added %v removed %v, want grace [203.0.113.2] added [203.0.113.9] removed []", p.Grace, p.Added, p.Removed)
	}
	if !slices.Contains(f.ref.lastApplied, netip.MustParsePrefix("203.0.113.2/32")) {
		t.Errorf("applied %v lacks 203.0.113.2 during its grace period", f.ref.lastApplied)
	}

	// A day later it is gone.
	f.clock = f.clock.Add(24 * time.Hour)
	p, err = f.ref.Refresh(ctx, refreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Removed, addrs("203.0.113.2")) || len(p.Grace) != 0 {
		t.Errorf("got removed %v grace %v, want removed [203.0.113.2] grace []", p.Removed, p.Grace)
	}
	if slices.Contains(f.ref.lastApplied, netip.MustParsePrefix("203.0.113.2/32")) {
		t.Errorf("applied %v still holds 203.0.113.2 after its grace period", f.ref.lastApplied)
	}
}

func TestRefreshFailuresKeepTheLastGoodList(t *testing.T) {
	ten := []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5",
		"198.51.100.6", "198.51.100.7", "198.51.100.8", "198.51.100.9", "198.51.100.10"}
	tests := []struct {
		name       string
		mutate     func(*Config)
		break_     func(*ncsiptest.Server)
		wantReason string
	}{
		{"server errors", nil, func(s *ncsiptest.Server) { s.QueueStatus(500, 500) }, "fetch_server_error"},
		{"unauthorized", nil, func(s *ncsiptest.Server) { s.QueueStatus(401) }, "fetch_unauthorized"},
		{"garbage", nil, func(s *ncsiptest.Server) { s.QueueFault(ncsiptest.Garbage, ncsiptest.Garbage) }, "fetch_bad_response"},
		{"empty list", nil, func(s *ncsiptest.Server) { s.SetIPs(nil) }, "fetch_empty"},
		{"shrinks by 90%", nil, func(s *ncsiptest.Server) { s.SetIPs(ten[:1]) }, "shrink_refused"},
		{"below min_ips", func(c *Config) { c.Firewall.MinIPs = 5; c.Firewall.MaxShrink = 1 },
			func(s *ncsiptest.Server) { s.SetIPs(ten[:4]) }, "below_min_ips"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRefreshFixture(t, tt.mutate, ten...)
			ctx := context.Background()
			if _, err := f.ref.Refresh(ctx, refreshOptions{}); err != nil {
				t.Fatal(err)
			}
			before, applied := f.persisted(t), slices.Clone(f.ref.lastApplied)

			tt.break_(f.api)
			f.clock = f.clock.Add(time.Hour)
			_, err := f.ref.Refresh(ctx, refreshOptions{})
			if err == nil {
				t.Fatal("got no error, want a refused refresh")
			}
			if got := refreshFailureReason(err); got != tt.wantReason {
				t.Errorf("reason: got %q, want %q (%v)", got, tt.wantReason, err)
			}
			if got := f.persisted(t); !slices.Equal(got, before) {
				t.Errorf("persisted list changed: got %v, want %v", got, before)
			}
			if !slices.Equal(f.ref.lastApplied, applied) {
				t.Errorf("applied list changed: got %v, want %v", f.ref.lastApplied, applied)
			}
			if last, _, _ := f.ref.Status(); last.OK || last.Reason != tt.wantReason {
				t.Errorf("status: got %+v, want a failure with reason %q", last, tt.wantReason)
			}
		})
	}
}

func TestRefreshForcePassesTheShrinkGate(t *testing.T) {
	f := newRefreshFixture(t, nil, "198.51.100.1", "198.51.100.2", "198.51.100.3")
	ctx := context.Background()
	if _, err := f.ref.Refresh(ctx, refreshOptions{}); err != nil {
		t.Fatal(err)
	}
	f.api.SetIPs([]string{"203.0.113.1"})
	if _, err := f.ref.Refresh(ctx, refreshOptions{}); refreshFailureReason(err) != "shrink_refused" {
		t.Fatalf("got %v, want shrink_refused", err)
	}
	if _, err := f.ref.Refresh(ctx, refreshOptions{Force: true}); err != nil {
		t.Fatalf("forced refresh: got %v, want success", err)
	}
	if got := f.persisted(t); !slices.Contains(got, netip.MustParseAddr("203.0.113.1")) {
		t.Errorf("persisted: got %v, want it to hold 203.0.113.1", got)
	}
}

func TestRefreshDryRunChangesNothing(t *testing.T) {
	f := newRefreshFixture(t, nil, "198.51.100.1")
	p, err := f.ref.Refresh(context.Background(), refreshOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Added, addrs("198.51.100.1")) {
		t.Errorf("plan added: got %v, want [198.51.100.1]", p.Added)
	}
	if got := f.persisted(t); got != nil {
		t.Errorf("persisted: got %v, want nothing", got)
	}
	if f.ref.lastApplied != nil {
		t.Errorf("applied: got %v, want nothing", f.ref.lastApplied)
	}
}

func TestApplyPersistedAndAdoption(t *testing.T) {
	f := newRefreshFixture(t, nil, "198.51.100.1")
	ctx := context.Background()

	// Nothing persisted: static_allow alone (closed to everyone else).
	n, err := f.ref.ApplyPersisted(ctx)
	if err != nil || n != 0 {
		t.Fatalf("got %d, %v; want 0, nil", n, err)
	}
	if want := prefixes("192.0.2.0/28"); !slices.Equal(f.ref.lastApplied, want) {
		t.Errorf("applied: got %v, want %v", f.ref.lastApplied, want)
	}

	// Another process (a one-shot -refresh) persists a list; the daemon's
	// reconcile adopts it instead of reverting it.
	other := newRefreshFixture(t, nil, "203.0.113.7")
	other.ref.state = f.ref.state
	other.ref.lock = f.ref.lock
	if _, err := other.ref.Refresh(ctx, refreshOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.ref.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if want := prefixes("192.0.2.0/28", "203.0.113.7/32"); !slices.Equal(f.ref.lastApplied, want) {
		t.Errorf("after reconcile: got %v, want %v", f.ref.lastApplied, want)
	}

	// A restart applies the persisted list before anything else.
	n, err = other.ref.ApplyPersisted(ctx)
	if err != nil || n != 1 {
		t.Fatalf("got %d, %v; want 1, nil", n, err)
	}
}

func TestRefreshWithoutEndpoints(t *testing.T) {
	f := newRefreshFixture(t, nil)
	f.ref.fetch = nil
	if _, err := f.ref.Refresh(context.Background(), refreshOptions{}); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want an error saying no endpoints are configured", err)
	}
}
