package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRedactURLs(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pa55@host:4222", "nats://redacted@host:4222"},
		{"nats://t0ken@host:4222", "nats://redacted@host:4222"},
		{"tls://a:b@h1:4222, nats://h2:4222", "tls://redacted@h1:4222,nats://h2:4222"},
		{"user:pa55@host:4222", "redacted@host:4222"},
		{"nats://u:p@ss@host:4222", "nats://redacted@host:4222"},
	}
	for _, tt := range tests {
		got := redactURLs(tt.in)
		if got != tt.want {
			t.Errorf("redactURLs(%q): got %q, want %q", tt.in, got, tt.want)
		}
		for _, secret := range []string{"pa55", "t0ken", "p@ss"} {
			if strings.Contains(got, secret) {
				t.Errorf("redactURLs(%q): got %q, want no %q", tt.in, got, secret)
			}
		}
	}
}

func TestFailureReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, reasonTimeout},
		{fmt.Errorf("publish to jetstream: %w", nats.ErrTimeout), reasonTimeout},
		{jetstream.ErrNoStreamResponse, reasonNoStream},
		{nats.ErrNoResponders, reasonNoStream},
		{errNotConnected, reasonDisconnected},
		{nats.ErrReconnectBufExceeded, reasonDisconnected},
		{nats.ErrConnectionClosed, reasonDisconnected},
		{nats.ErrConnectionDraining, reasonDisconnected},
		{errors.New("nats: maximum payload exceeded"), reasonError},
	}
	for _, tt := range tests {
		if got := failureReason(tt.err); got != tt.want {
			t.Errorf("failureReason(%v): got %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestDelaysStayBounded(t *testing.T) {
	for n := 1; n < 100; n++ {
		if d := backoff(n); d < retryMin/2 || d > retryMax {
			t.Errorf("backoff(%d): got %s, want within [%s, %s]", n, d, retryMin/2, retryMax)
		}
		if d := reconnectDelay(n); d < reconnectMin || d > reconnectMax+reconnectMax/4 {
			t.Errorf("reconnectDelay(%d): got %s, want within [%s, %s]", n, d, reconnectMin, reconnectMax+reconnectMax/4)
		}
	}
	if d := backoff(100); d < 15*time.Second {
		t.Errorf("backoff(100): got %s, want at least half of %s", d, retryMax)
	}
}
