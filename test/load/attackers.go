package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// attackPlan is the hostile traffic of `attack`, all to one webhook on
// loopback. Every worker stops when the run's context ends.
type attackPlan struct {
	addr     string // host:port of the webhook
	path     string
	secret   string // the real secret: only the idle connections' one request each is signed with it
	corpus   *corpus
	maxBody  int64         // the gateway's max_body_bytes
	forged   int           // workers posting valid-looking bodies with wrong signatures, as fast as answered
	oversize int           // workers per form posting max_body_bytes+1 bytes (with Content-Length; chunked)
	loris    int           // connections sending a request header one byte per interval
	slowBody int           // connections sending a whole header with Content-Length max_body_bytes, then one body byte per interval
	idle     int           // connections that send one valid request each, then stay idle
	interval time.Duration // the slow senders' byte interval
	tls      *tls.Config   // when set, every connection speaks TLS (-tls)
}

// conns is how many client connections the plan holds at most at once.
func (p attackPlan) conns() int { return p.forged + 2*p.oversize + p.loris + p.slowBody + p.idle }

// attackStats is what the attack sent and how the server answered.
type attackStats struct {
	forged, oversizeCL, oversizeChunked tally // answers: "401", "413", or a transport error
	loris, slowBody                     tally // how each connection ended: "closed", "HTTP 400", ...
	lorisLife, slowBodyLife             lifetimes
	idle                                tally     // answers to the idle connections' one request
	idleLife                            lifetimes // idle connections the server closed: time from the answer to the close
	idleOK                              atomic.Int64
	idleUnknown                         atomic.Int64 // sent, no answer: may or may not be published
}

// attackRun is a running attack; stop ends it and waits for every worker.
type attackRun struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start launches every worker of the plan in the background.
func (p attackPlan) start(ctx context.Context, run uint64, st *attackStats) *attackRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &attackRun{cancel: cancel}
	url := "http://" + p.addr + p.path
	if p.tls != nil {
		url = "https://" + p.addr + p.path
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: withTLS(newTransport(p.forged+2*p.oversize), p.tls)}
	var next atomic.Uint64
	for range p.forged {
		r.wg.Go(func() { p.forgedWorker(ctx, client, url, run, &next, &st.forged) })
	}
	big := make([]byte, p.maxBody+1)
	for i := range big {
		big[i] = ' '
	}
	big[0], big[len(big)-1] = '{', '}'
	for range p.oversize {
		r.wg.Go(func() { p.oversizeWorker(ctx, client, url, big, false, &st.oversizeCL) })
		r.wg.Go(func() { p.oversizeWorker(ctx, client, url, big, true, &st.oversizeChunked) })
	}
	lorisHead := "POST " + p.path + " HTTP/1.1\r\nHost: " + p.addr + "\r\nContent-Type: application/json\r\nX-Slow: "
	for range p.loris {
		r.wg.Go(func() { p.slowConn(ctx, "", lorisHead, &st.loris, &st.lorisLife) })
	}
	bodyHead := "POST " + p.path + " HTTP/1.1\r\nHost: " + p.addr + "\r\nContent-Type: application/json\r\n" +
		"Agora-Signature-V2: " + strings.Repeat("0", 64) + "\r\nContent-Length: " + strconv.FormatInt(p.maxBody, 10) + "\r\n\r\n"
	for range p.slowBody {
		r.wg.Go(func() { p.slowConn(ctx, bodyHead, "{", &st.slowBody, &st.slowBodyLife) })
	}
	opening := make(chan struct{}, 64) // idle connections opened at once
	for i := range p.idle {
		r.wg.Go(func() { p.idleConn(ctx, run, uint64(i), opening, st) })
	}
	return r
}

// stop ends the attack, closing every connection, and waits for it.
func (r *attackRun) stop() {
	r.cancel()
	r.wg.Wait()
}

// forgedWorker posts notifications signed with a wrong secret.
func (p attackPlan) forgedWorker(ctx context.Context, client *http.Client, url string, run uint64, next *atomic.Uint64, t *tally) {
	s := newSigner("not-" + p.secret)
	var id [idLen]byte
	for ctx.Err() == nil {
		seq := next.Add(1) | 1<<63 // apart from the idle connections' ids
		noticeID(run, seq, &id)
		body := p.corpus.body(seq, &id)
		code, err := post(ctx, client, url, bytes.NewReader(body), s.sign(body))
		t.record(ctx, code, err)
	}
}

// oversizeWorker posts big (one byte over the limit) with its length, or
// chunked without one.
func (p attackPlan) oversizeWorker(ctx context.Context, client *http.Client, url string, big []byte, chunked bool, t *tally) {
	for ctx.Err() == nil {
		var body io.Reader = bytes.NewReader(big)
		if chunked {
			body = struct{ io.Reader }{body} // hides the length: sent chunked
		}
		code, err := post(ctx, client, url, body, strings.Repeat("0", 64))
		t.record(ctx, code, err)
	}
}

// post sends one request and reads the answer; it returns the status.
func post(ctx context.Context, client *http.Client, url string, body io.Reader, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	if _, known := body.(*bytes.Reader); !known {
		req.ContentLength = -1
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Agora-Signature-V2", sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, nil
}

// slowConn keeps one slow sender connected: it writes head at once, then
// tail and 'a's one byte per interval, until the server answers or closes,
// and then connects again. How each connection ended goes to t, how long
// the server kept it to life.
func (p attackPlan) slowConn(ctx context.Context, head, tail string, t *tally, life *lifetimes) {
	for ctx.Err() == nil {
		conn, err := p.dial(ctx)
		if err != nil {
			t.record(ctx, 0, fmt.Errorf("dial: %w", err))
			sleepCtx(ctx, p.interval, nil)
			continue
		}
		begin := time.Now()
		label := p.trickle(ctx, conn, head, tail)
		conn.Close()
		if ctx.Err() != nil {
			return // our own stop, not the server's doing
		}
		t.add(label)
		life.add(time.Since(begin))
	}
}

// trickle writes head, then tail one byte per interval followed by 'a's,
// and returns how the server ended it: "HTTP nnn" for an answer, else the
// transport error's label.
func (p attackPlan) trickle(ctx context.Context, conn net.Conn, head, tail string) string {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, head); err != nil {
		return errLabel(err)
	}
	buf := make([]byte, 64)
	for i := 0; ; i++ {
		b := byte('a')
		if i < len(tail) {
			b = tail[i]
		}
		if _, err := conn.Write([]byte{b}); err != nil {
			return errLabel(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(p.interval))
		n, err := conn.Read(buf)
		if n > 0 {
			return statusLabel(buf[:n])
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return errLabel(err)
		}
	}
}

// idleConn opens one connection, sends one valid notification on it (at
// most cap(opening) at a time), then leaves it idle until the server
// closes it or the attack ends.
func (p attackPlan) idleConn(ctx context.Context, run, seq uint64, opening chan struct{}, st *attackStats) {
	select {
	case opening <- struct{}{}:
	case <-ctx.Done():
		return
	}
	conn, br, err := p.idleRequest(ctx, run, seq, st)
	<-opening
	if err != nil {
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	begin := time.Now()
	_ = conn.SetReadDeadline(time.Time{})
	// Any end of this read (EOF, reset) but our own stop is the server
	// closing an idle connection.
	_, _ = br.ReadByte()
	if ctx.Err() == nil {
		st.idleLife.add(time.Since(begin))
	}
}

// idleRequest dials and sends one notification signed with the real
// secret, and records the answer; a connection is returned only after a 200.
func (p attackPlan) idleRequest(ctx context.Context, run, seq uint64, st *attackStats) (net.Conn, *bufio.Reader, error) {
	conn, err := p.dial(ctx)
	if err != nil {
		st.idle.record(ctx, 0, fmt.Errorf("dial: %w", err))
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var id [idLen]byte
	noticeID(run, seq, &id)
	body := p.corpus.body(seq, &id)
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAgora-Signature-V2: %s\r\nContent-Length: %d\r\n\r\n",
		p.path, p.addr, newSigner(p.secret).sign(body), len(body))
	req.Write(body)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // Agora's wait
	if _, err := conn.Write(req.Bytes()); err != nil {
		conn.Close()
		st.idle.record(ctx, 0, fmt.Errorf("write request: %w", err))
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	code, err := readAnswer(br)
	if err != nil {
		// Sent whole, answer unseen (timeout, or our own stop): the
		// gateway may still publish it once it reads the request.
		conn.Close()
		st.idleUnknown.Add(1)
		st.idle.record(ctx, 0, err)
		return nil, nil, err
	}
	st.idle.add(strconv.Itoa(code))
	if code != http.StatusOK {
		conn.Close()
		return nil, nil, fmt.Errorf("idle request: status %d", code)
	}
	st.idleOK.Add(1)
	return conn, br, nil
}

// readAnswer reads an HTTP/1.1 answer's status and body.
func readAnswer(br *bufio.Reader) (int, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, nil
}

// dial connects to the webhook, over TLS when the plan says so.
func (p attackPlan) dial(ctx context.Context) (net.Conn, error) {
	c, err := dialLoopback(ctx, p.addr)
	if err != nil || p.tls == nil {
		return c, err
	}
	return dialTLS(ctx, c, p.addr, p.tls)
}

// dialLoopback connects to addr, a loopback address.
func dialLoopback(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}
