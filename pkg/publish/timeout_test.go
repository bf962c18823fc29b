package publish

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ackGate is a loopback TCP proxy to a NATS server that can hold back
// everything the server sends (acknowledgements included) while the
// client's messages still reach the server: a slow ack, as a busy or
// electing stream leader gives.
type ackGate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	held   bool
	open   *sync.Cond
	conns  []net.Conn
	closed bool
}

func newAckGate(t *testing.T, target string) *ackGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	g := &ackGate{ln: ln, target: target}
	g.open = sync.NewCond(&g.mu)
	go g.serve()
	t.Cleanup(g.close)
	return g
}

func (g *ackGate) url() string { return "nats://" + g.ln.Addr().String() }

// hold stops the server's bytes from reaching the client; release lets
// them through again, the held ones first.
func (g *ackGate) hold() { g.set(true) }

func (g *ackGate) release() { g.set(false) }

func (g *ackGate) set(held bool) {
	g.mu.Lock()
	g.held = held
	g.mu.Unlock()
	g.open.Broadcast()
}

func (g *ackGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", g.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, c, s)
		g.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() { g.copyHeld(c, s); _ = c.Close() }()
	}
}

// copyHeld copies server to client, waiting before each write while held.
func (g *ackGate) copyHeld(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			g.mu.Lock()
			for g.held && !g.closed {
				g.open.Wait()
			}
			g.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (g *ackGate) close() {
	_ = g.ln.Close()
	g.mu.Lock()
	g.closed = true
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.mu.Unlock()
	g.open.Broadcast()
}

// TestSlowAckSpoolsThenForwardsOnce is issue 9's publish-timeout path: NATS
// is connected but the acknowledgement does not come within
// publish_timeout. The message goes to the spool, the failure counts as
// reason timeout, and once acks flow again the stream holds it exactly
// once (the server had it already; the forwarder's copy is a duplicate).
func TestSlowAckSpoolsThenForwardsOnce(t *testing.T) {
	srv := startNATS(t)
	gate := newAckGate(t, srv.emb.Server().Addr().String())
	cfg := testConfig(gate.url(), t.TempDir())
	// Well below the client's stale-connection detection (about 4 s), so
	// the publish times out on a connection still believed up.
	cfg.PublishTimeout = 500 * time.Millisecond
	p := newTestPublisher(t, cfg, true)
	_, js := srv.client()
	eventually(t, 10*time.Second, "stream ready", func() error {
		_, err := streamCount(js, DefaultStream)
		return err
	})

	gate.hold()
	m := testMsg(7)
	out, err := p.Publish(context.Background(), m)
	if err != nil || out != Spooled {
		t.Fatalf("publish with the ack held: got %v, %v, want spooled, nil", out, err)
	}
	if got := p.metric(t, "ncs_gateway_nats_publish_failures_total", "reason", reasonTimeout); got != 1 {
		t.Errorf("publish_failures_total{timeout}: got %v, want 1", got)
	}
	for _, r := range []string{reasonDisconnected, reasonNoStream, reasonError} {
		if got := p.metric(t, "ncs_gateway_nats_publish_failures_total", "reason", r); got != 0 {
			t.Errorf("publish_failures_total{%s}: got %v, want 0", r, got)
		}
	}
	// The server stored it although its ack never arrived.
	eventually(t, 10*time.Second, "server stores the message", func() error {
		if n, err := streamCount(js, DefaultStream); err != nil || n != 1 {
			return fmt.Errorf("stream holds %d messages (%v)", n, err)
		}
		return nil
	})

	gate.release()
	eventually(t, 20*time.Second, "spool forwarded", func() error {
		if d := p.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	got := streamMsgs(t, js, DefaultStream)
	if len(got) != 1 || got[0].Header.Get("Nats-Msg-Id") != m.ID {
		ids := make([]string, len(got))
		for i, sm := range got {
			ids[i] = sm.Header.Get("Nats-Msg-Id")
		}
		t.Errorf("stream: got ids %v, want [%s] exactly once", ids, m.ID)
	}
	if got := p.metric(t, "ncs_gateway_spool_forwarded_total"); got != 1 {
		t.Errorf("spool_forwarded_total: got %v, want 1", got)
	}
}
