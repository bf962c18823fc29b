package publish

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Forwarder tuning.
const (
	forwardBatchMsgs  = 256     // messages published per batch before waiting for acks
	forwardBatchBytes = 8 << 20 // encoded bytes per batch
	retryMin          = 250 * time.Millisecond
	retryMax          = 30 * time.Second
	// idleRecheck re-examines the spool and the stream even without a
	// signal; it costs nothing and guards against any missed wake-up.
	idleRecheck = 30 * time.Second
	// spoolProbeInterval is how often a spool whose last write failed is
	// tried again while idle.
	spoolProbeInterval = 2 * time.Second
	// heartbeatEvery bounds every wait of the loop, so that it marks its
	// heartbeat (LastBeat) at least this often, even when idle or backing off.
	heartbeatEvery = time.Second
)

// Run forwards spooled messages to JetStream, oldest first, until ctx is
// done, and creates the stream when NATS becomes reachable. It is woken when
// something is spooled and when NATS reconnects, backs off after failures,
// and never spins. It returns nil when ctx is done.
func (p *Publisher) Run(ctx context.Context) error {
	log := p.log.Named("forwarder")
	timer := time.NewTimer(idleRecheck)
	defer timer.Stop()
	failures := 0
	logged := false             // a failure streak was logged
	var drainingSince time.Time // zero unless the spool is being drained
	for {
		p.beat.Store(time.Now().UnixNano())
		if ctx.Err() != nil {
			return nil
		}
		var err error
		connected := p.nc.IsConnected()
		if connected && (!p.streamReady.Load() || p.streamCheckDue()) {
			err = p.ensureStream(ctx)
		}
		// While the stream breaks the contract the spool is held too.
		idle := !connected || p.spool.stats().depth == 0 || p.holding()
		if !idle {
			// Forward even if the stream check failed (it may lack only
			// the permission to look the stream up): acks tell the truth.
			err = p.forwardBatch(ctx, log)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			if !logged {
				log.Warn("forwarder failing, retrying with backoff", zap.Error(err))
				logged = true
			}
			// Back off; only a reconnect (not new spooled data) cuts it short.
			if !p.sleep(ctx, timer, backoff(failures), p.wakeConn, nil) {
				return nil
			}
		case idle:
			if logged && connected {
				log.Info("forwarder recovered")
				logged = false
			}
			if !drainingSince.IsZero() && connected {
				log.Info("spool drained", zap.Duration("took", time.Since(drainingSince)))
				drainingSince = time.Time{}
			}
			failures = 0
			// A stream that breaks the contract and a spool whose last
			// write failed are both looked at again sooner.
			if !p.sleep(ctx, timer, min(p.recheckWait(), p.probeSpool(log)), p.wakeConn, p.wakeSpool) {
				return nil
			}
		default:
			// A batch went through: go on with the next at once.
			if drainingSince.IsZero() {
				drainingSince = time.Now()
				st := p.spool.stats()
				log.Info("spool draining", zap.Int64("spool_depth", st.depth), zap.Int64("spool_bytes", st.bytes))
			}
			if logged {
				log.Info("forwarder recovered")
				logged = false
			}
			failures = 0
		}
	}
}

// LastBeat returns when the forwarder loop (Run) last showed it runs; zero
// before Run starts. It marks at every pass and every few seconds while it
// waits, NATS down or not: the heartbeat says the loop runs, not that NATS
// is up.
func (p *Publisher) LastBeat() time.Time {
	if n := p.beat.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// probeSpool tries a write on a spool whose last write failed, so that
// readiness comes back when the disk does, without waiting for traffic
// that a load balancer no longer sends. It returns how long to stay idle.
func (p *Publisher) probeSpool(log *zap.Logger) time.Duration {
	if !p.spool.isBroken() {
		return idleRecheck
	}
	if err := p.spool.probe(); err != nil {
		log.Debug("spool still not writable", zap.Error(err))
		return spoolProbeInterval
	}
	log.Info("spool writable again")
	return idleRecheck
}

// sleep waits for d, a signal on a or b (nil blocks), or ctx, marking the
// heartbeat every heartbeatEvery meanwhile; it reports false when ctx is
// done.
func (p *Publisher) sleep(ctx context.Context, t *time.Timer, d time.Duration, a, b chan struct{}) bool {
	t.Reset(d)
	defer t.Stop()
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-beat.C:
			p.beat.Store(time.Now().UnixNano())
			continue
		case <-t.C:
		case <-a:
		case <-b:
		}
		return true
	}
}

// backoff is the wait after the n-th consecutive failure, with jitter.
func backoff(n int) time.Duration {
	d := min(retryMin<<min(n-1, 10), retryMax)
	return d/2 + rand.N(d/2+1)
}

// forwardBatch publishes one batch of spooled messages asynchronously, waits
// for their acknowledgements (bounded by the publish timeout) and deletes the
// acknowledged ones in one transaction. Unacknowledged ones stay spooled and
// are published again later with the same Nats-Msg-Id, so JetStream drops
// any that did arrive.
func (p *Publisher) forwardBatch(ctx context.Context, log *zap.Logger) error {
	msgs, moved, err := p.spool.peek(forwardBatchMsgs, forwardBatchBytes)
	if moved > 0 {
		log.Error("spool records undecodable, moved to the dead bucket",
			zap.Int("record_count", moved), zap.String("spool_path", p.cfg.SpoolPath))
	}
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	// Each message is published with a reply subject of the publishes'
	// own inbox and judged as a direct publish is (ack.go), all within one
	// publish timeout: a reader's answers end none of them.
	wctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	var (
		calls  = make([]ackCall, 0, len(msgs))
		sent   = make([]int, 0, len(msgs)) // index in msgs of each call
		dead   [][]byte
		pubErr error
	)
	for i, sm := range msgs {
		c, err := p.acks.send(natsMsg(sm.rec.Msg), false)
		if errors.Is(err, nats.ErrMaxPayload) {
			// The server will never take it: set it aside rather than
			// retry it forever.
			log.Error("spooled message over the nats max payload, moved to the dead bucket",
				zap.String("subject", sm.rec.Msg.Subject), zap.String("msg_id", sm.rec.Msg.ID),
				zap.Int("data_bytes", len(sm.rec.Msg.Data)))
			dead = append(dead, binary.BigEndian.AppendUint64(nil, sm.key))
			continue
		}
		if err != nil {
			pubErr = fmt.Errorf("publish spooled message: %w", err)
			break
		}
		calls = append(calls, c)
		sent = append(sent, i)
	}
	acked := make([]uint64, 0, len(calls))
	var ackErr error
	for i, c := range calls {
		res, err := p.acks.wait(wctx, c)
		switch {
		case err == nil && res.stored():
			acked = append(acked, msgs[sent[i]].key)
		case err == nil:
			ackErr = fmt.Errorf("acknowledge spooled message: %w", jetstream.ErrNoStreamResponse)
		case ctx.Err() != nil:
			// Unacknowledged messages stay spooled for the next start.
		default:
			ackErr = fmt.Errorf("acknowledge spooled message: %w", errPublishTimeout)
		}
	}
	if err := p.spool.remove(acked); err != nil {
		return err
	}
	p.m.forwarded.Add(float64(len(acked)))
	if len(dead) > 0 {
		if err := p.spool.quarantine(dead); err != nil {
			return err
		}
	}
	failed := len(calls) - len(acked)
	if pubErr != nil {
		failed++
	}
	if ctx.Err() == nil && failed > 0 {
		p.m.forwardFailures.Add(float64(failed))
	}
	if ackErr == nil {
		ackErr = pubErr
	}
	if ackErr != nil {
		if failureReason(ackErr) == reasonNoStream {
			p.streamReady.Store(false)
		}
		return fmt.Errorf("forward %d of %d spooled messages: %w", failed, len(msgs), ackErr)
	}
	return nil
}
