package testenv

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

func TestPollReturnsWhenDone(t *testing.T) {
	calls := 0
	done, reason := Poll(10*time.Second, time.Millisecond, func() (bool, string) {
		calls++
		return calls == 3, fmt.Sprintf("call %d", calls)
	})
	if !done || reason != "call 3" || calls != 3 {
		t.Errorf("Poll: got done %t, reason %q after %d calls; want true, \"call 3\" after 3", done, reason, calls)
	}
}

// TestPollGivesUpWithLastReason: a condition that never holds ends the wait
// at the deadline, and the reason is the one from the last call (the state
// at the deadline, not at the start).
func TestPollGivesUpWithLastReason(t *testing.T) {
	calls := 0
	start := time.Now()
	done, reason := Poll(50*time.Millisecond, 10*time.Millisecond, func() (bool, string) {
		calls++
		return false, fmt.Sprintf("call %d", calls)
	})
	took := time.Since(start)
	if done {
		t.Fatalf("Poll: got done, want a timeout")
	}
	if want := fmt.Sprintf("call %d", calls); reason != want || calls < 2 {
		t.Errorf("Poll: got reason %q after %d calls, want %q after at least 2", reason, calls, want)
	}
	if took < 50*time.Millisecond {
		t.Errorf("Poll: gave up after %s, want not before the 50ms deadline", took)
	}
	if got, want := timeoutMessage(50*time.Millisecond, reason), "timed out after 50ms: "+reason; got != want {
		t.Errorf("message: got %q, want %q", got, want)
	}
}

// TestHTTPClientGivesUpOnSilentServer: a server that accepts and never
// answers makes the call fail within the client's timeout; with
// http.DefaultClient the same call waits forever.
func TestHTTPClientGivesUpOnSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c // held open, never answered
		}
	}()
	defer func() {
		ln.Close()
		<-accepting
		close(conns)
		for c := range conns {
			c.Close()
		}
	}()
	errc := make(chan error, 1)
	go func() {
		resp, err := HTTPClient(200 * time.Millisecond).Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("GET a silent server: got %v, want a timeout error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GET a silent server: no answer and no error after 30s, want a timeout error after 200ms")
	}
}
