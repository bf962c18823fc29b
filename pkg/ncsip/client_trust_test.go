package ncsip

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// TestFetchNeverFollowsRedirect is the credential leak of issue 8: an
// endpoint that redirects to the same host on another port. Go's client
// follows such a redirect and re-sends the Basic header, because it compares
// host names, not ports. The client must not follow it at all.
func TestFetchNeverFollowsRedirect(t *testing.T) {
	var leaked atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		ncsiptest.NewHandler(testID, testSecret, docIPs...).ServeHTTP(w, r)
	}))
	defer target.Close()
	for _, code := range []int{http.StatusFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+ncsiptest.Path, code)
			}))
			defer redirect.Close()
			cfg := testConfig(redirect.URL + ncsiptest.Path)
			cfg.Backoff = []time.Duration{}
			c, _ := newTestClient(t, cfg)

			_, err := c.Fetch(t.Context())

			if n := leaked.Load(); n != 0 {
				t.Fatalf("got %d requests with credentials at the redirect's target, want 0", n)
			}
			if err == nil {
				t.Fatal("got a list through a redirect, want a refusal")
			}
			if got := Reason(err); got != "bad_response" {
				t.Errorf("got reason %q, want bad_response", got)
			}
			if !strings.Contains(err.Error(), "redirect") {
				t.Errorf("got %q, want it to say a redirect was refused", err)
			}
		})
	}
}

// TestFetchRefusesTooManyAddresses: a list over ncs.max_addresses is refused
// like a bad answer (reason too_many), so the last good list stays.
func TestFetchRefusesTooManyAddresses(t *testing.T) {
	ips := make([]string, 0, 11)
	for i := range 11 {
		ips = append(ips, fmt.Sprintf("203.0.113.%d", i+1))
	}
	srv := ncsiptest.NewServer(t, testID, testSecret, ips...)
	for _, tt := range []struct {
		max     int
		wantErr bool
	}{{10, true}, {11, false}} {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			cfg := testConfig(srv.Endpoint())
			cfg.Backoff = []time.Duration{}
			cfg.MaxAddresses = tt.max
			c, _ := newTestClient(t, cfg)
			res, err := c.Fetch(t.Context())
			if !tt.wantErr {
				if err != nil || len(res.Addrs) != 11 {
					t.Fatalf("got %d addresses, %v; want 11, nil", len(res.Addrs), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %d addresses, want a refusal over the ceiling of %d", len(res.Addrs), tt.max)
			}
			if got := Reason(err); got != "too_many" {
				t.Errorf("got reason %q, want too_many", got)
			}
			if want := "11 addresses, more than ncs.max_addresses (10)"; !strings.Contains(err.Error(), want) {
				t.Errorf("got %q, want it to contain %q", err, want)
			}
			if errors.Is(err, ErrEmpty) {
				t.Error("got ErrEmpty, want a distinct refusal")
			}
		})
	}
}
