package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// TestNotifyBounds: for every duplicate window the soak accepts, the
// notifyMs bounds the tool writes pass the webhook's own checks and, added
// up, stay below the window, as the gateway's config check requires.
func TestNotifyBounds(t *testing.T) {
	for _, w := range []time.Duration{minDupWindow, 3 * time.Minute, 10 * time.Minute, time.Hour, 2 * time.Hour, 24 * time.Hour} {
		age, future := notifyBounds(w)
		cfg := webhook.Config{Listen: "127.0.0.1:0", Path: "/agora/ncs", MaxNotifyAge: age, MaxNotifyFuture: future}
		if err := cfg.Validate(); err != nil {
			t.Errorf("window %s: age %s, future %s: %v", w, age, future, err)
		}
		if age+future >= w {
			t.Errorf("window %s: age %s + future %s is not below it", w, age, future)
		}
	}
}

// TestSoakDupWindowTooShort: a window the gateway would refuse with any
// notifyMs bounds is refused by the flags, before anything starts.
func TestSoakDupWindowTooShort(t *testing.T) {
	if _, err := parseSoakFlags([]string{"-dup-window", "1m"}, io.Discard); err == nil {
		t.Fatal("soak -dup-window 1m: no error, want one (the gateway needs max_notify_age >= 1m below the window)")
	}
	if _, err := parseSoakFlags([]string{"-dup-window", "2m"}, io.Discard); err != nil {
		t.Fatalf("soak -dup-window 2m: %v", err)
	}
}

// TestContractProblems reads the gateway's contract gauges: a series at 1
// is named, all at 0 is none, and a gateway without the gauges is an error,
// not a pass.
func TestContractProblems(t *testing.T) {
	tests := []struct {
		name, body, want string
		wantErr          bool
	}{
		{"fits", contractProblem + "{problem=\"replicas\"} 0\n" + contractProblem + "{problem=\"subjects\"} 0\n", "", false},
		{"replicas", contractProblem + "{problem=\"replicas\"} 1\n" + contractProblem + "{problem=\"subjects\"} 0\n", contractProblem + "{problem=\"replicas\"}", false},
		{"no gauges", "go_goroutines 7\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, tt.body) }))
			defer srv.Close()
			got, err := contractProblems(context.Background(), srv.URL)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("contractProblems = %q, %v; want %q, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
