package ledger

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// watchLoop keeps the index equal to the bucket: the last record of every
// key at start, then every write of every gateway. It decodes one record
// at a time and keeps only its entry.
func (r *runner) watchLoop(ctx context.Context) {
	wait := backoffMin
	for ctx.Err() == nil {
		err := r.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		r.fail(ctx, "watch", err, &wait)
	}
}

func (r *runner) watch(ctx context.Context) error {
	l := r.l
	name := "KV_" + l.cfg.Bucket
	prefix := "$KV." + l.cfg.Bucket + "."
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	s, err := r.js.Stream(cctx, name)
	if err == nil && s.CachedInfo().State.Msgs == 0 {
		l.loaded.Store(true)
	}
	var oc jetstream.Consumer
	if err == nil {
		oc, err = r.js.OrderedConsumer(cctx, name, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{prefix + ">"},
			DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		})
	}
	cancel()
	if err != nil {
		return err
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return err
		}
		key := strings.TrimPrefix(m.Subject(), prefix)
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		h := m.Headers()
		switch {
		case h.Get("KV-Operation") == "DEL" || h.Get("KV-Operation") == "PURGE" || h.Get(jetstream.MarkerReasonHeader) != "":
			l.ix.remove(key) // deleted, purged, or expired (MaxAge)
		case l.ix.holds(key, md.Sequence.Stream):
			// this ledger's own write, indexed when it was stored
		default:
			if err := l.ix.putJSON(key, md.Sequence.Stream, m.Data()); err != nil {
				l.anomaly(anomalyMalformed, "stored record does not decode: not indexed", zap.String("key", key), zap.Error(err))
			}
		}
		if md.NumPending == 0 && !l.loaded.Swap(true) {
			rec, ex, _, _ := l.ix.counts()
			l.log.Info("ledger index loaded", zap.Int("recording", rec), zap.Int("exited", ex))
		}
		l.updateGauges()
	}
}

// updateGauges sets the sessions gauges from the index.
func (l *Ledger) updateGauges() {
	rec, ex := l.ix.states()
	l.m.sessions.WithLabelValues(StateRecording).Set(float64(rec))
	l.m.sessions.WithLabelValues(StateExited).Set(float64(ex))
}

// tickLoop measures the lag about every second and, only while the ledger
// is caught up with the stream and knows the whole bucket, raises the time
// facts that fell due: a backlog never raises a false one.
func (r *runner) tickLoop(ctx context.Context) {
	l := r.l
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.updateGauges()
		if !r.refreshLag(ctx) {
			continue // behind the stream, or the index still loading
		}
		now := time.Now().UnixMilli()
		for _, key := range l.ix.dueKeys(now, dueBatch) {
			r.raiseDue(ctx, key, now)
		}
	}
}

// raiseDue raises the due time facts of one record through the same
// compare-and-set path as events.
func (r *runner) raiseDue(ctx context.Context, key string, now int64) {
	l := r.l
	sid, ok := SIDOfKey(key)
	if !ok {
		sid = l.ix.sidOf(key)
	}
	missing := false
	err := r.update(ctx, key, sid, func(rec *Record) {
		if len(rec.Seen) == 0 && rec.LastSeenMs == 0 {
			missing = true // expired or deleted since it was indexed
			return
		}
		RaiseDue(rec, now, l.cfg.UploadGrace, l.cfg.StallAfter)
	})
	if err != nil && l.smp.allow("raise_due") {
		l.log.Warn("ledger could not raise a due flag, retrying", zap.String("key", key), zap.Error(err))
	}
	if missing {
		l.ix.remove(key)
	}
}

// refreshLag reads the consumer's state into the status and metrics and
// reports whether the ledger is caught up: nothing pending on the
// consumer and the whole bucket in the index.
func (r *runner) refreshLag(ctx context.Context) bool {
	l := r.l
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	info, err := (*r.cons.Load()).Info(cctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			l.recreate.Store(true)
		}
		l.setLag(0, 0, false, false)
		return false
	}
	l.ackFloor.Store(info.AckFloor.Stream)
	lag := info.NumPending + uint64(info.NumAckPending)
	secs := 0.0
	if lag > 0 {
		var oldest time.Time
		for _, f := range l.filters() {
			m, err := r.stream.GetMsg(cctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(f))
			if err == nil && (oldest.IsZero() || m.Time.Before(oldest)) {
				oldest = m.Time
			}
		}
		if !oldest.IsZero() {
			secs = max(time.Since(oldest).Seconds(), 0)
		}
	}
	// Caught up needs the whole bucket in the index too: while it loads,
	// the counts are partial and a time fact could be raised on a record
	// whose later write the watch has not delivered yet.
	caughtUp := lag == 0 && l.loaded.Load()
	l.setLag(lag, secs, caughtUp, true)
	return caughtUp
}

func (l *Ledger) setLag(msgs uint64, secs float64, caughtUp, known bool) {
	l.mu.Lock()
	l.lagMsgs, l.lagSecs, l.caughtUp = msgs, secs, caughtUp
	l.mu.Unlock()
	if known {
		l.m.lagMsgs.Set(float64(msgs))
		l.m.lagSecs.Set(secs)
	}
	v := 0.0
	if caughtUp {
		v = 1
	}
	l.m.caughtUp.Set(v)
}
