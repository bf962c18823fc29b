package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeJS records what the minimal receiver publishes.
type fakeJS struct{ msgs []*nats.Msg }

func (f *fakeJS) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	f.msgs = append(f.msgs, m)
	return &jetstream.PubAck{Stream: streamName, Sequence: uint64(len(f.msgs))}, nil
}

func TestMinimalHandler(t *testing.T) {
	body := `{"noticeId":"abc-1","productId":3,"eventType":31,"payload":{}}`
	good := newSigner("s").sign([]byte(body))
	tests := []struct {
		name      string
		sig       string
		body      string
		wantCode  int
		published bool
	}{
		{"signed", good, body, http.StatusOK, true},
		{"wrong signature", newSigner("other").sign([]byte(body)), body, http.StatusUnauthorized, false},
		{"no signature", "", body, http.StatusUnauthorized, false},
		{"not hex", "zz", body, http.StatusUnauthorized, false},
		{"no noticeId", newSigner("s").sign([]byte(`{}`)), `{}`, http.StatusBadRequest, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := &fakeJS{}
			h := &minimalHandler{key: []byte("s"), js: js, subject: minimalSubject}
			req := httptest.NewRequest(http.MethodPost, "/agora/ncs", strings.NewReader(tt.body))
			if tt.sig != "" {
				req.Header.Set("Agora-Signature-V2", tt.sig)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.wantCode, rec.Body)
			}
			if got := len(js.msgs) == 1; got != tt.published {
				t.Fatalf("published %d messages, want published=%t", len(js.msgs), tt.published)
			}
			if tt.published {
				m := js.msgs[0]
				if id := m.Header.Get(jetstream.MsgIDHeader); id != "abc-1" || string(m.Data) != tt.body {
					t.Errorf("published id %q data %q, want abc-1 and the raw body", id, m.Data)
				}
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/agora/ncs", "http://[::1]:1/x"} {
		if err := checkLoopback(u); err != nil {
			t.Errorf("checkLoopback(%q) = %v, want nil", u, err)
		}
	}
	for _, u := range []string{"http://example.com/", "http://10.0.0.1:80/", "http://localhost:80/"} {
		if err := checkLoopback(u); err == nil {
			t.Errorf("checkLoopback(%q) = nil, want an error", u)
		}
	}
}
