package webhook

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// hangGuard bounds a read that must end; it only turns a hang into a
// failure, it measures nothing.
const hangGuard = 30 * time.Second

func TestMaxConnectionsConfig(t *testing.T) {
	if got := testConfig().withDefaults().MaxConnections; got != DefaultMaxConnections {
		t.Errorf("zero max connections: got %d after defaults, want %d", got, DefaultMaxConnections)
	}
	cfg := testConfig()
	cfg.MaxConnections = -1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "webhook.max_connections") {
		t.Errorf("negative max connections: got %v, want an error naming webhook.max_connections", err)
	}
}

// fakeListener hands out the connections sent on conns, or err.
type fakeListener struct {
	conns chan net.Conn
	err   error
	calls atomic.Int64
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	c, ok := <-f.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (f *fakeListener) Close() error   { return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// closeConn is a connection that records being closed.
type closeConn struct {
	net.Conn
	closed atomic.Int64
}

func (c *closeConn) Close() error { c.closed.Add(1); return nil }

// useReclaimDelays sets how long connections are spared, for one test.
func useReclaimDelays(t *testing.T, idle, fresh time.Duration) {
	oldIdle, oldNew := reclaimIdle, reclaimNew
	reclaimIdle, reclaimNew = idle, fresh
	t.Cleanup(func() { reclaimIdle, reclaimNew = oldIdle, oldNew })
}

// waitFor polls cond until it holds, failing the test with what it waited
// for after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimitListenerWaitsForASlot(t *testing.T) {
	fake := &fakeListener{conns: make(chan net.Conn, 2)}
	fake.conns <- &closeConn{}
	fake.conns <- &closeConn{}
	ln := newLimitListener(fake, 1, zap.NewNop())
	first, err := ln.Accept()
	if err != nil {
		t.Fatalf("first accept: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		got <- err
	}()
	waitFor(t, "the at-the-cap warning (the accept waits)", func() bool { return ln.lastLog.Load() != 0 })
	if n := fake.calls.Load(); n != 1 {
		t.Errorf("at the cap: the inner listener was asked %d times, want 1 (the second accept must wait)", n)
	}
	// Closing twice gives the slot back once.
	first.Close()
	first.Close()
	if err := <-got; err != nil {
		t.Fatalf("second accept: %v", err)
	}
	if n := len(ln.slots); n != 1 {
		t.Errorf("got %d slots taken, want 1", n)
	}
}

func TestLimitListenerCloseWakesAccept(t *testing.T) {
	fake := &fakeListener{conns: make(chan net.Conn, 1)}
	fake.conns <- &closeConn{}
	ln := newLimitListener(fake, 1, zap.NewNop())
	if _, err := ln.Accept(); err != nil {
		t.Fatalf("first accept: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		got <- err
	}()
	waitFor(t, "the at-the-cap warning (the accept waits)", func() bool { return ln.lastLog.Load() != 0 })
	ln.Close()
	if err := <-got; !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after close: got %v, want net.ErrClosed", err)
	}
}

func TestLimitListenerOutOfFilesReclaims(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	fake := &fakeListener{err: emfile}
	useReclaimDelays(t, 0, 0)
	ln := newLimitListener(fake, 4, zap.NewNop())
	idle, busy := &closeConn{}, &closeConn{}
	ln.track(idle, http.StateIdle)
	ln.track(busy, http.StateIdle)
	ln.track(busy, http.StateActive)
	if _, err := ln.Accept(); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("accept: got %v, want EMFILE", err)
	}
	if idle.closed.Load() != 1 || busy.closed.Load() != 0 {
		t.Errorf("closed: idle %d times, active %d times; want the idle one once, the active one never",
			idle.closed.Load(), busy.closed.Load())
	}
	if n := len(ln.slots); n != 0 {
		t.Errorf("got %d slots taken after a failed accept, want 0", n)
	}
}

func TestReclaimHeaderDawdlers(t *testing.T) {
	useReclaimDelays(t, time.Hour, 0)
	ln := newLimitListener(&fakeListener{}, 4, zap.NewNop())
	dawdler, served, idle := &closeConn{}, &closeConn{}, &closeConn{}
	ln.track(dawdler, http.StateNew)
	ln.track(served, http.StateNew)
	ln.track(served, http.StateActive)
	ln.track(idle, http.StateIdle) // idle for less than reclaimIdle
	ln.reclaim()
	if dawdler.closed.Load() != 1 || served.closed.Load() != 0 || idle.closed.Load() != 0 {
		t.Errorf("closed: no header yet %d, request in progress %d, just idle %d; want 1, 0, 0",
			dawdler.closed.Load(), served.closed.Load(), idle.closed.Load())
	}
}

func TestReclaimOldestIdleFirst(t *testing.T) {
	ln := newLimitListener(&fakeListener{}, 100, zap.NewNop())
	conns := make([]*closeConn, reclaimBatch+3)
	for i := range conns {
		conns[i] = &closeConn{}
		ln.track(conns[i], http.StateIdle)
		ln.spare[conns[i]] = time.Unix(int64(1000+i), 0) // spare since long, oldest first
	}
	ln.track(conns[len(conns)-1], http.StateIdle) // just became idle: spared
	ln.reclaim()
	if n := ln.reclaimed.Load(); n != reclaimBatch {
		t.Fatalf("reclaimed %d, want a batch of %d", n, reclaimBatch)
	}
	for i, c := range conns {
		want := int64(0)
		if i < reclaimBatch {
			want = 1 // among the oldest
		}
		if got := c.closed.Load(); got != want {
			t.Errorf("connection %d of %d, oldest first: closed %d times, want %d", i, len(conns), got, want)
		}
	}
}

// spareAddrs are the client addresses of ln's spare connections.
func spareAddrs(ln *limitListener) map[string]bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	out := map[string]bool{}
	for c := range ln.spare {
		out[c.RemoteAddr().String()] = true
	}
	return out
}

// rawRequest is a signed notification as raw HTTP/1.1 with keep-alive.
func rawRequest(t *testing.T, body []byte) string {
	t.Helper()
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
		testPath, HeaderSignatureV2, signSHA256(testSecret, body), len(body))
}

// readStatus reads one answer from br and returns its status code.
func readStatus(t *testing.T, conn net.Conn, br *bufio.Reader) int {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// At the cap, a new client is served by closing an idle keep-alive
// connection, never one whose request is being read.
func TestServerConnectionCapReclaimsIdle(t *testing.T) {
	useReclaimDelays(t, 0, time.Hour)
	cfg := testConfig()
	cfg.MaxConnections = 2
	pub := &fakePublisher{}
	s, err := NewServer(cfg, pub, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	s.srv.ReadTimeout = time.Hour // the slow request below must not time out on a loaded machine
	startServer(t, s)
	addr := s.Addr().String()
	body := fixture(t, "uploaded.json")
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}

	// busy: whole header, half the body, and the rest later.
	busy, busyR := dial()
	if _, err := io.WriteString(busy, rawRequest(t, body)+string(body[:len(body)/2])); err != nil {
		t.Fatalf("write busy request: %v", err)
	}
	// idle: one request answered, then nothing.
	idle, idleR := dial()
	if _, err := io.WriteString(idle, rawRequest(t, body)+string(body)); err != nil {
		t.Fatalf("write idle request: %v", err)
	}
	if code := readStatus(t, idle, idleR); code != http.StatusOK {
		t.Fatalf("idle connection's request: got %d, want 200", code)
	}
	// Wait until the server has read busy's header and marked idle idle.
	waitFor(t, "busy's header read and idle marked idle", func() bool {
		spare := spareAddrs(s.lim)
		return len(spare) == 1 && spare[idle.LocalAddr().String()]
	})

	// A third client: served once the idle connection is closed.
	third, thirdR := dial()
	if _, err := io.WriteString(third, rawRequest(t, body)+string(body)); err != nil {
		t.Fatalf("write third request: %v", err)
	}
	if code := readStatus(t, third, thirdR); code != http.StatusOK {
		t.Errorf("third client at the cap: got %d, want 200", code)
	}
	if err := idle.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	if _, err := idleR.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("idle connection: got %v, want it closed by the server", err)
	}
	if _, err := io.WriteString(busy, string(body[len(body)/2:])); err != nil {
		t.Fatalf("finish busy request: %v", err)
	}
	if code := readStatus(t, busy, busyR); code != http.StatusOK {
		t.Errorf("busy connection at the cap: got %d, want 200 (a request in progress is never cut)", code)
	}
	if open, limit := s.Connections(); limit != 2 || open > 2 {
		t.Errorf("connections: got %d open of %d, want at most 2 of 2", open, limit)
	}
	if got := len(pub.messages()); got != 3 {
		t.Errorf("got %d messages published, want 3", got)
	}
}

func TestLimitedConnCloseWrite(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	ln := newLimitListener(l, 1, zap.NewNop())
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer server.Close()
	cw, ok := server.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("accepted connection has no CloseWrite: net/http could not half-close it")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	if err := client.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("client read after CloseWrite: got %v, want EOF", err)
	}
}
