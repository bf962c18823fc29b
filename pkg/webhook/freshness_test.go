package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// freshConfig is testConfig at the default freshness window.
func freshConfig() Config {
	cfg := testConfig()
	cfg.MaxNotifyAge, cfg.MaxNotifyFuture = 0, 0
	return cfg
}

// bodyAt is a Cloud Recording notification sent at notifyMs t.
func bodyAt(id string, t time.Time) []byte {
	return fmt.Appendf(nil, `{"noticeId":%q,"productId":3,"eventType":31,"notifyMs":%d,"payload":{"cname":"c"}}`, id, t.UnixMilli())
}

// TestReplayedCaptureRefused is the attack: a captured, correctly signed
// notification (the 2019 vector) posted again long after. Before the
// freshness check it was answered 200 and published.
func TestReplayedCaptureRefused(t *testing.T) {
	pub := &fakePublisher{}
	_, reg, url := newTestServer(t, freshConfig(), pub)
	code, answer := do(t, http.DefaultClient, http.MethodPost, url, []byte(vectorA), http.Header{HeaderSignatureV2: {vectorASHA2}})
	if code != http.StatusUnprocessableEntity || string(answer) != string(answerStale) {
		t.Errorf("got %d %s, want 422 %s", code, answer, answerStale)
	}
	if n := len(pub.messages()); n != 0 {
		t.Errorf("got %d published, want none", n)
	}
	if got := metricValue(t, reg, "ncs_gateway_webhook_rejected_total", "reason", reasonStale); got != 1 {
		t.Errorf("got rejected{stale} %v, want 1", got)
	}
}

func TestFreshness(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name     string
		body     []byte
		wantCode int
		reason   string        // rejected_total reason; "" when accepted
		skew     time.Duration // recorded skew, unless none
		none     bool          // no skew recorded: the body has no usable notifyMs
	}{
		{"now", bodyAt("a", now), 200, "", 0, false},
		{"a second late", bodyAt("a", now.Add(-time.Second)), 200, "", time.Second, false},
		{"at the age bound", bodyAt("a", now.Add(-DefaultMaxNotifyAge)), 200, "", DefaultMaxNotifyAge, false},
		{"past the age bound", bodyAt("a", now.Add(-DefaultMaxNotifyAge-time.Millisecond)), 422, reasonStale, DefaultMaxNotifyAge + time.Millisecond, false},
		{"a day old", bodyAt("a", now.Add(-24*time.Hour)), 422, reasonStale, 24 * time.Hour, false},
		{"at the future bound", bodyAt("a", now.Add(DefaultMaxNotifyFuture)), 200, "", -DefaultMaxNotifyFuture, false},
		{"past the future bound", bodyAt("a", now.Add(DefaultMaxNotifyFuture+time.Millisecond)), 422, reasonFuture, -DefaultMaxNotifyFuture - time.Millisecond, false},
		{"notifyMs zero", []byte(`{"noticeId":"z","notifyMs":0}`), 422, reasonStale, now.Sub(time.UnixMilli(0)), false},
		{"legacy without notifyMs", fixtureNoNotify(t), 200, "", 0, true},
		{"notifyMs not a number", []byte(`{"noticeId":"s","notifyMs":"soon"}`), 200, "", 0, true},
		{"dead letter, stale", []byte(`{"productId":3,"notifyMs":1}`), 422, reasonStale, now.Sub(time.UnixMilli(1)), false},
		{"dead letter, not json", []byte(`notifyMs: 1`), 200, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &fakePublisher{}
			s, reg, url := newTestServer(t, freshConfig(), pub)
			s.clock = func() time.Time { return now }
			code, answer := do(t, http.DefaultClient, http.MethodPost, url, tt.body, http.Header{HeaderSignatureV2: {signSHA256(testSecret, tt.body)}})
			if code != tt.wantCode {
				t.Fatalf("got status %d %s, want %d", code, answer, tt.wantCode)
			}
			published := len(pub.messages())
			if tt.reason != "" {
				if published != 0 {
					t.Errorf("got %d published, want none", published)
				}
				if got := metricValue(t, reg, "ncs_gateway_webhook_rejected_total", "reason", tt.reason); got != 1 {
					t.Errorf("got rejected{%s} %v, want 1", tt.reason, got)
				}
				var a map[string]string
				if err := json.Unmarshal(answer, &a); err != nil || a["error"] == "" {
					t.Errorf("got answer %s, want a JSON error", answer)
				}
			} else {
				if published != 1 {
					t.Errorf("got %d published, want 1", published)
				}
				if got := metricSum(t, reg, "ncs_gateway_webhook_rejected_total"); got != 0 {
					t.Errorf("got %v rejections, want none", got)
				}
			}
			skew, seen, ok := s.ClockSkew()
			gauge := metricGauge(t, reg, "ncs_gateway_webhook_notify_skew_seconds")
			switch {
			case tt.none && (ok || gauge != 0):
				t.Errorf("got skew %v (ok %v), gauge %v, want none recorded", skew, ok, gauge)
			case !tt.none && (!ok || skew != tt.skew || !seen.Equal(now) || gauge != tt.skew.Seconds()):
				t.Errorf("got skew %v seen %v (ok %v), gauge %v; want %v seen %v", skew, seen, ok, gauge, tt.skew, now)
			}
		})
	}
}

// fixtureNoNotify is the legacy fixture without its notifyMs: old accounts'
// bodies may lack it, and those pass unchecked.
func fixtureNoNotify(t *testing.T) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(fixture(t, "legacy.json"), &m); err != nil {
		t.Fatalf("decode fixture: %v", err)
	}
	delete(m, "notifyMs")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("encode fixture: %v", err)
	}
	return b
}

// TestFreshnessAfterSignature shows the order: a stale body with a bad
// signature is a signature failure, never a freshness one, so an attacker
// cannot probe the window without the secret.
func TestFreshnessAfterSignature(t *testing.T) {
	pub := &fakePublisher{}
	s, reg, url := newTestServer(t, freshConfig(), pub)
	code, _ := do(t, http.DefaultClient, http.MethodPost, url, []byte(vectorA), http.Header{HeaderSignatureV2: {vectorBSHA2}})
	if code != http.StatusUnauthorized {
		t.Errorf("got status %d, want 401", code)
	}
	if got := metricValue(t, reg, "ncs_gateway_webhook_rejected_total", "reason", reasonStale); got != 0 {
		t.Errorf("got rejected{stale} %v, want 0", got)
	}
	if _, _, ok := s.ClockSkew(); ok {
		t.Errorf("got a skew recorded from an unsigned body, want none")
	}
}

// TestFreshnessLog checks the refusal's one log line, and that the
// existing sampler bounds a flood of them.
func TestFreshnessLog(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := NewServer(freshConfig(), &fakePublisher{}, zap.New(core), nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	const n = rejectLogFirst + 20
	for range n {
		do(t, http.DefaultClient, http.MethodPost, hs.URL+testPath, []byte(vectorA), http.Header{HeaderSignatureV2: {vectorASHA2}})
	}
	entries := logs.All()
	if len(entries) < 1 || len(entries) >= n {
		t.Fatalf("got %d log lines for %d stale notifications, want between 1 and %d (sampled)", len(entries), n, n-1)
	}
	e := entries[0]
	f := e.ContextMap()
	if e.Level != zapcore.WarnLevel || e.LoggerName != "webhook" || e.Message != "notification rejected" ||
		f["reason"] != reasonStale || f["notice_id"] != testNoticeID || f["notify_skew"] == nil {
		t.Errorf("got %v %q %q %v, want a warn line from webhook with reason stale, notice_id and notify_skew", e.Level, e.LoggerName, e.Message, f)
	}
}

// metricGauge returns an unlabelled gauge's value; a missing gauge fails.
func metricGauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
