package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A publish in flight when the stream leader dies waits out the whole
// publish timeout: its request reached the old leader, which will never
// answer, and nothing tells the client. Two things tell the publisher
// sooner that such answers will not come: its own connection dropping,
// and a later publish finding no responder (the stream has no leader).
// Either ends every publish then in flight, which is spooled at once. That
// loses nothing: a message that did reach the stream is dropped as a
// duplicate when the spool forwards it under the same Nats-Msg-Id.

// errLeaderLost is the cause of a publish ended because a later publish
// found no responder: the stream is between leaders.
var errLeaderLost = errors.New("stream leader lost: a later publish found no responder")

// errPublishTimeout is the cause of a publish ended by the publish timeout.
var errPublishTimeout = fmt.Errorf("no acknowledgement within the publish timeout: %w", context.DeadlineExceeded)

// inflightPublish is one publish in flight, linked in start order.
type inflightPublish struct {
	prev, next *inflightPublish
	start      time.Time
	deadline   time.Time // start plus the publish timeout
	stop       stopper
	cause      error // why inflight ended it; nil while it runs on its own
}

// stopper ends one publish's wait. Publishes pass their ack waiter, whose
// stop costs no context or timer per publish; it is called under
// inflight's lock and must not block.
type stopper interface{ stop() }

// stopFunc is a func as a stopper.
type stopFunc func()

func (f stopFunc) stop() { f() }

// inflightPool recycles the list's entries: a publish costs no allocation
// here.
var inflightPool = sync.Pool{New: func() any { return new(inflightPublish) }}

// inflight is the list of publishes in flight, oldest first. One shared
// timer watches its head, so a publish costs a lock, not timers of its own:
// every publish waiting probeAfter is the head or younger than it, and all
// have the same timeout, so the timer fires when the head turns probeAfter
// old or reaches its deadline, and ends every publish past its deadline.
type inflight struct {
	mu         sync.Mutex
	head, tail *inflightPublish
	armed      bool        // timer is scheduled
	timer      *time.Timer // runs check; made on first use
	probe      func()      // called from check when the head is overdue; nil: none
}

// add records a publish started at start, which s ends at deadline at the
// latest; the caller must pass the result to remove when the
// publish is over. Callers read start just before add, so the list is in
// start order to within that moment, which is all a timeout or a probe
// can be late by.
func (f *inflight) add(s stopper, start, deadline time.Time) *inflightPublish {
	e := inflightPool.Get().(*inflightPublish)
	e.start, e.deadline, e.stop = start, deadline, s
	f.mu.Lock()
	e.prev = f.tail
	if f.tail != nil {
		f.tail.next = e
	} else {
		f.head = e
	}
	f.tail = e
	if !f.armed {
		f.armed = true
		d := min(probeAfter, deadline.Sub(start))
		if f.timer == nil {
			f.timer = time.AfterFunc(d, f.check)
		} else {
			f.timer.Reset(d)
		}
	}
	f.mu.Unlock()
	return e
}

// remove unlinks e and returns why end stopped it (nil if it did not).
// e must not be used afterwards.
func (f *inflight) remove(e *inflightPublish) error {
	f.mu.Lock()
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		f.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		f.tail = e.prev
	}
	cause := e.cause
	f.mu.Unlock()
	*e = inflightPublish{}
	inflightPool.Put(e)
	return cause
}

// end ends every publish in flight with cause; publishes that start later
// are not affected.
func (f *inflight) end(cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for e := f.head; e != nil; e = e.next {
		if e.cause == nil {
			e.cause = cause
			e.stop.stop()
		}
	}
}

// check runs on the shared timer: it ends the publishes past their
// deadline, probes when the oldest publish has waited probeAfter, and
// re-arms for the next of these to come, or stops when nothing is in flight.
func (f *inflight) check() {
	now := time.Now()
	f.mu.Lock()
	if f.head == nil {
		f.armed = false
		f.mu.Unlock()
		return
	}
	e := f.head
	for ; e != nil && !e.deadline.After(now); e = e.next {
		if e.cause == nil {
			e.cause = errPublishTimeout
			e.stop.stop()
		}
	}
	next := probeAfter - now.Sub(f.head.start)
	overdue := next <= 0
	if overdue {
		// Still stuck after a probe: look again soon, as each stuck
		// publish once armed a probe of its own.
		next = probeAfter / 4
	}
	if e != nil {
		next = min(next, e.deadline.Sub(now))
	}
	f.timer.Reset(next)
	f.mu.Unlock()
	if overdue && f.probe != nil {
		f.probe()
	}
}

// A closed loop of callers can all be waiting on the dead leader at once,
// so no later publish comes to find no responder. A publish still waiting
// after probeAfter therefore sends one probe: a message on the stream's
// subjects that any leader rejects without storing it (it expects a stream
// name no stream has). No responder means no leader: every publish then in
// flight ends.
const (
	probeAfter   = 250 * time.Millisecond
	probeTimeout = 500 * time.Millisecond
	// probeExpectStream is a stream name no stream can have ('.' is not
	// allowed in stream names), so the leader always rejects the probe.
	probeExpectStream = "ncs-gateway.probe"
)

// probeLeader sends the probe unless one is under way.
func (p *Publisher) probeLeader() {
	if !p.probing.CompareAndSwap(false, true) {
		return
	}
	defer p.probing.Store(false)
	msg := &nats.Msg{
		Subject: p.cfg.SubjectPrefix + ".ncs-gateway-probe",
		Header:  nats.Header{jetstream.ExpectedStreamHeader: []string{probeExpectStream}},
	}
	// Through the publishes' own inbox: a reader's answer to the probe,
	// which it sees, must not pass for the leader's.
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if res, err := p.acks.request(ctx, msg, true); err == nil && res == ackNoResponders {
		p.inflight.end(errLeaderLost)
	}
}
