package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestHandlerLogs(t *testing.T) {
	body := fixture(t, "uploaded.json")
	sig := signSHA256(testSecret, body)
	tests := []struct {
		name       string
		header     http.Header
		method     string
		pubErr     error
		wantLevel  zapcore.Level
		wantFields map[string]string
	}{
		{"accepted", http.Header{HeaderSignatureV2: {sig}}, http.MethodPost, nil, zapcore.InfoLevel, map[string]string{
			"notice_id": "2000001428:4330:107", "product_id": "3", "event_type": "31", "outcome": "published"}},
		{"unavailable", http.Header{HeaderSignatureV2: {sig}}, http.MethodPost, errors.New("nats down"), zapcore.ErrorLevel,
			map[string]string{"notice_id": "2000001428:4330:107", "outcome": "unavailable", "error": "nats down"}},
		{"bad signature", http.Header{HeaderSignatureV2: {vectorASHA2}}, http.MethodPost, nil, zapcore.WarnLevel, map[string]string{
			"outcome": "rejected", "reason": "bad_signature"}},
		{"method", nil, http.MethodDelete, nil, zapcore.WarnLevel, map[string]string{
			"outcome": "rejected", "reason": "method_not_allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			s, err := NewServer(testConfig(), &fakePublisher{err: tt.pubErr}, zap.New(core), nil)
			if err != nil {
				t.Fatalf("new server: %v", err)
			}
			hs := httptest.NewServer(s.Handler())
			defer hs.Close()
			do(t, http.DefaultClient, tt.method, hs.URL+testPath, body, tt.header)

			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("got %d log lines, want 1", len(entries))
			}
			e := entries[0]
			if e.Level != tt.wantLevel {
				t.Errorf("got level %v, want %v", e.Level, tt.wantLevel)
			}
			if e.LoggerName != "webhook" {
				t.Errorf("got logger %q, want %q", e.LoggerName, "webhook")
			}
			fields := e.ContextMap()
			for k, want := range tt.wantFields {
				if got := fmt.Sprint(fields[k]); got != want {
					t.Errorf("got %s=%q, want %q", k, got, want)
				}
			}
			if _, ok := fields["latency"].(time.Duration); !ok {
				t.Errorf("got latency %v, want a duration", fields["latency"])
			}
			if ra := fmt.Sprint(fields["remote_addr"]); !strings.HasPrefix(ra, "127.0.0.1:") {
				t.Errorf("got remote_addr %q, want 127.0.0.1:port", ra)
			}
			line := e.Message + fmt.Sprint(fields)
			for _, secret := range []string{sig, vectorASHA2, testSecret + "\"", string(body[:40])} {
				if strings.Contains(line, secret) {
					t.Errorf("got log %q, want no signature, secret or body in it", line)
				}
			}
		})
	}
}

// TestRejectionLogsAreSampled: a flood of forged notifications is counted
// in full but logged in part; accepted notifications keep a line each.
func TestRejectionLogsAreSampled(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := NewServer(testConfig(), &fakePublisher{}, zap.New(core), nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	body := fixture(t, "uploaded.json")
	const forged, valid = 300, 30
	for range forged {
		do(t, http.DefaultClient, http.MethodPost, hs.URL+testPath, body, http.Header{HeaderSignatureV2: {vectorASHA2}})
	}
	for range valid {
		do(t, http.DefaultClient, http.MethodPost, hs.URL+testPath, body, http.Header{HeaderSignatureV2: {signSHA256(testSecret, body)}})
	}
	rejected := logs.FilterMessage("notification rejected").Len()
	if rejected >= forged || rejected < rejectLogFirst {
		t.Errorf("got %d rejection lines for %d forged requests, want between %d and %d", rejected, forged, rejectLogFirst, forged-1)
	}
	if got := logs.FilterMessage("notification accepted").Len(); got != valid {
		t.Errorf("got %d accepted lines, want %d (one per notification)", got, valid)
	}
}
