package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Agora's legacy signature.
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The signature vectors of agora/NCS.md, secret "secret".
const (
	testSecret   = "secret"
	vectorA      = `{"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}`
	vectorASHA1  = "5a3bb6a6d9fad2ea9ae3fb707a14c9d7f3136df1"
	vectorASHA2  = "de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24"
	vectorB      = `{"eventMs":1560408533119,"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}`
	vectorBSHA1  = "033c62f40f687675f17f0f41f91a40c71c0f134c"
	vectorBSHA2  = "6d3320c60b11101395b7fc8f9068748808a0aa1bfa064438e39d1bc2c7d74d99"
	testPrefix   = "agora.ncs"
	testPath     = "/agora/ncs"
	testNoticeID = "4eb720f0-8da7-11e9-a43e-53f411c2761f"
)

// fixture reads a body from testdata, without the file's final newline.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return bytes.TrimRight(b, "\n")
}

func signSHA256(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func signSHA1(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// fakePublisher records what it is given and answers as told.
type fakePublisher struct {
	outcome Outcome // zero means Published
	err     error
	block   bool // wait for the context to end, then return its error

	mu        sync.Mutex
	msgs      []Notification
	deadlines int // calls whose context had a deadline
}

func (f *fakePublisher) Publish(ctx context.Context, n Notification) (Outcome, error) {
	f.mu.Lock()
	f.msgs = append(f.msgs, n)
	if _, ok := ctx.Deadline(); ok {
		f.deadlines++
	}
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	if f.err != nil {
		return 0, f.err
	}
	if f.outcome == 0 {
		return Published, nil
	}
	return f.outcome, nil
}

func (f *fakePublisher) messages() []Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Notification(nil), f.msgs...)
}

// noopPublisher acknowledges everything at once, for benchmarks.
type noopPublisher struct{}

func (noopPublisher) Publish(context.Context, Notification) (Outcome, error) {
	return Published, nil
}

// ageless lets the fixtures' and vectors' 2019-2021 notifyMs through, for
// tests about anything but freshness (which has its own, at the defaults).
const ageless = 100 * 365 * 24 * time.Hour

// testConfig is a plain-HTTP config on a loopback port.
func testConfig() Config {
	return Config{
		Listen:       "127.0.0.1:0",
		Path:         testPath,
		Secrets:      []string{testSecret},
		MaxBodyBytes: 4096,
		MaxNotifyAge: ageless,
	}
}

// newTestServer builds a Server with its own registry and serves its
// handler over loopback HTTP.
func newTestServer(t *testing.T, cfg Config, pub Publisher) (*Server, *prometheus.Registry, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("new metrics: %v", err)
	}
	s, err := NewServer(cfg, pub, zap.NewNop(), m)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, reg, hs.URL + cfg.Path
}

// do sends one request and returns the status and body.
func do(t *testing.T, client *http.Client, method, url string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, b
}

// metricValue returns a counter's value, or a histogram's sample count, for
// the series with exactly these label pairs (name, value, ...). An absent
// series fails the test instead of reading as 0.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel())*2 != len(labels) {
				continue
			}
			for i, lp := range m.GetLabel() {
				if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s%v: no such series", name, labels)
	return 0
}

// metricSum returns the sum of a metric's values over all its series.
func metricSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			} else {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
