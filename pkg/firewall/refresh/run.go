package refresh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// ErrLocked is returned by LockDir when another process holds state_dir.
var ErrLocked = errors.New("another ncs-gateway process holds state_dir")

// ApplyPersisted puts the last good allowlist (or, with none, static_allow
// alone: closed to everyone else) into the kernel. The daemon calls it at
// start, before it serves a request. It reports how many NCS addresses are
// allowed.
func (r *Refresher) ApplyPersisted(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loadLocked()
	if err := r.applyLocked(ctx, allowlist(r.current, r.static)); err != nil {
		return 0, err
	}
	if r.current == nil {
		return 0, nil
	}
	r.metrics.setLastSuccess(r.current.FetchedAt)
	return len(r.current.Entries), nil
}

// Reconcile keeps the kernel in the state this process applied: it retries
// a save that failed, then asks the firewall to repair drift (someone
// flushed the ruleset). It never reads the state file back: no other
// process writes it while this one runs.
func (r *Refresher) Reconcile(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics.reconciles.Inc()
	var errs []error
	if r.unsaved != nil {
		if err := r.saveLocked(r.unsaved); err != nil {
			errs = append(errs, err)
		} else {
			r.log.Info("applied allowlist persisted after an earlier failure")
		}
	}
	repaired, err := r.fw.Reconcile(ctx)
	if err != nil {
		r.metrics.reconcileErrors.Inc()
		errs = append(errs, fmt.Errorf("reconcile firewall: %w", err))
	} else if repaired {
		// The backend logs the one line per repair, with what it found.
		r.metrics.driftRepairs.Inc()
	}
	return errors.Join(errs...)
}

// Status is the allowlist as this process holds it, for /status and
// readiness.
type Status struct {
	Last         Record // zero when no refresh ran yet
	State        *State // the NCS list applied; nil when none
	FetchEnabled bool
	// PersistError is why the applied list is not saved yet ("" when it is).
	PersistError string
}

// Status reports the allowlist from memory: no file is read, so it says
// what the kernel was given whatever happens to state_dir.
func (r *Refresher) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Last: r.last, FetchEnabled: r.fetch != nil}
	if r.current != nil {
		c := *r.current
		st.State = &c
	}
	if r.saveErr != nil {
		st.PersistError = r.saveErr.Error()
	}
	return st
}

// Run reconciles every interval and, when the firewall is a Watcher, soon
// after each change of the host's ruleset, until ctx ends. Errors are
// logged here, the top of that loop. It marks its heartbeat (LastBeat)
// every heartbeatEvery while it waits and after each pass.
func (r *Refresher) Run(ctx context.Context, interval time.Duration) error {
	kick := make(chan struct{}, 1)
	watchDone := make(chan struct{})
	if w, ok := r.fw.(Watcher); ok {
		go func() {
			defer close(watchDone)
			err := w.Watch(ctx, func() {
				select {
				case kick <- struct{}{}:
				default: // one pending pass covers every change before it
				}
			})
			if err != nil && ctx.Err() == nil {
				r.log.Error("watch the firewall ruleset; drift is repaired only every reconcile_interval",
					zap.Duration("reconcile_interval", interval), zap.Error(err))
			}
		}()
	} else {
		close(watchDone)
	}
	defer func() { <-watchDone }()
	t := time.NewTicker(interval)
	defer t.Stop()
	// The heartbeat is marked by this loop, so a pass stuck in the kernel
	// stops it; a refresh's fetch runs elsewhere and never holds it up.
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		r.beat.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			continue
		case <-t.C:
		case <-kick:
		}
		if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("reconcile allowlist", zap.Error(err))
		}
	}
}

// heartbeatEvery is how often Run marks its heartbeat while it waits.
const heartbeatEvery = time.Second

// LastBeat returns when the reconcile loop (Run) last showed it runs; zero
// before Run starts.
func (r *Refresher) LastBeat() time.Time {
	if n := r.beat.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
