package publish

import (
	"context"
	"errors"
	"sync/atomic"
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

// inflightEpoch is a context that ends, with a cause, every publish that
// started before the next leader loss or disconnect.
type inflightEpoch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// inflight holds the current epoch.
type inflight struct{ cur atomic.Pointer[inflightEpoch] }

func newInflightEpoch() *inflightEpoch {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &inflightEpoch{ctx: ctx, cancel: cancel}
}

// watch makes cancel run when the current epoch ends; the returned stop
// undoes that once the publish is over.
func (f *inflight) watch(cancel context.CancelCauseFunc) (stop func() bool) {
	ep := f.cur.Load()
	if ep == nil {
		f.cur.CompareAndSwap(nil, newInflightEpoch())
		ep = f.cur.Load()
	}
	return context.AfterFunc(ep.ctx, func() { cancel(context.Cause(ep.ctx)) })
}

// end ends every publish in flight with cause and starts a new epoch.
func (f *inflight) end(cause error) {
	if old := f.cur.Swap(newInflightEpoch()); old != nil {
		old.cancel(cause)
	}
}

// A closed loop of callers can all be waiting on the dead leader at once,
// so no later publish comes to find no responder. A publish still waiting
// after probeAfter therefore sends one probe: a message on the stream's
// subjects that any leader rejects without storing it (it expects a stream
// name no stream has). No responder means no leader: the epoch ends.
const (
	probeAfter   = 250 * time.Millisecond
	probeTimeout = 500 * time.Millisecond
	// probeExpectStream is a stream name no stream can have ('.' is not
	// allowed in stream names), so the leader always rejects the probe.
	probeExpectStream = "ncs-gateway.probe"
)

// probeLater arms the probe for a publish that has just started; the
// returned stop disarms it.
func (p *Publisher) probeLater() (stop func() bool) {
	return time.AfterFunc(probeAfter, p.probeLeader).Stop
}

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
	_, err := p.nc.RequestMsg(msg, probeTimeout)
	if errors.Is(err, nats.ErrNoResponders) {
		p.inflight.end(errLeaderLost)
	}
}
