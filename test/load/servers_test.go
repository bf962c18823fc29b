package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
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

// TestMinimalEmbedded runs serve-minimal with its own embedded nats-server:
// a signed notification is published in-process, stored once (a retry is a
// duplicate), and readable over the loopback URL the suite counts with.
func TestMinimalEmbedded(t *testing.T) {
	dir := t.TempDir()
	addrFile, urlFile := dir+"/addr", dir+"/nats.url"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runMinimalCmd(ctx, []string{"-listen", "127.0.0.1:0", "-addr-file", addrFile,
			"-secret", "s", "-embedded", dir + "/nats", "-nats-url-file", urlFile}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve-minimal: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve-minimal did not stop within 30 s")
		}
	}()
	var addr, natsURL []byte
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("serve-minimal exited: %v", err)
		default:
		}
		addr, _ = os.ReadFile(addrFile)
		natsURL, _ = os.ReadFile(urlFile)
		return len(addr) > 0 && len(natsURL) > 0, "serve-minimal to write its listen address and NATS URL"
	})
	body := `{"noticeId":"abc-1","productId":3,"eventType":31,"payload":{}}`
	for range 2 { // the second is a retry: the stream keeps one
		req, err := http.NewRequest(http.MethodPost, "http://"+string(addr)+"/agora/ncs", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Agora-Signature-V2", newSigner("s").sign([]byte(body)))
		resp, err := testenv.HTTPClient(testenv.HTTPTimeout).Do(req)
		if err != nil {
			t.Fatalf("post: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("post: status %d, want 200", resp.StatusCode)
		}
	}
	got, err := streamMsgs(ctx, string(natsURL))
	if err != nil || got != 1 {
		t.Fatalf("stream at %s: %d messages, err %v; want 1", natsURL, got, err)
	}
}

// TestMinimalEmbeddedSyncAlways: the minimal's store fsyncs before every
// ack, as the gateway's embedded default does, so the two compare fairly.
func TestMinimalEmbeddedSyncAlways(t *testing.T) {
	e, err := startMinimalEmbedded(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer e.shutdown()
	if jsc := e.srv.JetStreamConfig(); jsc == nil || !jsc.SyncAlways {
		t.Fatalf("jetstream config %+v, want SyncAlways", jsc)
	}
}
