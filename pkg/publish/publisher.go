package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Publisher publishes notifications to JetStream and spools what JetStream
// does not acknowledge in time. Publish is safe for concurrent use; Run
// forwards the spool and must be running for spooled messages to leave.
type Publisher struct {
	cfg       Config
	log       *zap.Logger
	m         *metrics
	spool     *spool
	nc        *nats.Conn
	js        jetstream.JetStream // stream management
	acks      *replies            // the publishes' own inbox (ack.go)
	serverURL string              // configured servers, credentials removed

	wakeSpool chan struct{} // something was spooled
	wakeConn  chan struct{} // NATS (re)connected
	beat      atomic.Int64  // unix ns of the forwarder loop's last heartbeat (forwarder.go)

	streamReady atomic.Bool // the stream is known to exist
	failing     atomic.Bool // the last direct publish failed (for state-change logs)
	closing     atomic.Bool
	connClosed  chan struct{}
	closeOnce   sync.Once
	closeErr    error
	stream      streamState    // the contract check of the stream (stream.go)
	sm          *streamMetrics // stream and server gauges (status.go)
	inflight    inflight       // ends publishes a dead leader will never answer (inflight.go)
	probing     atomic.Bool    // a leader probe is under way
}

// New opens the spool at cfg.SpoolPath, registers the metrics with reg (nil:
// none), and connects to NATS. It names log "publish" itself. It does not wait for NATS: while NATS is down
// messages are spooled, and Run creates the stream once NATS is reachable.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Publisher, error) {
	log = log.Named("publish")
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("check publish config: %w", err)
	}
	if cfg.URL == "" && cfg.Embedded == nil {
		return nil, errors.New("check publish config: nats.url: set a nats:// URL or use the embedded server")
	}
	sp, err := openSpool(cfg.SpoolPath, cfg.SpoolMaxBytes)
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		cfg:        cfg,
		log:        log,
		spool:      sp,
		wakeSpool:  make(chan struct{}, 1),
		wakeConn:   make(chan struct{}, 1),
		connClosed: make(chan struct{}),
	}
	p.serverURL = redactURLs(cfg.URL)
	if cfg.Embedded != nil {
		p.serverURL = cfg.Embedded.ClientURL()
	}
	p.inflight.probe = p.probeLeader
	p.m = newMetrics(reg, sp)
	p.sm = newStreamMetrics(reg, p)
	nc, err := p.connect(cfg)
	if err != nil {
		_ = sp.close()
		return nil, err
	}
	p.nc = nc
	if p.js, err = jetstream.New(nc); err != nil {
		err = fmt.Errorf("create jetstream context: %w", err)
	} else {
		p.acks, err = newReplies(nc, cfg.Stream, p.m.ignored)
	}
	if err != nil {
		nc.Close()
		_ = sp.close()
		return nil, err
	}
	st := sp.stats()
	log.Info("publisher started",
		zap.String("server_url", p.serverURL),
		zap.String("stream", cfg.Stream),
		zap.String("spool_path", cfg.SpoolPath),
		zap.Int64("spool_depth", st.depth),
		zap.Int64("spool_bytes", st.bytes),
	)
	if nc.IsConnected() {
		// Best effort so the first publishes find the stream; on failure
		// Run keeps trying.
		if err := p.ensureStream(context.Background()); err != nil {
			log.Warn("nats stream not ready", zap.String("stream", cfg.Stream), zap.Error(err))
		}
	}
	return p, nil
}

// Publish delivers m to JetStream and waits for the acknowledgement, bounded
// by the publish timeout and ctx. If JetStream does not acknowledge it, m is
// written to the spool and fsynced (Spooled). If the spool cannot take it
// either, the error wraps ErrUnavailable (and ErrSpoolFull when full).
func (p *Publisher) Publish(ctx context.Context, m Message) (Outcome, error) {
	if p.closing.Load() {
		return 0, fmt.Errorf("publish %s: publisher closed: %w", m.Subject, ErrUnavailable)
	}
	reason, err := reasonHeld, errHeld
	if !p.holding() {
		reason, err = p.publishDirect(ctx, m)
	}
	if err == nil {
		p.m.published.Inc()
		if p.failing.Load() && p.failing.CompareAndSwap(true, false) {
			p.log.Info("nats publish recovered", zap.String("stream", p.cfg.Stream))
		}
		return Published, nil
	}
	p.m.failures[reason].Inc()
	if !p.failing.Swap(true) {
		p.log.Warn("nats publish failed, spooling",
			zap.String("reason", reason), zap.String("subject", m.Subject), zap.Error(err))
	}
	if reason == reasonNoStream {
		p.streamReady.Store(false)
		wake(p.wakeConn)
	}

	if serr := p.spool.put(m, time.Now()); serr != nil {
		if errors.Is(serr, ErrSpoolFull) {
			p.m.rejected[rejectFull].Inc()
		} else {
			p.m.rejected[rejectWriteError].Inc()
		}
		return 0, fmt.Errorf("spool %s after nats %s: %w: %w", m.Subject, reason, ErrUnavailable, serr)
	}
	p.m.spooled.Inc()
	wake(p.wakeSpool)
	return Spooled, nil
}

// errNotConnected is the failure of a publish attempted while disconnected.
var errNotConnected = errors.New("nats not connected")

// errHeld is the failure of a publish not attempted because the stream
// breaks the contract in a way that would lose it.
var errHeld = errors.New("stream breaks the contract, holding notifications in the spool")

// publishDirect publishes m with acknowledgement; on failure it returns the
// metric reason. It holds no lock across the network call.
func (p *Publisher) publishDirect(ctx context.Context, m Message) (string, error) {
	if !p.nc.IsConnected() {
		return reasonDisconnected, errNotConnected
	}
	o := outPool.Get().(*outMsg)
	defer o.release()
	msg := o.fill(m)
	start := time.Now()
	// The publish timeout is kept by inflight's shared timer, which ends the
	// wait through the ack waiter itself: no context or timer per publish.
	// The caller's deadline (the webhook's) still holds. The waiter is
	// registered before the publish, so no answer can come before it.
	c := p.acks.register(msg.Subject, false)
	e := p.inflight.add(c.w, start, start.Add(p.cfg.PublishTimeout)) // see inflight.go
	var res ackResult
	err := p.acks.publish(msg, c)
	if err == nil {
		// No retry on no responders: the stream is between leaders, and
		// the spool is the faster answer.
		res, err = p.acks.await(ctx, c)
	}
	p.m.duration.Observe(time.Since(start).Seconds())
	cause := p.inflight.remove(e)
	p.acks.release(c.w) // only now: inflight may stop c.w until removed
	switch {
	case err == nil && res.stored():
		return "", nil
	case err == nil && res == ackNoResponders:
		err = jetstream.ErrNoStreamResponse
	case err == nil:
		err = errStopped // ackAborted: cause says why
	}
	if cause != nil {
		return failureReason(cause), fmt.Errorf("publish to jetstream: %w", cause)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		p.inflight.end(errLeaderLost)
	}
	return failureReason(err), fmt.Errorf("publish to jetstream: %w", err)
}

// errStopped is the failure of a publish inflight ended without a cause,
// which it never does; here so that such a publish still fails.
var errStopped = errors.New("publish ended in flight")

// natsMsg builds the NATS message of m with its Nats-Msg-Id, without
// modifying m's header map.
func natsMsg(m Message) *nats.Msg { return new(outMsg).fill(m) }

// outMsg is the NATS message of a Message, reused across publishes through
// outPool: nats.go copies the message into its write buffer in PublishMsg
// and keeps no reference to it.
type outMsg struct {
	msg nats.Msg
	hdr nats.Header // a copy of the Message's header plus Nats-Msg-Id, when it needs one
	id  [1]string   // the Nats-Msg-Id value's backing array
}

// outPool recycles the messages of direct publishes.
var outPool = sync.Pool{New: func() any { return new(outMsg) }}

// fill makes o the message of m and returns it. A header that already
// carries Nats-Msg-Id = m.ID (as the notifier's does) is sent as it is;
// any other is copied with Nats-Msg-Id set, so the caller's map is never
// modified.
func (o *outMsg) fill(m Message) *nats.Msg {
	o.msg = nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header}
	if m.ID == "" || hasID(m.Header, m.ID) {
		return &o.msg
	}
	if o.hdr == nil {
		o.hdr = make(nats.Header, len(m.Header)+1)
	}
	for k, v := range m.Header {
		o.hdr[k] = v
	}
	o.id[0] = m.ID
	o.hdr[jetstream.MsgIDHeader] = o.id[:]
	o.msg.Header = o.hdr
	return &o.msg
}

// hasID reports whether h's only Nats-Msg-Id is id.
func hasID(h nats.Header, id string) bool {
	v := h[jetstream.MsgIDHeader]
	return len(v) == 1 && v[0] == id
}

// release drops o's references and returns it to outPool.
func (o *outMsg) release() {
	o.msg = nats.Msg{}
	clear(o.hdr)
	o.id[0] = ""
	outPool.Put(o)
}

// failureReason maps a publish error to its metric label.
func failureReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return reasonTimeout
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, errLeaderLost):
		return reasonNoStream
	case errors.Is(err, errNotConnected), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrDisconnected):
		return reasonDisconnected
	default:
		return reasonError
	}
}

// Ready reports whether a Publish now would succeed: NATS is connected or
// the spool can take messages.
func (p *Publisher) Ready() bool {
	if p.closing.Load() {
		return false
	}
	return p.nc.IsConnected() || p.spool.writable()
}

// Conn is the publisher's NATS connection (in-process and privileged on the
// embedded server), for components that read and write JetStream beside the
// webhook's publishes, such as the session ledger. It stays open until Close.
func (p *Publisher) Conn() *nats.Conn { return p.nc }

// Close stops accepting messages, drains the NATS connection (bounded by
// ctx) and closes the spool. Call it after Run has returned. Messages still
// spooled stay on disk for the next start.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		if err := p.nc.Drain(); err != nil {
			p.nc.Close()
		}
		select {
		case <-p.connClosed:
		case <-ctx.Done():
			p.nc.Close()
		}
		p.closeErr = p.spool.close()
		st := p.spool.stats()
		p.log.Info("publisher closed", zap.Int64("spool_depth", st.depth))
	})
	return p.closeErr
}

// wake signals c without blocking; one pending signal is enough.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// wakeOnConnect tells the forwarder that NATS is reachable again.
func (p *Publisher) wakeOnConnect() { wake(p.wakeConn) }
