// Package refresh owns the NCS allowlist: it fetches Agora's address list,
// checks it against the gates (min_ips, max_shrink), merges it with the
// addresses still in their removal grace period and static_allow, applies
// it to the firewall, persists it, and keeps the kernel in that state.
//
// The list this process last applied is the truth: it lives in memory, the
// state file is only its copy for the next start. A failed save is retried
// at every reconcile and never undoes what was applied. Only one process
// uses a state_dir at a time (see LockDir); while a daemon runs, one-shot
// commands go through it instead of writing beside it.
package refresh

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
)

// Fetcher reads Agora's current NCS address list.
type Fetcher interface {
	Fetch(ctx context.Context) (ncsip.Result, error)
}

// Firewall puts the host's firewall in exactly the given state and keeps it
// there.
type Firewall interface {
	Apply(ctx context.Context, allow []netip.Prefix) error
	Reconcile(ctx context.Context) (repaired bool, err error)
}

// Watcher is a Firewall that can tell when the host's ruleset may have
// changed under us; Run then reconciles at once instead of at the next tick.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// Options are the operator's overrides for one refresh.
type Options struct {
	DryRun bool `json:"dry_run"` // compute the plan, change nothing
	Force  bool `json:"force"`   // pass the max_shrink gate
}

// Config is what a Refresher needs. Fetcher may be nil: no ncs.endpoints,
// static_allow alone.
type Config struct {
	Fetcher     Fetcher
	Firewall    Firewall
	Store       Store
	StaticAllow []netip.Prefix
	MinIPs      int
	MaxShrink   float64
	RemoveGrace time.Duration
	Metrics     *Metrics // nil: metrics on a private registry
	Log         *zap.Logger
	Now         func() time.Time // nil: time.Now
}

// Failure reasons of a refresh: the label of refresh_failures_total. A fetch
// failure is "fetch_" followed by ncsip.Reason.
const (
	ReasonBelowMinIPs   = "below_min_ips"
	ReasonShrinkRefused = "shrink_refused"
	ReasonApply         = "apply"
	ReasonPersist       = "persist"
	ReasonNoEndpoints   = "no_endpoints"
	ReasonOther         = "other"
)

// Error is a failed refresh with its metric label.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(reason string, err error) error { return &Error{Reason: reason, Err: err} }

// Reason is the metric label of a failed refresh ("other" for an error that
// is not a refresh's own).
func Reason(err error) string {
	var re *Error
	if errors.As(err, &re) {
		return re.Reason
	}
	return ReasonOther
}

// Record is the outcome of the latest refresh, for /status.
type Record struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// Refresher is the one path that changes the allowlist: the schedule,
// SIGHUP, the control socket and a local -refresh all call Refresh. Calls
// never overlap, and on any failure before the apply the last good
// allowlist stays as it is.
type Refresher struct {
	fetch   Fetcher
	fw      Firewall
	store   Store
	static  []netip.Prefix
	minIPs  int
	shrink  float64
	grace   time.Duration
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time

	// refreshMu keeps refreshes from overlapping, fetch included; mu is
	// held only around the short kernel and state work, so a slow fetch
	// never holds up Reconcile or Status.
	refreshMu sync.Mutex
	mu        sync.Mutex
	beat      atomic.Int64 // unix ns of Run's last heartbeat (run.go)
	loaded    bool
	current   *State         // the NCS list in the kernel (nil: none yet)
	applied   []netip.Prefix // what this process last put in the kernel
	unsaved   *State         // applied but not yet persisted: retried by Reconcile
	saveErr   error          // why unsaved is unsaved
	last      Record
}

// New returns a Refresher. It touches neither the kernel nor the network.
func New(cfg Config) (*Refresher, error) {
	if cfg.Firewall == nil || cfg.Store == nil {
		return nil, errors.New("refresh: a firewall and a store are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("check refresher config: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	cfg.Metrics.fetchEnabled.Set(0)
	if cfg.Fetcher != nil {
		cfg.Metrics.fetchEnabled.Set(1)
	}
	return &Refresher{
		fetch: cfg.Fetcher, fw: cfg.Firewall, store: cfg.Store,
		static: sortedPrefixes(cfg.StaticAllow),
		minIPs: cfg.MinIPs, shrink: cfg.MaxShrink, grace: cfg.RemoveGrace,
		metrics: cfg.Metrics, log: cfg.Log, now: cfg.Now,
	}, nil
}

// FetchEnabled reports whether there is an Agora endpoint to refresh from.
func (r *Refresher) FetchEnabled() bool { return r.fetch != nil }

// Refresh fetches the list, checks it against the gates, merges it with the
// addresses still in their grace period and static_allow, applies it and
// persists it. It returns the plan even on a gate refusal, so the operator
// sees what was refused, and its error for the caller to report: it logs
// only success. A failed save (reason persist) leaves the new list applied;
// Reconcile retries the save.
func (r *Refresher) Refresh(ctx context.Context, opts Options) (*Plan, error) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	if r.fetch == nil {
		return nil, fail(ReasonNoEndpoints, errors.New("refresh allowlist: ncs.endpoints is empty, there is nothing to fetch"))
	}
	start := r.now()
	res, ferr := r.fetch.Fetch(ctx) // no lock held: the slow part
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := r.refreshLocked(ctx, opts, res, ferr)
	if opts.DryRun {
		return p, err
	}
	rec := Record{At: start, OK: err == nil}
	if err != nil {
		rec.Reason, rec.Error = Reason(err), err.Error()
		r.metrics.refreshFailures.WithLabelValues(rec.Reason).Inc()
	} else {
		r.metrics.refreshSuccess.Inc()
		r.log.Info("allowlist applied",
			zap.String("source", p.Source), zap.Int("fetched", p.Fetched),
			zap.Int("added", len(p.Added)), zap.Int("removed", len(p.Removed)),
			zap.Int("kept", len(p.Kept)), zap.Int("grace", len(p.Grace)),
			zap.Int("static", len(p.Static)), zap.Duration("took", r.now().Sub(start)))
	}
	r.last = rec
	return p, err
}

func (r *Refresher) refreshLocked(ctx context.Context, opts Options, res ncsip.Result, ferr error) (*Plan, error) {
	r.loadLocked()
	if ferr != nil {
		return nil, fail("fetch_"+ncsip.Reason(ferr), fmt.Errorf("fetch ncs ip list: %w", ferr))
	}
	if res.RejectedCount > 0 {
		r.log.Warn("agora listed addresses that were not accepted",
			zap.Int("rejected", res.RejectedCount), zap.Strings("examples", res.Rejected))
	}
	prev := r.current
	p := r.merge(prev, res, r.now())
	if err := r.gate(prev, p, opts.Force); err != nil {
		return p, err
	}
	if opts.DryRun {
		return p, nil
	}
	if err := r.applyLocked(ctx, p.Allowed()); err != nil {
		return p, fail(ReasonApply, err)
	}
	p.next.AppliedAt = r.now()
	r.current = p.next
	r.metrics.setLastSuccess(p.next.FetchedAt)
	if err := r.saveLocked(p.next); err != nil {
		return p, fail(ReasonPersist, err)
	}
	return p, nil
}

// loadLocked reads the persisted state once, the first time this process
// needs it; from then on memory is the truth.
func (r *Refresher) loadLocked() {
	if r.loaded {
		return
	}
	r.loaded = true
	st, err := r.store.Load()
	if err != nil {
		// A damaged state file must not block a refresh: Agora's answer
		// replaces it. The gates then have no previous list to compare with.
		r.log.Warn("ignoring unreadable allowlist state; only static_allow is allowed until a refresh succeeds", zap.Error(err))
		st = nil
	}
	r.current = st
}

// saveLocked persists st; on failure it keeps st for Reconcile to retry.
func (r *Refresher) saveLocked(st *State) error {
	if err := r.store.Save(st); err != nil {
		r.unsaved, r.saveErr = st, err
		r.metrics.persistFailures.Inc()
		r.metrics.persistPending.Set(1)
		return fmt.Errorf("persist allowlist (applied; the save is retried at every reconcile): %w", err)
	}
	r.unsaved, r.saveErr = nil, nil
	r.metrics.persistPending.Set(0)
	return nil
}

// gate refuses answers that look wrong: too few addresses, or a list that
// drops more than max_shrink of the previous answer at once (unless forced).
func (r *Refresher) gate(prev *State, p *Plan, force bool) error {
	if p.Fetched < r.minIPs {
		return fail(ReasonBelowMinIPs, fmt.Errorf("refresh allowlist: agora listed %d address(es), below firewall.min_ips=%d", p.Fetched, r.minIPs))
	}
	if prev == nil || force {
		return nil
	}
	// Compare with the previous answer itself, not with what grace keeps.
	var before, gone int
	fresh := make(map[netip.Addr]bool, p.Fetched)
	for _, a := range slices.Concat(p.Added, p.Kept) {
		fresh[a] = true
	}
	for _, e := range prev.Entries {
		if e.LastSeen.Equal(prev.FetchedAt) {
			before++
			if !fresh[e.Addr] {
				gone++
			}
		}
	}
	if before > 0 && float64(gone)/float64(before) > r.shrink {
		return fail(ReasonShrinkRefused, fmt.Errorf(
			"refresh allowlist: agora's list drops %d of the %d addresses it listed before (%.0f%% > firewall.max_shrink=%.0f%%); run -refresh -force to accept it",
			gone, before, 100*float64(gone)/float64(before), 100*r.shrink))
	}
	return nil
}

func (r *Refresher) applyLocked(ctx context.Context, allow []netip.Prefix) error {
	start := time.Now()
	err := r.fw.Apply(ctx, allow)
	r.metrics.applyDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("apply allowlist: %w", err)
	}
	r.applied = allow
	r.metrics.allowlistSize.Set(float64(len(allow)))
	return nil
}
