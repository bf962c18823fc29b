package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/status"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
)

// fakePublisher is a publisher whose readiness the test sets.
type fakePublisher struct{ ready bool }

func (f fakePublisher) Ready() bool { return f.ready }
func (fakePublisher) Status(context.Context) publish.Status {
	return publish.Status{Stream: "AGORA_NCS"}
}
func (fakePublisher) StreamProblems() []publish.StreamProblem { return nil }

// TestEndpoints: over real HTTP on loopback, /healthz answers, /readyz
// says why it is not ready (the publisher, a stalled loop), /status is the
// status JSON and /metrics the registry.
func TestEndpoints(t *testing.T) {
	fw, err := firewall.New(firewall.Config{Backend: firewall.BackendNone, Ports: []uint16{8443}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := refresh.New(refresh.Config{Firewall: fw, Store: refresh.NewFileStore(t.TempDir()), MinIPs: 1, MaxShrink: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	var stalled []string
	src := &status.Source{Version: "test", Backend: firewall.BackendNone, Ref: ref, Pub: fakePublisher{ready: true},
		Stalled: func() []string { return stalled }}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "ncs_gateway_test_total", Help: "test"}))
	a := New("127.0.0.1:0", reg, src, zap.NewNop())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	base := "http://" + a.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: got %d %s, want 200 ok", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: got %d %s, want 200", code, body)
	}
	stalled = []string{"refresh scheduler"}
	src.Pub = fakePublisher{ready: false}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "nats: disconnected") || !strings.Contains(body, "stalled: refresh scheduler") {
		t.Errorf("/readyz: got %d %s, want 503 naming the publisher and the stalled loop", code, body)
	}
	code, body = get("/status")
	var st status.Daemon
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK || st.Version != "test" || st.NATS.Stream != "AGORA_NCS" || st.Ready {
		t.Errorf("/status: got %d %s (%v), want 200 with version test, stream AGORA_NCS, not ready", code, body, err)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "ncs_gateway_test_total 0") {
		t.Errorf("/metrics: got %d, want 200 with the registry's series:\n%s", code, body)
	}
}
