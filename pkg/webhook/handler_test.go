package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	uploaded := fixture(t, "uploaded.json")
	legacy := fixture(t, "legacy.json")
	v2 := func(body []byte) http.Header { return http.Header{HeaderSignatureV2: {signSHA256(testSecret, body)}} }
	noID := []byte(`{"productId":3,"eventType":31,"payload":{"cname":"c"}}`)
	hostile := []byte(`{"noticeId":"h1","productId":"a.>","eventType":"31.*"}`)
	big := []byte(`{"noticeId":"big","pad":"` + strings.Repeat("x", 5000) + `"}`)

	// wantMsg is what the publisher must be handed: the notification's
	// key and routing fields ("" fields of fields are not checked).
	type wantMsg struct {
		key, product, event string
		fields              map[string]string
	}
	tests := []struct {
		name       string
		method     string
		body       []byte
		header     http.Header
		acceptSHA1 bool
		outcome    Outcome // what the fake publisher answers; zero: Published
		pubErr     error
		wantCode   int
		wantAnswer map[string]string // fields of the JSON answer
		wantMsg    *wantMsg          // nil: the publisher must see nothing
		rejected   string            // rejected_total reason, "" for none
		accepted   string            // accepted_total outcome, "" for none
		dead       string            // deadlettered_total reason, "" for none
	}{
		{
			name: "published", body: uploaded, header: v2(uploaded), wantCode: 200,
			wantAnswer: map[string]string{"status": "ok", "noticeId": "2000001428:4330:107", "outcome": "published"},
			wantMsg: &wantMsg{"2000001428:4330:107", "3", "31", map[string]string{
				"id": "2000001428:4330:107", "name": "uploaded", "sid": "38f8e3cfdc474cd56fc1ceba380d7e1a", "cname": "class_room_4821"}},
			accepted: "published",
		},
		{
			name: "spooled", body: []byte(vectorA), header: v2([]byte(vectorA)), outcome: Spooled,
			wantCode:   200,
			wantAnswer: map[string]string{"status": "ok", "noticeId": testNoticeID, "outcome": "spooled"},
			wantMsg:    &wantMsg{testNoticeID, "1", "10", nil},
			accepted:   "spooled",
		},
		{
			name: "sha1 accepted", body: []byte(vectorB), header: http.Header{HeaderSignature: {vectorBSHA1}}, acceptSHA1: true,
			wantCode: 200, wantAnswer: map[string]string{"outcome": "published"},
			wantMsg: &wantMsg{testNoticeID, "1", "10", nil}, accepted: "published",
		},
		{
			name: "legacy format", body: legacy, header: v2(legacy), wantCode: 200,
			wantAnswer: map[string]string{"noticeId": "f5e1c2a0-3b7d-11eb-8f2a-7b5e4c9d1a22"},
			wantMsg: &wantMsg{"f5e1c2a0-3b7d-11eb-8f2a-7b5e4c9d1a22", "unknown", "40", map[string]string{
				"name": "recorder_started", "cname": "legacy_room"}},
			accepted: "published",
		},
		{
			name: "hostile product", body: hostile, header: v2(hostile), wantCode: 200,
			wantMsg:  &wantMsg{"h1", "unknown", "unknown", nil},
			accepted: "published",
		},
		{
			name: "deadletter not json", body: []byte("ping"), header: v2([]byte("ping")), wantCode: 200,
			wantAnswer: map[string]string{"status": "ok", "outcome": "published", "deadletter": "not_json"},
			wantMsg:    &wantMsg{deadletterIDOf("ping"), "unknown", "unknown", map[string]string{"dead": "not_json"}},
			accepted:   "published", dead: "not_json",
		},
		{
			name: "deadletter no id, spooled", body: noID, header: v2(noID), outcome: Spooled,
			wantCode:   200,
			wantAnswer: map[string]string{"outcome": "spooled", "deadletter": "no_id"},
			wantMsg:    &wantMsg{deadletterIDOf(string(noID)), "3", "31", map[string]string{"dead": "no_id", "cname": "c"}},
			accepted:   "spooled", dead: "no_id",
		},
		{
			name: "missing signature", body: []byte(vectorA), wantCode: 401,
			wantAnswer: map[string]string{"error": "missing signature"}, rejected: reasonMissingSignature,
		},
		{
			name: "sha1 only while off", body: []byte(vectorA), header: http.Header{HeaderSignature: {vectorASHA1}},
			wantCode: 401, wantAnswer: map[string]string{"error": "missing signature"}, rejected: reasonMissingSignature,
		},
		{
			name: "bad signature", body: []byte(vectorA), header: http.Header{HeaderSignatureV2: {vectorBSHA2}},
			wantCode: 401, wantAnswer: map[string]string{"error": "bad signature"}, rejected: reasonBadSignature,
		},
		{
			name: "malformed signature", body: []byte(vectorA), header: http.Header{HeaderSignatureV2: {"not-hex"}},
			wantCode: 401, wantAnswer: map[string]string{"error": "bad signature"}, rejected: reasonBadSignature,
		},
		{
			name: "get", method: http.MethodGet, wantCode: 405,
			wantAnswer: map[string]string{"error": "method not allowed"}, rejected: reasonMethodNotAllowed,
		},
		{
			name: "put signed", method: http.MethodPut, body: []byte(vectorA), header: v2([]byte(vectorA)), wantCode: 405,
			rejected: reasonMethodNotAllowed,
		},
		{
			name: "unknown method", method: "PURGE", wantCode: 405, rejected: reasonMethodNotAllowed,
		},
		{
			name: "body too large", body: big, header: v2(big), wantCode: 413,
			wantAnswer: map[string]string{"error": "body too large"}, rejected: reasonBodyTooLarge,
		},
		{
			name: "unavailable", body: []byte(vectorA), header: v2([]byte(vectorA)),
			pubErr:   errors.New("spool: notification store unavailable"),
			wantCode: 503, wantAnswer: map[string]string{"error": "temporarily unavailable"},
			wantMsg: &wantMsg{testNoticeID, "1", "10", nil}, rejected: reasonUnavailable,
		},
		{
			name: "outcome without error", body: []byte(vectorA), header: v2([]byte(vectorA)),
			outcome:  Outcome(42),
			wantCode: 503, wantMsg: &wantMsg{testNoticeID, "1", "10", nil}, rejected: reasonUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AcceptSHA1 = tt.acceptSHA1
			pub := &fakePublisher{outcome: tt.outcome, err: tt.pubErr}
			_, reg, url := newTestServer(t, cfg, pub)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			before := time.Now().UTC()
			code, answer := do(t, http.DefaultClient, method, url, tt.body, tt.header)
			if code != tt.wantCode {
				t.Fatalf("got status %d (%s), want %d", code, answer, tt.wantCode)
			}
			if method == http.MethodPost || len(answer) > 0 {
				var got map[string]any
				if err := json.Unmarshal(answer, &got); err != nil {
					t.Fatalf("got answer %q, want JSON: %v", answer, err)
				}
				for k, want := range tt.wantAnswer {
					if got[k] != want {
						t.Errorf("got answer %s=%v, want %q", k, got[k], want)
					}
				}
			}
			if bytes.Contains(answer, []byte(vectorASHA2[:16])) || bytes.Contains(answer, []byte(testSecret)) {
				t.Errorf("got answer %q, want no signature or secret in it", answer)
			}

			msgs := pub.messages()
			switch {
			case tt.wantMsg == nil && len(msgs) != 0:
				t.Errorf("got %d published messages, want none", len(msgs))
			case tt.wantMsg != nil && len(msgs) != 1:
				t.Errorf("got %d published messages, want 1", len(msgs))
			case tt.wantMsg != nil:
				n := msgs[0]
				if n.Key() != tt.wantMsg.key || n.ProductID != tt.wantMsg.product || n.EventType != tt.wantMsg.event {
					t.Errorf("got key %q product %q event %q, want %q %q %q",
						n.Key(), n.ProductID, n.EventType, tt.wantMsg.key, tt.wantMsg.product, tt.wantMsg.event)
				}
				if !bytes.Equal(n.Body, tt.body) {
					t.Errorf("got body %q, want the request's byte for byte", n.Body)
				}
				got := map[string]string{"id": n.ID, "name": n.EventName, "sid": n.SID, "cname": n.Cname, "dead": n.DeadLetterReason}
				for k, want := range tt.wantMsg.fields {
					if got[k] != want {
						t.Errorf("got %s %q, want %q", k, got[k], want)
					}
				}
				if n.ReceivedAt.Before(before.Add(-time.Second)) || n.ReceivedAt.After(time.Now().Add(time.Second)) || n.ReceivedAt.Location() != time.UTC {
					t.Errorf("got received at %v, want a UTC time of now", n.ReceivedAt)
				}
				if pub.deadlines != 1 {
					t.Errorf("got %d publish contexts with a deadline, want 1", pub.deadlines)
				}
			}

			checks := []struct {
				name  string
				got   float64
				label string
				want  string
			}{
				{"received", metricValue(t, reg, "ncs_gateway_webhook_received_total"), "", ""},
				{"rejected", metricSum(t, reg, "ncs_gateway_webhook_rejected_total"), "reason", tt.rejected},
				{"accepted", metricSum(t, reg, "ncs_gateway_webhook_accepted_total"), "outcome", tt.accepted},
				{"deadlettered", metricSum(t, reg, "ncs_gateway_webhook_deadlettered_total"), "reason", tt.dead},
				{"duration", metricValue(t, reg, "ncs_gateway_webhook_request_duration_seconds", "code", fmt.Sprint(tt.wantCode)), "", ""},
			}
			for _, c := range checks {
				want := 1.0
				if c.label != "" && c.want == "" {
					want = 0
				}
				if c.got != want {
					t.Errorf("got %s total %v, want %v", c.name, c.got, want)
				}
				if c.label != "" && c.want != "" {
					name := "ncs_gateway_webhook_" + c.name + "_total"
					if got := metricValue(t, reg, name, c.label, c.want); got != 1 {
						t.Errorf("got %s{%s=%q} %v, want 1", name, c.label, c.want, got)
					}
				}
			}
		})
	}
}

// TestHandlerChunkedBody covers bodies sent without a Content-Length.
func TestHandlerChunkedBody(t *testing.T) {
	body := fixture(t, "uploaded.json")
	tests := []struct {
		name     string
		body     []byte
		wantCode int
	}{
		{"fits", body, 200},
		{"exactly the limit", append(body, bytes.Repeat([]byte(" "), 4096-len(body))...), 200},
		{"one byte over", append(body, bytes.Repeat([]byte(" "), 4097-len(body))...), 413},
		{"far over", append(body, bytes.Repeat([]byte(" "), 1<<20)...), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &fakePublisher{}
			_, _, url := newTestServer(t, testConfig(), pub)
			// A reader without a length makes the client send chunks.
			req, err := http.NewRequest(http.MethodPost, url, io.MultiReader(bytes.NewReader(tt.body)))
			if err != nil {
				t.Fatalf("new request: %v", err)
			}
			req.Header.Set(HeaderSignatureV2, signSHA256(testSecret, tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			msgs := pub.messages()
			if tt.wantCode != 200 {
				if len(msgs) != 0 {
					t.Errorf("got %d messages, want none", len(msgs))
				}
				return
			}
			if len(msgs) != 1 || !bytes.Equal(msgs[0].Body, tt.body) {
				t.Errorf("got %d messages, want 1 carrying the body byte for byte", len(msgs))
			}
		})
	}
}

// TestHandlerStuckPublisher shows that a publisher that never returns is cut
// off by the publish timeout and Agora gets 503.
func TestHandlerStuckPublisher(t *testing.T) {
	cfg := testConfig()
	cfg.PublishTimeout = 50 * time.Millisecond
	pub := &fakePublisher{block: true}
	_, reg, url := newTestServer(t, cfg, pub)
	code, _ := do(t, http.DefaultClient, http.MethodPost, url, []byte(vectorA), http.Header{HeaderSignatureV2: {vectorASHA2}})
	if code != http.StatusServiceUnavailable {
		t.Errorf("got status %d, want 503", code)
	}
	if got := metricValue(t, reg, "ncs_gateway_webhook_rejected_total", "reason", reasonUnavailable); got != 1 {
		t.Errorf("got rejected{unavailable} %v, want 1", got)
	}
}

// TestHandlerOtherPaths checks that only the webhook path is served and
// counted.
func TestHandlerOtherPaths(t *testing.T) {
	_, reg, url := newTestServer(t, testConfig(), &fakePublisher{})
	base := strings.TrimSuffix(url, testPath)
	for _, p := range []string{"/", "/agora", "/agora/ncs/x", "/metrics"} {
		code, answer := do(t, http.DefaultClient, http.MethodPost, base+p, []byte(vectorA), http.Header{HeaderSignatureV2: {vectorASHA2}})
		if code != http.StatusNotFound || string(answer) != `{"error":"not found"}` {
			t.Errorf("POST %s: got %d %s, want 404 {\"error\":\"not found\"}", p, code, answer)
		}
	}
	if got := metricValue(t, reg, "ncs_gateway_webhook_received_total"); got != 0 {
		t.Errorf("got received %v, want 0", got)
	}
}

// TestHandlerPanic shows a panicking publisher costs one 500, not the process.
func TestHandlerPanic(t *testing.T) {
	_, _, url := newTestServer(t, testConfig(), panicPublisher{})
	code, answer := do(t, http.DefaultClient, http.MethodPost, url, []byte(vectorA), http.Header{HeaderSignatureV2: {vectorASHA2}})
	if code != http.StatusInternalServerError || !json.Valid(answer) {
		t.Errorf("got %d %s, want 500 with a JSON body", code, answer)
	}
}

type panicPublisher struct{ noopPublisher }

func (panicPublisher) Publish(context.Context, Notification) (Outcome, error) {
	panic(errors.New("boom"))
}

func TestOKAnswer(t *testing.T) {
	tests := []struct {
		id         string
		o          Outcome
		deadletter string
		want       string
	}{
		{"n1", Published, "", `{"status":"ok","noticeId":"n1","outcome":"published"}`},
		{`a"b\c`, Spooled, "", `{"status":"ok","noticeId":"a\"b\\c","outcome":"spooled"}`},
		{"", Spooled, "no_id", `{"status":"ok","outcome":"spooled","deadletter":"no_id"}`},
		{"é\x01", Published, "", `{"status":"ok","noticeId":"é\u0001","outcome":"published"}`},
	}
	for _, tt := range tests {
		got := string(okAnswer(tt.id, tt.o, tt.deadletter))
		if got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("got invalid JSON %s", got)
		}
	}
}
