package main

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// startTestAPI serves file on a free loopback port until the test ends.
func startTestAPI(t *testing.T, file string) *ipAPI {
	t.Helper()
	a, err := startIPAPI("127.0.0.1:0", "sim-id", "sim-secret", file, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return a
}

// fetch reads the list with the gateway's own client.
func fetch(t *testing.T, a *ipAPI, id, secret string) ([]netip.Addr, error) {
	t.Helper()
	c, err := ncsip.New(ncsip.Config{
		Endpoints:  []string{"http://" + a.addr.String() + ncsiptest.Path},
		CustomerID: id, CustomerSecret: secret,
		Backoff: []time.Duration{},
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Fetch(context.Background())
	return res.Addrs, err
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, v := range s {
		out = append(out, netip.MustParseAddr(v))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func TestIPAPIFollowsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ips.txt")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# NCS addresses\n198.51.100.10\n\n203.0.113.10  # second\n")
	a := startTestAPI(t, file)

	got, err := fetch(t, a, "sim-id", "sim-secret")
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs("198.51.100.10", "203.0.113.10"); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	write("203.0.113.10\n203.0.113.20\n2001:db8::20\n")
	got, err = fetch(t, a, "sim-id", "sim-secret")
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs("203.0.113.10", "203.0.113.20", "2001:db8::20"); !slices.Equal(got, want) {
		t.Errorf("after the edit got %v, want %v", got, want)
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if got2, err := fetch(t, a, "sim-id", "sim-secret"); err != nil || !slices.Equal(got2, got) {
		t.Errorf("file gone: got %v, %v, want the previous list %v", got2, err, got)
	}
}

func TestIPAPIBasicAuth(t *testing.T) {
	a := startTestAPI(t, "")
	if _, err := fetch(t, a, "sim-id", "wrong"); !errors.Is(err, ncsip.ErrUnauthorized) {
		t.Errorf("wrong secret: got %v, want ncsip.ErrUnauthorized", err)
	}
	got, err := fetch(t, a, "sim-id", "sim-secret")
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs(defaultIPs...); !slices.Equal(got, want) {
		t.Errorf("got %v, want the default list %v", got, want)
	}
}

func TestParseIPList(t *testing.T) {
	got := parseIPList([]byte("# c\n 198.51.100.1 \nnot-an-ip # odd\n\n"))
	if want := []string{"198.51.100.1", "not-an-ip"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if bad := invalidIPs(got); !slices.Equal(bad, []string{"not-an-ip"}) {
		t.Errorf("invalidIPs = %q, want [not-an-ip]", bad)
	}
	a := &ipAPI{file: "f"}
	if d := a.describe(got); !strings.Contains(d, "not IP addresses: not-an-ip") {
		t.Errorf("describe = %q, want it to point out not-an-ip", d)
	}
}
