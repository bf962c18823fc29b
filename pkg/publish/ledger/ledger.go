package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Timings of the ledger's loops.
const (
	// A batch is at most fetchMessages and fetchBytes: a backlog coalesces
	// the events of a session into one write, and memory stays bounded. A
	// count is always given: a fetch by bytes alone makes the client
	// allocate a channel of a million messages (16 MB) per fetch, at
	// least once a second, which drove the daemon's heap and RSS up.
	fetchMessages = 4096
	fetchBytes    = 2 << 20
	fetchWait     = time.Second
	tickEvery     = time.Second
	callTimeout   = 5 * time.Second
	backoffMin    = 250 * time.Millisecond
	backoffMax    = 5 * time.Second
	dueBatch      = 512 // time facts raised per tick at most
	workers       = 4   // sessions of one batch written in parallel
	// Pacing under load (see batchLoad): the ledger trails the stream by
	// paceTrail, rests paceRatio times a batch's time (at most paceMax)
	// after it, and stops pacing past paceMaxLag or paceMaxPending.
	paceRatio      = 3
	paceMinBatch   = 256 // a batch this big is load even with nothing behind it
	paceTrail      = 5 * time.Second
	paceMaxLag     = 10 * time.Second
	paceMaxPending = 32768
	paceMax        = 2 * time.Second
	ackWait        = 30 * time.Second
	maxAckPending  = 8192
	markerTTL      = time.Hour // how long the marker of an expired record stays
)

// Ledger keeps one record per Cloud Recording session in a KV bucket, fed
// by a durable consumer of the notification stream, and publishes the
// derived session.completed and session.flagged notifications.
type Ledger struct {
	cfg Config
	nc  *nats.Conn
	log *zap.Logger
	m   *metrics
	ix  *index
	smp sampler

	beat     atomic.Int64  // unix nanos of the fetch loop's last pass
	ackFloor atomic.Uint64 // the consumer's ack floor as last seen: resume point
	recreate atomic.Bool   // the consumer vanished: make it again
	loaded   atomic.Bool   // the index holds the whole bucket
	ready    atomic.Bool   // bucket and consumer exist

	mu       sync.Mutex
	lagMsgs  uint64
	lagSecs  float64
	caughtUp bool
	lastErr  string
	pubOK    map[string]uint64
	pubFlag  map[string]uint64
	conflict uint64
}

// New checks cfg and prepares a ledger reading through nc, the publisher's
// connection. Its metrics are registered with reg (nil: not registered).
func New(cfg Config, nc *nats.Conn, log *zap.Logger, reg prometheus.Registerer) (*Ledger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("check ledger config: %w", err)
	}
	if cfg.Enabled && nc == nil {
		return nil, errors.New("create ledger: no nats connection")
	}
	l := &Ledger{cfg: cfg, nc: nc, log: log.Named("ledger"), m: newMetrics(reg),
		ix: newIndex(cfg.UploadGrace, cfg.StallAfter), pubOK: map[string]uint64{}, pubFlag: map[string]uint64{}}
	if cfg.Enabled {
		l.m.enabled.Set(1)
	}
	l.markBeat()
	return l, nil
}

// Run keeps the ledger going until ctx is done: NATS outages, a missing
// stream or a deleted consumer only delay it. It returns nil at the end.
func (l *Ledger) Run(ctx context.Context) error {
	if !l.cfg.Enabled {
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			l.markBeat()
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
	nc := l.nc
	if own, err := siblingConn(l.nc); err != nil {
		l.log.Warn("ledger could not open its own connection: sharing the publisher's", zap.Error(err))
	} else {
		defer own.Close()
		nc = own
	}
	wait := backoffMin
	for {
		start := time.Now()
		err := l.runOnce(ctx, nc)
		if time.Since(start) > 2*backoffMax {
			wait = backoffMin // it ran a while: not a setup failing again and again
		}
		if ctx.Err() != nil {
			return nil
		}
		l.setErr(err)
		l.log.Warn("ledger run ended, setting up again", zap.Error(err), zap.Duration("retry_in", wait))
		if !l.sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, backoffMax)
	}
}

// siblingConn opens a connection of the ledger's own with nc's options
// (same server, in-process or not, same identity, TLS and reconnection)
// but none of its callbacks, which belong to nc's owner. On a shared
// connection each fetch (up to fetchBytes at once) and the batch's acks
// queue in one socket and one server read loop with the webhook's
// publishes and their acks, and hold up the webhook's answers.
func siblingConn(nc *nats.Conn) (*nats.Conn, error) {
	opts := nc.Opts
	opts.Name = strings.TrimSpace(opts.Name + " ledger")
	opts.ClosedCB, opts.DisconnectedCB, opts.DisconnectedErrCB, opts.ConnectedCB = nil, nil, nil, nil
	opts.ReconnectedCB, opts.ReconnectErrCB, opts.DiscoveredServersCB = nil, nil, nil
	opts.AsyncErrorCB, opts.LameDuckModeHandler = nil, nil
	opts.AllowReconnect, opts.MaxReconnect = true, -1
	c, err := opts.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect the ledger's own nats connection: %w", err)
	}
	return c, nil
}

// runOnce sets up the bucket and the consumer, then runs the fetch, watch
// and tick loops until ctx is done. Only a setup failure returns early.
func (l *Ledger) runOnce(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("create jetstream context: %w", err)
	}
	stream, err := l.waitStream(ctx, js)
	if err != nil {
		return err
	}
	kv, err := l.ensureBucket(ctx, js, stream.CachedInfo().Config.MaxAge)
	if err != nil {
		return err
	}
	cons, err := l.ensureConsumer(ctx, js)
	if err != nil {
		return err
	}
	l.ready.Store(true)
	defer l.ready.Store(false)
	rctx, restart := context.WithCancelCause(ctx)
	defer restart(nil)
	r := &runner{l: l, js: js, kv: kv, stream: stream, restart: restart}
	r.cons.Store(&cons)
	g, gctx := errgroup.WithContext(rctx)
	g.Go(func() error { r.fetchLoop(gctx); return nil })
	g.Go(func() error { r.watchLoop(gctx); return nil })
	g.Go(func() error { r.tickLoop(gctx); return nil })
	_ = g.Wait()
	return context.Cause(rctx) // errBucketGone, or context.Canceled when ctx ended
}

// waitStream waits until the publisher has created the stream.
func (l *Ledger) waitStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	wait := backoffMin
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		s, err := js.Stream(cctx, l.cfg.Stream)
		cancel()
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if l.smp.allow("wait_stream") {
			l.log.Info("ledger waiting for the stream", zap.String("stream", l.cfg.Stream), zap.Error(err))
		}
		if !l.sleep(ctx, wait) {
			return nil, ctx.Err()
		}
		wait = min(2*wait, backoffMax)
	}
}

// bucketMaxAge is how long a record lives after its last write. It must
// outlive every message of its session the stream still holds, so that a
// replay from the stream's start (a recreated consumer) never finds a
// record gone and announces its session again; and it should let
// consumers read a month of sessions. A stream that keeps everything gets
// a bucket that keeps everything.
func bucketMaxAge(streamMaxAge time.Duration, cfg Config) time.Duration {
	if streamMaxAge <= 0 {
		return 0
	}
	return max(30*24*time.Hour, streamMaxAge+24*time.Hour, cfg.StallAfter+cfg.UploadGrace+24*time.Hour)
}

func (l *Ledger) ensureBucket(ctx context.Context, js jetstream.JetStream, streamMaxAge time.Duration) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cfg := jetstream.KeyValueConfig{
		Bucket:      l.cfg.Bucket,
		Description: "Agora Cloud Recording sessions kept by ncs-gateway's ledger, one record per sid",
		History:     1,
		TTL:         bucketMaxAge(streamMaxAge, l.cfg),
		Replicas:    l.cfg.Replicas,
		Storage:     jetstream.FileStorage,
	}
	if cfg.TTL > 0 {
		// A record that expires leaves a marker, so every watcher (this
		// index, `nats kv watch`) hears of it.
		cfg.LimitMarkerTTL = markerTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		// A server before 2.11: records still expire, silently; the index
		// then counts them until the next start.
		cfg.LimitMarkerTTL = 0
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if err != nil {
		l.m.errors.WithLabelValues(opStore).Inc()
		return nil, fmt.Errorf("create bucket %s: %w", l.cfg.Bucket, err)
	}
	return kv, nil
}

// Status is the ledger's state for `-status`.
type Status struct {
	Enabled     bool           `json:"enabled"`
	Ready       bool           `json:"ready"`        // bucket and consumer set up
	IndexLoaded bool           `json:"index_loaded"` // counts cover the whole bucket
	Bucket      string         `json:"bucket"`
	Consumer    string         `json:"consumer"`
	LagMessages uint64         `json:"lag_messages"`
	LagSeconds  float64        `json:"lag_seconds"`
	CaughtUp    bool           `json:"caught_up"`
	Sessions    map[string]int `json:"sessions"`  // by state
	Completed   int            `json:"completed"` // sessions whose outcome is final
	Flagged     map[string]int `json:"flagged"`   // sessions carrying each flag
	// Published counts the derived notifications this gateway stored.
	PublishedCompleted map[string]uint64 `json:"published_completed"`
	PublishedFlagged   map[string]uint64 `json:"published_flagged"`
	Conflicts          uint64            `json:"conflicts"`
	LastError          string            `json:"last_error,omitempty"`
}

// Status returns the ledger's lag and counts.
func (l *Ledger) Status() Status {
	rec, ex, done, flagged := l.ix.counts()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Status{
		Enabled: l.cfg.Enabled, Ready: l.ready.Load(), IndexLoaded: l.loaded.Load(),
		Bucket: l.cfg.Bucket, Consumer: ConsumerName,
		LagMessages: l.lagMsgs, LagSeconds: l.lagSecs, CaughtUp: l.caughtUp,
		Sessions:  map[string]int{StateRecording: rec, StateExited: ex},
		Completed: done, Flagged: flagged,
		PublishedCompleted: map[string]uint64{}, PublishedFlagged: map[string]uint64{},
		Conflicts: l.conflict, LastError: l.lastErr,
	}
	for k, v := range l.pubOK {
		s.PublishedCompleted[k] = v
	}
	for k, v := range l.pubFlag {
		s.PublishedFlagged[k] = v
	}
	return s
}

// Sessions lists the open sessions and the flagged ones, longest silent first.
func (l *Ledger) Sessions() []Summary { return l.ix.summaries() }

// LastBeat is when the ledger's fetch loop last went round; it goes round
// at least every few seconds even when no notification comes.
func (l *Ledger) LastBeat() time.Time { return time.Unix(0, l.beat.Load()) }

func (l *Ledger) markBeat() { l.beat.Store(time.Now().UnixNano()) }

func (l *Ledger) setErr(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	l.lastErr = err.Error()
	l.mu.Unlock()
}

// sleep waits d, marking the heartbeat; false when ctx ended first.
func (l *Ledger) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		l.markBeat()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-time.After(time.Second):
		}
	}
}

// sampler lets one log line of a kind through every sampleEvery, so bad
// input or an outage cannot flood the log; counters count every case.
type sampler struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const sampleEvery = 10 * time.Second

func (s *sampler) allow(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	now := time.Now()
	if t, ok := s.last[kind]; ok && now.Sub(t) < sampleEvery {
		return false
	}
	s.last[kind] = now
	return true
}
