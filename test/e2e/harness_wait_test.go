package e2e

import (
	"net"
	"testing"
	"time"
)

// silentListener accepts TCP connections on loopback and never answers, the
// way a wedged daemon does; it returns the URL to call.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return "http://" + ln.Addr().String() + "/healthz"
}

// TestHarnessClientGivesUp: the harness's HTTP client gives up on a server
// that accepts and never answers, so a wedged daemon fails the test that
// calls it instead of hanging until the suite's 45-minute limit.
func TestHarnessClientGivesUp(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	url := silentListener(t)
	const guard = 60 * time.Second
	errc := make(chan error, 1)
	asked := time.Now()
	go func() {
		resp, err := g.client.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatalf("GET a silent server: got an answer, want a timeout error")
		}
		t.Logf("GET a silent server: %v after %s", err, time.Since(asked).Round(time.Millisecond))
	case <-time.After(guard):
		t.Fatalf("GET a silent server: got no answer and no error after %s, want an error within the client's timeout", guard)
	}
}
