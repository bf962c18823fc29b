package webhook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// probeServer starts a real server on loopback with its own registry and
// an observed log.
func probeServer(t *testing.T, cfg Config) (*Server, *prometheus.Registry, *observer.ObservedLogs) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("new metrics: %v", err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := NewServer(cfg, &fakePublisher{}, zap.New(core), m)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	startServer(t, s)
	return s, reg, logs
}

// probeLeavesNoTrace checks that probes were not counted as requests to
// the webhook, nor logged by it.
func probeLeavesNoTrace(t *testing.T, reg *prometheus.Registry, logs *observer.ObservedLogs) {
	t.Helper()
	for _, name := range []string{"ncs_gateway_webhook_received_total", "ncs_gateway_webhook_rejected_total",
		"ncs_gateway_webhook_accepted_total", "ncs_gateway_webhook_request_duration_seconds"} {
		if got := metricSum(t, reg, name); got != 0 {
			t.Errorf("%s after probes: got %v, want 0", name, got)
		}
	}
	for _, e := range logs.All() {
		if e.Level >= zapcore.WarnLevel || strings.Contains(e.Message, "notification") {
			t.Errorf("log after probes: got %q at %s, want no warning and no notification line", e.Message, e.Level)
		}
	}
}

func TestProbeHTTP(t *testing.T) {
	s, reg, logs := probeServer(t, testConfig())
	p := NewProbe(s, nil)
	if !p.LastBeat().IsZero() {
		t.Fatalf("LastBeat before a probe: got %s, want zero", p.LastBeat())
	}
	before := time.Now()
	for range 3 {
		if err := p.Once(context.Background()); err != nil {
			t.Fatalf("probe: got %v, want nil", err)
		}
	}
	if got := p.LastBeat(); got.Before(before) {
		t.Errorf("LastBeat after probes: got %s, want after %s", got, before)
	}
	probeLeavesNoTrace(t, reg, logs)
}

// TestProbeTLS: the probe speaks TLS to its own server, and only to it.
func TestProbeTLS(t *testing.T) {
	cfg := testConfig()
	cfg.TLSCertFile, cfg.TLSKeyFile, _ = writeCert(t, t.TempDir(), "probe")
	s, reg, logs := probeServer(t, cfg)
	p := NewProbe(s, nil)
	if err := p.Once(context.Background()); err != nil {
		t.Fatalf("probe over TLS: got %v, want nil", err)
	}
	probeLeavesNoTrace(t, reg, logs)

	// Another server with another certificate behind the same address
	// would not pass for this one.
	otherCert, otherKey, _ := writeCert(t, t.TempDir(), "other")
	other := testConfig()
	other.TLSCertFile, other.TLSKeyFile = otherCert, otherKey
	o, _, _ := probeServer(t, other)
	p.s = &Server{cfg: s.cfg}
	p.s.cert.Store(s.cert.Load())
	p.s.ln, p.s.done = o.ln, o.done
	if err := p.Once(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate differs") {
		t.Errorf("probe answered by a server with another certificate: got %v, want a certificate error", err)
	}
}

// TestProbeAtTheConnectionCap: with every slot held by connections that
// never send a request, the limiter reclaims one and the probe gets in.
func TestProbeAtTheConnectionCap(t *testing.T) {
	useReclaimDelays(t, 100*time.Millisecond, 100*time.Millisecond)
	cfg := testConfig()
	cfg.MaxConnections = 2
	s, reg, logs := probeServer(t, cfg)
	for range cfg.MaxConnections + 1 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
	}
	if err := NewProbe(s, nil).Once(context.Background()); err != nil {
		t.Fatalf("probe at the connection cap: got %v, want nil", err)
	}
	for _, name := range []string{"ncs_gateway_webhook_received_total", "ncs_gateway_webhook_rejected_total"} {
		if got := metricSum(t, reg, name); got != 0 {
			t.Errorf("%s: got %v, want 0", name, got)
		}
	}
	_ = logs // the limiter's own warning is expected here
}

// TestProbeStopsWhenAcceptIsBlocked: the accept loop waits for a slot that
// never frees (every slot held, none spare long enough to reclaim) while
// the handlers still serve: the probe gets no answer and the heartbeat
// stops; once slots free, it beats again.
func TestProbeStopsWhenAcceptIsBlocked(t *testing.T) {
	useReclaimDelays(t, time.Hour, time.Hour)
	cfg := testConfig()
	cfg.MaxConnections = 4
	s, _, _ := probeServer(t, cfg)
	p := NewProbe(s, nil)
	p.hc.Timeout = 300 * time.Millisecond
	if err := p.Once(context.Background()); err != nil {
		t.Fatalf("first probe: got %v, want nil", err)
	}
	beat := p.LastBeat()

	// The pending Accept already holds one slot: take the others, then
	// a silent connection takes that one, and Accept waits for a slot.
	for range cfg.MaxConnections - 1 {
		s.lim.slots <- struct{}{}
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	waitFor(t, "every slot taken", func() bool { open, limit := s.Connections(); return open == limit })

	for range 3 {
		if err := p.Once(context.Background()); err == nil {
			t.Fatalf("probe with the accept loop blocked: got nil, want a timeout")
		}
	}
	if got := p.LastBeat(); !got.Equal(beat) {
		t.Errorf("LastBeat with the accept loop blocked: got %s, want %s (unchanged)", got, beat)
	}
	// The handlers are fine all along: only accepting is stuck.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testPath, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("handler while accept is blocked: got %d, want 405", rec.Code)
	}

	for range cfg.MaxConnections - 1 {
		<-s.lim.slots
	}
	waitFor(t, "a probe answered again", func() bool { return p.Once(context.Background()) == nil })
	if got := p.LastBeat(); !got.After(beat) {
		t.Errorf("LastBeat once accepting again: got %s, want after %s", got, beat)
	}
}

// TestProbeRun marks at once and keeps marking; it returns when ctx ends.
func TestProbeRun(t *testing.T) {
	s, _, _ := probeServer(t, testConfig())
	p := NewProbe(s, nil)
	p.every = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "a first beat", func() bool { return !p.LastBeat().IsZero() })
	first := p.LastBeat()
	waitFor(t, "a later beat", func() bool { return p.LastBeat().After(first) })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: got %v, want nil", err)
	}
}

// TestProbeWildcardListen: a server bound to every address is probed over
// loopback.
func TestProbeWildcardListen(t *testing.T) {
	cfg := testConfig()
	cfg.Listen = ":0"
	s, _, _ := probeServer(t, cfg)
	if err := NewProbe(s, nil).Once(context.Background()); err != nil {
		t.Fatalf("probe of %s: got %v, want nil", s.Addr(), err)
	}
}

// TestProbeComesFromLoopback: bound to a non-loopback address of this
// host, the server still sees the probe come from 127.0.0.1 (or ::1), the
// one source a firewall in front of the port must let through.
func TestProbeComesFromLoopback(t *testing.T) {
	var local []net.IP
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			local = append(local, n.IP)
		}
	}
	if len(local) == 0 {
		t.Skip("this host has no non-loopback address to bind the server to")
	}
	for _, ip := range local {
		cfg := testConfig()
		cfg.Listen = net.JoinHostPort(ip.String(), "0")
		s, _, _ := probeServer(t, cfg)
		p := NewProbe(s, nil)
		if err := p.Once(context.Background()); err != nil {
			t.Fatalf("probe of %s: got %v, want nil", s.Addr(), err)
		}
		c, err := p.dial(context.Background(), "tcp", "")
		if err != nil {
			t.Fatalf("probe dial of %s: %v", s.Addr(), err)
		}
		got := c.LocalAddr().(*net.TCPAddr).IP
		c.Close()
		if !got.IsLoopback() || (got.To4() == nil) != (ip.To4() == nil) {
			t.Errorf("probe of %s came from %s, want the loopback address of its family", s.Addr(), got)
		}
	}
}
