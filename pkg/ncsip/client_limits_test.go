package ncsip

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// TestFetchUnauthorized checks that a refusal is final, explains itself, and
// leaks the credentials neither in the error nor in the logs, even when the
// server echoes them back.
func TestFetchUnauthorized(t *testing.T) {
	token := base64.StdEncoding.EncodeToString([]byte(testID + ":" + testSecret))
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		w.WriteHeader(http.StatusForbidden)
		_, _ = fmt.Fprintf(w, `{"message":"refused %s:%s (%s)"}`, id, secret, r.Header.Get("Authorization"))
	}))
	defer echo.Close()

	tests := []struct {
		name         string
		echo         bool // the first endpoint echoes the credentials in its refusal
		wantRequests int  // to the two fakes
		wantInErr    string
	}{
		{name: "wrong credentials", wantRequests: 1,
			wantInErr: `401 Unauthorized: "Invalid authentication credentials" (check NCS_GATEWAY_CUSTOMER_ID / NCS_GATEWAY_CUSTOMER_SECRET)`},
		{name: "server echoes the credentials", echo: true, wantRequests: 0,
			wantInErr: `403 Forbidden: "refused [redacted]:[redacted] (Basic [redacted])" (check NCS_GATEWAY_CUSTOMER_ID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := ncsiptest.NewServer(t, testID, "the-right-secret", docIPs...)
			second := ncsiptest.NewServer(t, testID, "the-right-secret", docIPs...)
			endpoints := []string{first.Endpoint(), second.Endpoint()}
			if tt.echo {
				endpoints[0] = echo.URL + ncsiptest.Path
			}
			c, logs := newTestClient(t, testConfig(endpoints...))

			_, err := c.Fetch(t.Context())

			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("got %v, want ErrUnauthorized", err)
			}
			if got := Reason(err); got != "unauthorized" {
				t.Errorf("got reason %q, want unauthorized", got)
			}
			if got := first.Requests() + second.Requests(); got != tt.wantRequests {
				t.Errorf("got %d requests to the fakes, want %d (no retry)", got, tt.wantRequests)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("got error %q, want it to contain %q", err, tt.wantInErr)
			}
			texts := []string{err.Error()}
			for _, e := range logs.All() {
				texts = append(texts, e.Message, fmt.Sprint(e.ContextMap()))
			}
			for _, text := range texts {
				for _, secret := range []string{testSecret, testID, token} {
					if strings.Contains(text, secret) {
						t.Errorf("got %q, want no credentials in it", text)
					}
				}
			}
		})
	}
}

// TestFetchCanceledDuringBackoff cancels as the first retry is announced;
// with an hour of backoff, Fetch returning at all shows it stopped waiting.
func TestFetchCanceledDuringBackoff(t *testing.T) {
	fake := ncsiptest.NewServer(t, testID, testSecret, docIPs...)
	fake.QueueStatus(500)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg := testConfig(fake.Endpoint())
	cfg.Backoff = []time.Duration{time.Hour}
	c, _ := newTestClient(t, cfg, zap.Hooks(func(e zapcore.Entry) error {
		if e.Level == zapcore.WarnLevel {
			cancel()
		}
		return nil
	}))

	_, err := c.Fetch(ctx)

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if got := Reason(err); got != "canceled" {
		t.Errorf("got reason %q, want canceled", got)
	}
	if want := "wait 1h0m0s before attempt 2: context canceled"; !strings.Contains(err.Error(), want) {
		t.Errorf("got %q, want it to contain %q", err, want)
	}
	if got := fake.Requests(); got != 1 {
		t.Errorf("got %d requests, want 1", got)
	}
}

// countingBody counts what the client reads of an answer.
type countingBody struct {
	io.ReadCloser
	mu *sync.Mutex
	n  *int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	*b.n += int64(n)
	b.mu.Unlock()
	return n, err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestFetchHugeBodyBounded checks that the client stops reading at the
// limit, whether or not the server declares the length.
func TestFetchHugeBodyBounded(t *testing.T) {
	const limit = 1 << 20
	declared := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(ncsiptest.HugeBodySize))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(make([]byte, 64<<10)) // then hang up: the client must not wait for the rest
	}))
	defer declared.Close()
	streamed := ncsiptest.NewServer(t, testID, testSecret, docIPs...)
	streamed.QueueFault(ncsiptest.Huge)

	tests := []struct {
		name     string
		endpoint string
		wantRead int64 // at most
		wantErr  string
	}{
		{"declared length", declared.URL + ncsiptest.Path, 0, "answer of 16777216 bytes exceeds the limit of 1048576"},
		{"streamed", streamed.Endpoint(), limit + 1, "answer exceeds the limit of 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var read int64
			cfg := testConfig(tt.endpoint)
			cfg.MaxBodyBytes = limit
			cfg.Backoff = []time.Duration{}
			cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := http.DefaultTransport.RoundTrip(r)
				if err == nil {
					resp.Body = countingBody{resp.Body, &mu, &read}
				}
				return resp, err
			})}
			c, _ := newTestClient(t, cfg)

			_, err := c.Fetch(t.Context())

			if got := Reason(err); got != "bad_response" {
				t.Fatalf("got reason %q (%v), want bad_response", got, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %q, want it to contain %q", err, tt.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if read > tt.wantRead {
				t.Errorf("got %d bytes read, want at most %d", read, tt.wantRead)
			}
		})
	}
}
