package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
)

// runner is one set-up run of the ledger: its bucket, stream and consumer.
type runner struct {
	l      *Ledger
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	cons   atomic.Pointer[jetstream.Consumer]
	// restart ends this run so that Run sets everything up again: the
	// bucket vanished (deleted by hand) and must be created again.
	restart context.CancelCauseFunc
}

// errBucketGone ends a run whose bucket no longer answers.
var errBucketGone = errors.New("session bucket gone: creating it again")

// bucketGone reports whether err says the bucket's stream is not there.
func bucketGone(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders)
}

// filters are the subjects the ledger reads: Cloud Recording, and old
// bodies with no productId; never its own session.> nor the dead letters.
func (l *Ledger) filters() []string {
	return []string{l.cfg.SubjectPrefix + ".3.>", l.cfg.SubjectPrefix + ".unknown.>"}
}

func (l *Ledger) consumerConfig(startSeq uint64) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:        ConsumerName,
		Description:    "ncs-gateway session ledger (recreated by the gateway if deleted)",
		FilterSubjects: l.filters(),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxAckPending:  maxAckPending,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if startSeq > 1 {
		c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, startSeq
	}
	return c
}

// ensureConsumer finds the durable consumer, or creates it: from the start
// of the stream on a first start, or, when it vanished, from just above
// the ack floor this process last saw (every message at or below it was
// finished; those above are replayed, which changes nothing).
func (l *Ledger) ensureConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c, err := js.Consumer(ctx, l.cfg.Stream, ConsumerName)
	if err == nil {
		cfg := c.CachedInfo().Config
		if !slices.Equal(cfg.FilterSubjects, l.filters()) || cfg.AckWait != ackWait || cfg.MaxAckPending != maxAckPending {
			cfg.FilterSubjects, cfg.FilterSubject, cfg.AckWait, cfg.MaxAckPending = l.filters(), "", ackWait, maxAckPending
			if c, err = js.UpdateConsumer(ctx, l.cfg.Stream, cfg); err != nil {
				l.m.errors.WithLabelValues(opConsumer).Inc()
				return nil, fmt.Errorf("update consumer %s: %w", ConsumerName, err)
			}
		}
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		l.m.errors.WithLabelValues(opConsumer).Inc()
		return nil, fmt.Errorf("look up consumer %s: %w", ConsumerName, err)
	}
	start := l.ackFloor.Load() + 1
	c, err = js.CreateConsumer(ctx, l.cfg.Stream, l.consumerConfig(start))
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = js.Consumer(ctx, l.cfg.Stream, ConsumerName) // another gateway was first
	}
	if err != nil {
		l.m.errors.WithLabelValues(opConsumer).Inc()
		return nil, fmt.Errorf("create consumer %s: %w", ConsumerName, err)
	}
	l.log.Info("ledger consumer created", zap.String("consumer", ConsumerName), zap.Uint64("start_seq", start))
	return c, nil
}

// fetchLoop reads batches until ctx is done, retrying every failure.
func (r *runner) fetchLoop(ctx context.Context) {
	l := r.l
	wait := backoffMin
	for ctx.Err() == nil {
		l.markBeat()
		if l.recreate.Load() {
			c, err := l.ensureConsumer(ctx, r.js)
			if err != nil {
				r.fail(ctx, "consumer", err, &wait)
				continue
			}
			r.cons.Store(&c)
			l.recreate.Store(false)
		}
		batch, err := (*r.cons.Load()).Fetch(fetchMessages, jetstream.FetchMaxBytes(fetchBytes), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			r.fetchFailed(ctx, err, &wait)
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
			r.fetchFailed(ctx, err, &wait)
			continue
		}
		wait = backoffMin
		ld := loadOf(msgs)
		if d := ld.hold(time.Now()); d > 0 && !l.sleep(ctx, d) {
			return // unacked: redelivered after ackWait
		}
		start := time.Now()
		r.process(ctx, msgs)
		if d := ld.rest(time.Since(start), time.Now()); d > 0 {
			l.sleep(ctx, d)
		}
	}
}

// batchLoad is what pacing knows of a fetched batch: its size, what
// waits behind it, and when the stream stored its oldest and newest.
type batchLoad struct {
	n              int
	pending        uint64
	oldest, newest time.Time
}

func loadOf(msgs []jetstream.Msg) batchLoad {
	if len(msgs) == 0 {
		return batchLoad{}
	}
	first, err1 := msgs[0].Metadata()
	last, err2 := msgs[len(msgs)-1].Metadata()
	if err1 != nil || err2 != nil {
		return batchLoad{} // no pacing without the stream's view
	}
	return batchLoad{n: len(msgs), pending: last.NumPending, oldest: first.Timestamp, newest: last.Timestamp}
}

// paced reports whether the ledger gives way to the webhook after this
// batch. A trickle (a small batch, nothing behind it) does not: the next
// fetch waits for news anyway. Load (a big batch, or a backlog) does,
// until the batch's oldest is older than paceMaxLag or more than
// paceMaxPending wait (the latter bounds the lag should the server's
// clock run ahead), so a sustained load the ledger cannot outpace while
// resting gets it at full speed.
func (b batchLoad) paced(now time.Time) bool {
	if b.n == 0 || b.pending == 0 && b.n < paceMinBatch {
		return false
	}
	return now.Sub(b.oldest) <= paceMaxLag && b.pending <= paceMaxPending
}

// hold is how long a paced batch waits before it is applied: until its
// newest notification is paceTrail old, never more than paceTrail. Under
// load the ledger trails the stream, so a burst is applied mostly after
// it, when the CPU and the disk (each record write and derived
// notification is an fsync on the webhook's disk) are the webhook's no
// more, in full batches that write each session once for more of its
// events. The batch stays unacked meanwhile, well within ackWait.
func (b batchLoad) hold(now time.Time) time.Duration {
	if !b.paced(now) {
		return 0
	}
	return min(max(paceTrail-now.Sub(b.newest), 0), paceTrail)
}

// rest is how long the ledger rests after applying a paced batch that
// took took: paceRatio times as long, at most paceMax, so that while it
// catches up behind a burst it still leaves most of the machine to the
// webhook.
func (b batchLoad) rest(took time.Duration, now time.Time) time.Duration {
	if !b.paced(now) || took <= 0 {
		return 0
	}
	return min(paceRatio*took, paceMax)
}

// fetchFailed handles a failed fetch: a vanished consumer is made again.
func (r *runner) fetchFailed(ctx context.Context, err error, wait *time.Duration) {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.l.recreate.Store(true)
	}
	r.fail(ctx, "fetch", err, wait)
}

func (r *runner) fail(ctx context.Context, what string, err error, wait *time.Duration) {
	l := r.l
	l.m.errors.WithLabelValues(opConsumer).Inc()
	l.setErr(err)
	if l.smp.allow("fail_" + what) {
		l.log.Warn("ledger "+what+" failed, retrying", zap.Error(err), zap.Duration("retry_in", *wait))
	}
	l.sleep(ctx, *wait)
	*wait = min(2**wait, backoffMax)
}

// group is the events of one session in a batch and their messages.
type group struct {
	key, sid string
	events   []Event
	msgs     []jetstream.Msg
}

// process applies a batch: one read and one compare-and-set write per
// session, then the acks. A session that fails is left unacked (a nak with
// a delay) and comes again.
func (r *runner) process(ctx context.Context, msgs []jetstream.Msg) {
	l := r.l
	groups := map[string]*group{}
	var order []*group
	for _, m := range msgs {
		var ts int64
		if md, err := m.Metadata(); err == nil {
			ts = md.Timestamp.UnixMilli()
		}
		e, why := Parse(m.Data(), ts)
		if why != "" {
			l.m.events.WithLabelValues(resultIgnored).Inc()
			if why == ignoreNotJSON || (why == ignoreNoSID && bytes.Contains(m.Data(), []byte(`"productId"`))) {
				l.anomaly(anomalyMalformed, "notification without a session acked and skipped", zap.String("subject", m.Subject()), zap.String("why", why))
			}
			_ = m.Ack()
			continue
		}
		r.checkEvent(e)
		key, _ := Key(e.SID)
		g := groups[key]
		if g == nil {
			g = &group{key: key, sid: e.SID}
			groups[key] = g
			order = append(order, g)
		}
		g.events = append(g.events, e)
		g.msgs = append(g.msgs, m)
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, g := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			l.markBeat()
			var applied, dups, noStart int
			err := r.update(ctx, g.key, g.sid, func(rec *Record) {
				applied, dups, noStart = 0, 0, 0 // counted for the attempt that is stored
				for _, e := range g.events {
					if e.Type == "31" && rec.Events["40"] == 0 && rec.Events["70"] == 0 && !slices.Contains(rec.Seen, e.Identity) {
						noStart++
					}
					if rec.Apply(e) {
						applied++
					} else {
						dups++
					}
				}
			})
			if err == nil {
				l.m.events.WithLabelValues(resultApplied).Add(float64(applied))
				l.m.events.WithLabelValues(resultDuplicate).Add(float64(dups))
				if noStart > 0 {
					l.anomaly(anomalyNoStart, "upload notice before any start", zap.String("sid", g.sid))
				}
			}
			for _, m := range g.msgs {
				if err != nil {
					_ = m.NakWithDelay(time.Second)
				} else {
					_ = m.Ack()
				}
			}
		}()
	}
	wg.Wait()
}

// checkEvent counts and logs what is odd about an event; none of it stops
// the event from being applied.
func (r *runner) checkEvent(e Event) {
	l := r.l
	if _, enc := Key(e.SID); enc {
		l.anomaly(anomalyEncodedKey, "sid is not a plain key: record stored under an encoded key", zap.String("sid", e.SID))
	}
	if !e.KnownType {
		l.anomaly(anomalyUnknownEvent, "unknown cloud recording event type counted in its session", zap.String("event_type", e.Type), zap.String("sid", e.SID))
	}
	if e.BadFileList {
		l.anomaly(anomalyBadFileList, "fileList names no file in some entries or has the wrong type", zap.String("event_type", e.Type), zap.String("sid", e.SID))
	}
	if e.FilesTruncated {
		l.anomaly(anomalyFilesTruncated, "fileList longer than the record keeps: record marked files_truncated", zap.String("sid", e.SID), zap.Int("files_kept", maxFiles))
	}
}

// anomaly counts odd input and logs it, sampled per kind.
func (l *Ledger) anomaly(kind, msg string, fields ...zap.Field) {
	l.m.anomalies.WithLabelValues(kind).Inc()
	if l.smp.allow("anomaly_" + kind) {
		l.log.Warn(msg, append(fields, zap.String("kind", kind))...)
	}
}

// update is the one path that changes a record: read it, let mutate merge
// facts into a copy, publish what the change derives, then write it with
// compare-and-set; on a conflict, all again on the fresh record. Derived
// messages go out before the write and carry ids of what they are about,
// so a crash between the two repeats a publish the stream drops.
func (r *runner) update(ctx context.Context, key, sid string, mutate func(*Record)) error {
	l := r.l
	for {
		before, rev, err := r.read(ctx, key)
		if err != nil {
			return err
		}
		// orig is encoded once: the copy to change is decoded from it and
		// the changed record compared with it (every encoding and record
		// is garbage the daemon's heap must make room for).
		var after *Record
		var orig []byte
		if before == nil {
			after = NewRecord(sid)
			orig = after.Marshal()
		} else {
			orig = before.Marshal()
			after, _ = UnmarshalRecord(orig)
		}
		if after.SID == "" {
			after.SID = sid
		}
		mutate(after)
		value := after.Marshal()
		if bytes.Equal(value, orig) {
			return nil // nothing new: no write, nothing derived
		}
		for _, d := range Transitions(before, after, l.cfg.SubjectPrefix, key) {
			if err := r.publish(ctx, d); err != nil {
				return err
			}
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		var newRev uint64
		if rev == 0 {
			newRev, err = r.kv.Create(cctx, key, value)
		} else {
			newRev, err = r.kv.Update(cctx, key, value, rev)
		}
		cancel()
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			l.m.conflicts.Inc()
			l.mu.Lock()
			l.conflict++
			l.mu.Unlock()
			continue
		}
		if err != nil {
			l.m.errors.WithLabelValues(opStore).Inc()
			l.setErr(err)
			if bucketGone(err) && r.restart != nil {
				r.restart(errBucketGone)
			}
			return fmt.Errorf("store record %s: %w", key, err)
		}
		l.ix.putRecord(key, newRev, after)
		return nil
	}
}

// read returns the stored record of key and its revision; nil and 0 when
// there is none. A record that does not decode is replaced by one rebuilt
// from the events still to come, never left to block its session.
func (r *runner) read(ctx context.Context, key string) (*Record, uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	e, err := r.kv.Get(cctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		r.l.m.errors.WithLabelValues(opRead).Inc()
		r.l.setErr(err)
		if bucketGone(err) && r.restart != nil {
			r.restart(errBucketGone)
		}
		return nil, 0, fmt.Errorf("read record %s: %w", key, err)
	}
	rec, derr := UnmarshalRecord(e.Value())
	if derr != nil {
		r.l.anomaly(anomalyMalformed, "stored record does not decode: rebuilt", zap.String("key", key), zap.Error(derr))
		return NewRecord(""), e.Revision(), nil
	}
	return rec, e.Revision(), nil
}

// publish stores one derived notification in the stream and waits for it.
func (r *runner) publish(ctx context.Context, d Derived) error {
	l := r.l
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var duplicate bool
	var err error
	if l.cfg.Store != nil {
		duplicate, err = l.cfg.Store.StoreDirect(cctx, publish.Message{Subject: d.Subject, Data: d.Body, ID: d.MsgID})
	} else {
		var ack *jetstream.PubAck
		ack, err = r.js.PublishMsg(cctx, &nats.Msg{Subject: d.Subject, Data: d.Body,
			Header: nats.Header{jetstream.MsgIDHeader: []string{d.MsgID}}})
		duplicate = err == nil && ack.Duplicate
	}
	if err != nil {
		l.m.errors.WithLabelValues(opPublish).Inc()
		l.setErr(err)
		return fmt.Errorf("publish %s: %w", d.MsgID, err)
	}
	if duplicate {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if d.Flag == "" {
		l.m.completed.WithLabelValues(d.Outcome).Inc()
		l.pubOK[d.Outcome]++
	} else {
		l.m.flagged.WithLabelValues(d.Flag).Inc()
		l.pubFlag[d.Flag]++
	}
	return nil
}
