package main

import (
	"io"
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
