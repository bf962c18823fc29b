package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// A reader subscribed to the notifications sees the reply subject of every
// publish, and may send any request it is allowed with that reply subject:
// the server checks the permission on the subject, never on the reply. So
// the first answer on a publish's inbox is not necessarily JetStream's
// acknowledgement. A publish here ends only on what a reader cannot make
// the server send there: a positive acknowledgement naming the gateway's
// stream with a sequence, or the no-responders status, which the server
// sends only to the publisher's own subscription. Anything else (API
// answers, error JSON included, stored messages, other statuses) is counted
// and ignored, and the publish keeps waiting, until publish_timeout at most.
//
// The cost: when JetStream itself answers a publish with an error (a limit
// of the stream, say), the publish now waits out publish_timeout and is
// spooled, instead of being spooled at once; the forwarder retries it.

// Kinds of answers ignored on the gateway's publish inbox (label "kind").
const (
	ignoredError   = "error"   // JetStream API error JSON
	ignoredMessage = "message" // a stored message: headers, or a reply subject ($JS.ACK)
	ignoredStatus  = "status"  // a status other than no responders (404 of a direct get, 408 of a pull)
	ignoredOther   = "other"   // anything else: API answers, acknowledgements of another stream
)

// ignoredKinds lists the kinds, each counted from zero at start.
var ignoredKinds = []string{ignoredError, ignoredMessage, ignoredStatus, ignoredOther}

// ackResult is how an answer ends a publish.
type ackResult uint8

const (
	ackStored       ackResult = iota + 1 // a positive acknowledgement for the gateway's stream
	ackDuplicate                         // the same, for a Nats-Msg-Id the stream already held
	ackNoResponders                      // the server's 503: no stream takes the subject
	ackRejected                          // the stream's leader rejected a leader probe
	ackAborted                           // inflight ended the publish (its cause says why)
)

// stored reports whether the stream holds the message.
func (r ackResult) stored() bool { return r == ackStored || r == ackDuplicate }

// Headers of the server's no-responders status, as nats.go parses it.
const (
	statusHeader       = "Status"
	noRespondersStatus = "503"
	natsSubjectHeader  = "Nats-Subject" // the subject the request went to
)

// probeRejectCode is the error JetStream gives the leader probe (stream
// name expected does not match). Only a publish to the stream's subjects,
// which readers may not make, gets it.
const probeRejectCode = 10060

// ackWaiter is one publish waiting for its answer. Whoever deletes it from
// replies.waiting, under replies.mu, sends its one result: the handler, or
// stop.
type ackWaiter struct {
	ch      chan ackResult // buffered: the one send never blocks
	subject string         // what the publish went to, checked against a 503's Nats-Subject
	probe   bool
	r       *replies // the mux it waits in, for stop
	id      uint64   // its token in r.waiting
}

// waiterPool recycles waiters and their channels: a publish costs no
// allocation here.
var waiterPool = sync.Pool{New: func() any { return &ackWaiter{ch: make(chan ackResult, 1)} }}

// stop ends the wait with ackAborted unless a result was already taken for
// it; it is how inflight ends a publish (the waiter is its stopper), with
// no context of its own per publish.
func (w *ackWaiter) stop() {
	r := w.r
	r.mu.Lock()
	if r.waiting[w.id] != w {
		r.mu.Unlock()
		return
	}
	delete(r.waiting, w.id)
	r.mu.Unlock()
	w.ch <- ackAborted
}

// replies is the gateway's own request/reply mux for JetStream publishes:
// one wildcard subscription on an inbox of its own, tokens numbered in
// order, and answers judged by what they are rather than by who came first.
type replies struct {
	nc      *nats.Conn
	stream  string
	prefix  string // "<inbox>.": reply subjects are prefix + base-36 token
	ackHead []byte // `{"stream":"<stream>","seq":`, how nats-server starts a positive acknowledgement
	ignored map[string]prometheus.Counter
	sub     *nats.Subscription

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]*ackWaiter
}

// newReplies subscribes the mux on nc, for acknowledgements of stream;
// ignored answers are counted in ignored (keyed by kind).
func newReplies(nc *nats.Conn, stream string, ignored map[string]prometheus.Counter) (*replies, error) {
	r := &replies{
		nc:      nc,
		stream:  stream,
		prefix:  nc.NewInbox() + ".",
		ackHead: []byte(`{"stream":` + strconv.Quote(stream) + `,"seq":`),
		ignored: ignored,
		waiting: make(map[uint64]*ackWaiter),
	}
	sub, err := nc.Subscribe(r.prefix+"*", r.handle)
	if err != nil {
		return nil, fmt.Errorf("subscribe to the publish inbox: %w", err)
	}
	r.sub = sub
	return r, nil
}

// request publishes msg with a reply subject of the mux and waits for a
// result: a positive acknowledgement, no responders, or (probe only) the
// leader's rejection. Everything else is ignored until ctx is done.
func (r *replies) request(ctx context.Context, msg *nats.Msg, probe bool) (ackResult, error) {
	c, err := r.send(msg, probe)
	if err != nil {
		return 0, err
	}
	return r.wait(ctx, c)
}

// ackCall is a publish sent and not yet waited for.
type ackCall struct {
	id uint64
	w  *ackWaiter
}

// send publishes msg with a reply subject of the mux; the caller must
// pass the result to wait.
func (r *replies) send(msg *nats.Msg, probe bool) (ackCall, error) {
	c := r.register(msg.Subject, probe)
	if err := r.publish(msg, c); err != nil {
		r.release(c.w)
		return ackCall{}, err
	}
	return c, nil
}

// register makes a waiter for a publish to subject, before it is sent, so
// that no answer can come before it; the caller passes the result to
// publish, then to await (or forget), then to release.
func (r *replies) register(subject string, probe bool) ackCall {
	w := waiterPool.Get().(*ackWaiter)
	w.subject, w.probe, w.r = subject, probe, r
	r.mu.Lock()
	r.next++
	w.id = r.next
	r.waiting[w.id] = w
	r.mu.Unlock()
	return ackCall{id: w.id, w: w}
}

// publish sends msg with c's reply subject; on failure c is forgotten (the
// caller still releases it).
func (r *replies) publish(msg *nats.Msg, c ackCall) error {
	var buf [16]byte
	msg.Reply = r.prefix + string(strconv.AppendUint(buf[:0], c.id, 36))
	err := r.nc.PublishMsg(msg)
	if err != nil {
		r.forget(c)
	}
	return err
}

// wait waits for the result of c until ctx is done, and releases c.
func (r *replies) wait(ctx context.Context, c ackCall) (ackResult, error) {
	res, err := r.await(ctx, c)
	r.release(c.w)
	return res, err
}

// await waits for the result of c until ctx is done; c stays registered to
// the caller, who releases it.
func (r *replies) await(ctx context.Context, c ackCall) (ackResult, error) {
	select {
	case res := <-c.w.ch:
		return res, nil
	case <-ctx.Done():
		if res := r.forget(c); res != 0 {
			return res, nil // it came just in time
		}
		return 0, ctx.Err()
	}
}

// forget stops waiting for c; it returns the result the handler (or stop)
// had already taken c's waiter to deliver, or 0. It does not release c.
func (r *replies) forget(c ackCall) ackResult {
	w := c.w
	r.mu.Lock()
	_, waiting := r.waiting[c.id]
	delete(r.waiting, c.id)
	r.mu.Unlock()
	if waiting {
		return 0
	}
	return <-w.ch // the handler or stop holds w and sends without blocking
}

// release returns w to the pool; nothing may use it afterwards (inflight
// included: remove it from inflight first).
func (r *replies) release(w *ackWaiter) {
	w.subject, w.probe, w.r, w.id = "", false, nil, 0
	waiterPool.Put(w)
}

// handle judges one answer on the inbox and ends its publish if the answer
// may end it; it runs on the subscription's one goroutine.
func (r *replies) handle(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[min(len(r.prefix), len(m.Subject)):], 36, 64)
	if err != nil {
		r.ignored[ignoredOther].Inc()
		return
	}
	res, kind := r.classify(m)
	if res == 0 {
		r.ignored[kind].Inc()
		return
	}
	r.mu.Lock()
	w := r.waiting[id]
	switch {
	case w == nil:
		// No one waits: JetStream's own answer after the publish timeout
		// or a disconnect ended the publish. Not a reader's doing.
		r.mu.Unlock()
		return
	case res == ackRejected && !w.probe:
		r.mu.Unlock()
		r.ignored[ignoredError].Inc()
		return
	case res == ackNoResponders && m.Header.Get(natsSubjectHeader) != "" && m.Header.Get(natsSubjectHeader) != w.subject:
		r.mu.Unlock()
		r.ignored[ignoredStatus].Inc()
		return
	}
	delete(r.waiting, id)
	r.mu.Unlock()
	w.ch <- res
}

// classify says whether m can end a publish (a result), or which kind of
// ignored answer it is.
func (r *replies) classify(m *nats.Msg) (ackResult, string) {
	if m.Reply != "" {
		// A stored message delivered by a consumer ($JS.ACK reply).
		return 0, ignoredMessage
	}
	if len(m.Header) > 0 {
		st := m.Header.Get(statusHeader)
		switch {
		case st == noRespondersStatus && len(m.Data) == 0 &&
			m.Header.Get(jetstream.StreamHeader) == "" && m.Header.Get(jetstream.SequenceHeader) == "":
			return ackNoResponders, ""
		case st != "":
			return 0, ignoredStatus
		default:
			// A direct get's answer (Nats-Stream, Nats-Sequence) or any
			// stored message: acknowledgements carry no headers.
			return 0, ignoredMessage
		}
	}
	return r.classifyData(m.Data)
}

// classifyData judges a JSON answer. A positive acknowledgement for the
// gateway's stream is recognised without a JSON decode, which is most of
// the client's CPU per publish past the write itself.
func (r *replies) classifyData(data []byte) (ackResult, string) {
	if rest, ok := bytes.CutPrefix(data, r.ackHead); ok {
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		// Only the plain {"stream":"<stream>","seq":N}: anything more
		// (duplicate, domain, an error) is decoded.
		if n > 0 && rest[0] != '0' && n == len(rest)-1 && rest[n] == '}' {
			return ackStored, ""
		}
	}
	var a struct {
		Error     *jetstream.APIError `json:"error"`
		Type      string              `json:"type"` // set on API answers, never on an acknowledgement
		Stream    string              `json:"stream"`
		Seq       uint64              `json:"seq"`
		Duplicate bool                `json:"duplicate"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return 0, ignoredOther
	}
	switch {
	case a.Error != nil && a.Error.ErrorCode == probeRejectCode:
		return ackRejected, ""
	case a.Error != nil:
		return 0, ignoredError
	case a.Type == "" && a.Stream == r.stream && a.Seq > 0 && a.Duplicate:
		return ackDuplicate, ""
	case a.Type == "" && a.Stream == r.stream && a.Seq > 0:
		return ackStored, ""
	default:
		return 0, ignoredOther
	}
}

// StoreDirect publishes m to the stream and waits for its acknowledgement
// as Publish does, so that answers a reader provokes on the reply subject
// are ignored, but without the spool: for messages whose writer retries on
// its own, such as the session ledger's derived notifications. It reports
// whether the stream already held m's Nats-Msg-Id. The wait is bounded by
// ctx and the publish timeout.
func (p *Publisher) StoreDirect(ctx context.Context, m Message) (duplicate bool, err error) {
	if p.closing.Load() {
		return false, fmt.Errorf("store %s: publisher closed: %w", m.Subject, ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	res, err := p.acks.request(ctx, natsMsg(m), false)
	switch {
	case err != nil:
		return false, fmt.Errorf("store %s: %w", m.Subject, err)
	case res == ackNoResponders:
		return false, fmt.Errorf("store %s: %w", m.Subject, jetstream.ErrNoStreamResponse)
	default:
		return res == ackDuplicate, nil
	}
}
