package webhook

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// limitListener caps the webhook's open connections. At the cap, Accept
// waits for a slot (new connections queue in the kernel's accept queue, at
// no cost here) and meanwhile closes spare connections, as nginx does:
// keep-alive ones idle for reclaimIdle, new ones without a whole request
// header after reclaimNew, longest spare first; they would otherwise hold
// their slots until the idle or header timeout. A request being read or
// answered is never cut.
type limitListener struct {
	net.Listener
	slots     chan struct{} // one element per open connection
	log       *zap.Logger
	done      chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	spare map[net.Conn]time.Time // connections that may be closed to make room, from when

	reclaimed atomic.Int64 // spare connections closed
	lastLog   atomic.Int64 // unix nanoseconds of the last warning
}

// A reclaim closes reclaimBatch connections at most, again every
// reclaimEvery while Accept waits. reclaimIdle spares a client between two
// requests, reclaimNew its handshake and header (variables for the tests).
const (
	reclaimBatch  = 32
	reclaimEvery  = 100 * time.Millisecond
	limitLogEvery = 10 * time.Second
)

var reclaimIdle, reclaimNew = time.Second, 2 * time.Second

func newLimitListener(ln net.Listener, n int, log *zap.Logger) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), log: log, done: make(chan struct{}),
		spare: map[net.Conn]time.Time{}}
}

// track is the server's ConnState hook. net/http marks a connection active
// once a whole request header is read: a new or idle one may be sending one.
func (ln *limitListener) track(c net.Conn, st http.ConnState) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	switch st {
	case http.StateIdle:
		ln.spare[c] = time.Now().Add(reclaimIdle)
	case http.StateNew:
		ln.spare[c] = time.Now().Add(reclaimNew)
	default: // active, closed, hijacked
		delete(ln.spare, c)
	}
}

// reclaim closes up to reclaimBatch spare connections, longest spare first.
func (ln *limitListener) reclaim() {
	now := time.Now()
	ln.mu.Lock()
	var old []net.Conn
	for c, from := range ln.spare {
		if !from.After(now) {
			old = append(old, c)
		}
	}
	slices.SortFunc(old, func(a, b net.Conn) int { return ln.spare[a].Compare(ln.spare[b]) })
	old = old[:min(len(old), reclaimBatch)]
	for _, c := range old {
		delete(ln.spare, c)
	}
	ln.mu.Unlock()
	for _, c := range old {
		_ = c.Close() // the server's read fails and it forgets the connection
	}
	ln.reclaimed.Add(int64(len(old)))
}

// warn logs that the cap is reached, at most once per limitLogEvery.
func (ln *limitListener) warn() {
	now, last := time.Now().UnixNano(), ln.lastLog.Load()
	if now-last < int64(limitLogEvery) || !ln.lastLog.CompareAndSwap(last, now) {
		return
	}
	ln.log.Warn("webhook connection limit reached: new connections wait, spare ones are closed",
		zap.Int("max_connections", cap(ln.slots)), zap.Int64("reclaimed_total", ln.reclaimed.Load()))
}

// Accept waits for a slot, reclaiming idle connections meanwhile, then
// accepts. Out of file descriptors below the cap, it reclaims too and
// returns the error (net/http retries).
func (ln *limitListener) Accept() (net.Conn, error) {
	if err := ln.acquire(); err != nil {
		return nil, err
	}
	c, err := ln.Listener.Accept()
	if err != nil {
		<-ln.slots
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			ln.reclaim()
			ln.warn()
		}
		return nil, err
	}
	return &limitedConn{Conn: c, slots: ln.slots}, nil
}

// acquire takes a slot, waiting while all are taken, until Close.
func (ln *limitListener) acquire() error {
	select {
	case <-ln.done:
		return net.ErrClosed
	case ln.slots <- struct{}{}:
		return nil
	default:
	}
	ln.warn()
	t := time.NewTicker(reclaimEvery)
	defer t.Stop()
	for {
		ln.reclaim()
		select {
		case <-ln.done:
			return net.ErrClosed
		case ln.slots <- struct{}{}:
			return nil
		case <-t.C:
		}
	}
}

// Close stops the listener, waking a waiting Accept.
func (ln *limitListener) Close() error {
	ln.closeOnce.Do(func() { close(ln.done) })
	return ln.Listener.Close()
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	slots     chan struct{}
	closeOnce sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { <-c.slots })
	return err
}

// CloseWrite half-closes; net/http uses it so a client reads an error answer.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
