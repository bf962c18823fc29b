package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
)

// ipFetcher reads Agora's current NCS address list.
type ipFetcher interface {
	Fetch(ctx context.Context) (ncsip.Result, error)
}

// allowlistFirewall puts the host's firewall in exactly the given state.
type allowlistFirewall interface {
	Apply(ctx context.Context, allow []netip.Prefix) error
	Reconcile(ctx context.Context) (repaired bool, err error)
}

// refreshOptions are the operator's overrides for one refresh.
type refreshOptions struct {
	DryRun bool // compute and print the plan, change nothing
	Force  bool // pass the max_shrink gate
}

// refreshPolicy holds the gates and the merge rules from the firewall config.
type refreshPolicy struct {
	static      []netip.Prefix
	minIPs      int
	maxShrink   float64
	removeGrace time.Duration
}

// refreshError is a failed refresh with its metric label: fetch_<ncsip
// reason>, below_min_ips, shrink_refused, apply, persist or lock.
type refreshError struct {
	reason string
	err    error
}

func (e *refreshError) Error() string { return e.err.Error() }
func (e *refreshError) Unwrap() error { return e.err }

func failRefresh(reason string, err error) error { return &refreshError{reason: reason, err: err} }

// refresher is the one path that changes the allowlist: the cron schedule,
// SIGHUP, the reconcile loop and `-refresh` all go through it. Calls never
// overlap inside a process (mu) or across processes (a file lock under
// state_dir), and on any failure the last good allowlist stays as it is.
type refresher struct {
	fetch   ipFetcher // nil: no Agora endpoints configured, static_allow only
	fw      allowlistFirewall
	state   stateFile
	lock    string
	policy  refreshPolicy
	metrics *gatewayMetrics
	log     *zap.Logger
	now     func() time.Time

	// refreshMu keeps refreshes from overlapping, fetch included; mu is
	// held only around the short kernel and state work, so a slow or
	// retrying fetch never holds up Reconcile or Status.
	refreshMu   sync.Mutex
	mu          sync.Mutex
	lastApplied []netip.Prefix // what this process last put in the kernel
	last        refreshRecord
}

// refreshRecord is the outcome of the latest refresh, for /status.
type refreshRecord struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"`
	Error  string    `json:"error,omitempty"`
}

func newRefresher(cfg Config, fetch ipFetcher, fw allowlistFirewall, m *gatewayMetrics, log *zap.Logger) (*refresher, error) {
	static, err := parseStaticAllow(cfg.Firewall.StaticAllow)
	if err != nil {
		return nil, fmt.Errorf("firewall.static_allow: %w", err)
	}
	return &refresher{
		fetch: fetch,
		fw:    fw,
		state: stateFile{path: filepath.Join(cfg.StateDir, "allowlist.json")},
		lock:  filepath.Join(cfg.StateDir, "refresh.lock"),
		policy: refreshPolicy{
			static:      static,
			minIPs:      cfg.Firewall.MinIPs,
			maxShrink:   cfg.Firewall.MaxShrink,
			removeGrace: cfg.Firewall.RemoveGrace,
		},
		metrics: m,
		log:     log.Named("refresh"),
		now:     time.Now,
	}, nil
}

// plan is what a refresh changes, printed by -refresh and logged.
type plan struct {
	Source  string
	Fetched int          // addresses in Agora's answer
	Added   []netip.Addr // newly allowed
	Removed []netip.Addr // no longer allowed (gone from the answer for longer than remove_grace)
	Kept    []netip.Addr // in the answer and already allowed
	Grace   []netip.Addr // gone from the answer, still allowed during remove_grace
	Static  []netip.Prefix
	next    *allowState
}

// allowed is the full set the plan applies: NCS addresses plus static_allow.
func (p *plan) allowed() []netip.Prefix { return allowlist(p.next, p.Static) }

// Refresh fetches the list, checks it against the gates, merges it with the
// addresses still in their grace period and static_allow, applies it and
// persists it. It returns the plan even on a gate refusal so the operator
// sees what was refused.
func (r *refresher) Refresh(ctx context.Context, opts refreshOptions) (*plan, error) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	start := r.now()
	var (
		res  ncsip.Result
		ferr error
	)
	if r.fetch != nil {
		res, ferr = r.fetch.Fetch(ctx) // no lock held: the slow part
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := r.refreshLocked(ctx, opts, res, ferr)
	if opts.DryRun {
		return p, err
	}
	rec := refreshRecord{At: start, OK: err == nil}
	if err != nil {
		rec.Reason, rec.Error = refreshFailureReason(err), err.Error()
		r.metrics.refreshFailures.WithLabelValues(rec.Reason).Inc()
		r.log.Error("allowlist refresh failed; the last good allowlist stays applied",
			zap.String("reason", rec.Reason), zap.Error(err))
	} else {
		r.metrics.refreshSuccess.Inc()
		r.metrics.setLastSuccess(p.next.FetchedAt)
		r.log.Info("allowlist applied",
			zap.String("source", p.Source), zap.Int("fetched", p.Fetched),
			zap.Int("added", len(p.Added)), zap.Int("removed", len(p.Removed)),
			zap.Int("kept", len(p.Kept)), zap.Int("grace", len(p.Grace)),
			zap.Int("static", len(p.Static)), zap.Duration("took", r.now().Sub(start)))
	}
	r.last = rec
	return p, err
}

func (r *refresher) refreshLocked(ctx context.Context, opts refreshOptions, res ncsip.Result, ferr error) (*plan, error) {
	if r.fetch == nil {
		return nil, errors.New("refresh allowlist: no ncs.endpoints configured")
	}
	unlock, err := r.lockState(ctx)
	if err != nil {
		return nil, failRefresh("lock", err)
	}
	defer unlock()
	prev, err := r.state.load()
	if err != nil {
		// A damaged state file must not block a refresh: Agora's answer
		// replaces it. The gates then have no previous list to compare with.
		r.log.Warn("ignoring unreadable allowlist state", zap.Error(err))
		prev = nil
	}
	if ferr != nil {
		return nil, failRefresh("fetch_"+ncsip.Reason(ferr), fmt.Errorf("fetch ncs ip list: %w", ferr))
	}
	if res.RejectedCount > 0 {
		r.log.Warn("agora listed addresses that were not accepted",
			zap.Int("rejected", res.RejectedCount), zap.Strings("examples", res.Rejected))
	}
	p := r.merge(prev, res, r.now())
	if err := r.gate(prev, p, opts.Force); err != nil {
		return p, err
	}
	if opts.DryRun {
		return p, nil
	}
	if err := r.applyLocked(ctx, p.allowed()); err != nil {
		return p, failRefresh("apply", err)
	}
	p.next.AppliedAt = r.now()
	if err := r.state.save(p.next); err != nil {
		// The kernel has the new list; only the restart copy is stale. The
		// next refresh writes it again.
		return p, failRefresh("persist", fmt.Errorf("persist allowlist: %w", err))
	}
	return p, nil
}

// merge computes the next state from the previous one and Agora's answer.
func (r *refresher) merge(prev *allowState, res ncsip.Result, now time.Time) *plan {
	p := &plan{Source: res.Endpoint, Fetched: len(res.Addrs), Static: r.policy.static}
	next := &allowState{FetchedAt: now, Source: res.Endpoint}
	fresh := make(map[netip.Addr]bool, len(res.Addrs))
	for _, a := range res.Addrs {
		fresh[a] = true
		next.Entries = append(next.Entries, stateEntry{Addr: a, LastSeen: now})
	}
	old := map[netip.Addr]bool{}
	if prev != nil {
		for _, e := range prev.Entries {
			old[e.Addr] = true
			switch {
			case fresh[e.Addr]:
				p.Kept = append(p.Kept, e.Addr)
			case now.Sub(e.LastSeen) < r.policy.removeGrace:
				p.Grace = append(p.Grace, e.Addr)
				next.Entries = append(next.Entries, e)
			default:
				p.Removed = append(p.Removed, e.Addr)
			}
		}
	}
	for _, a := range res.Addrs {
		if !old[a] {
			p.Added = append(p.Added, a)
		}
	}
	slices.SortFunc(next.Entries, func(a, b stateEntry) int { return a.Addr.Compare(b.Addr) })
	for _, s := range [][]netip.Addr{p.Kept, p.Grace, p.Removed} {
		slices.SortFunc(s, netip.Addr.Compare)
	}
	p.next = next
	return p
}

// gate refuses answers that look wrong: too few addresses, or a list that
// drops more than max_shrink of the previous answer at once (unless forced).
func (r *refresher) gate(prev *allowState, p *plan, force bool) error {
	if p.Fetched < r.policy.minIPs {
		return failRefresh("below_min_ips", fmt.Errorf("refresh allowlist: agora listed %d address(es), below firewall.min_ips=%d", p.Fetched, r.policy.minIPs))
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
	if before > 0 && float64(gone)/float64(before) > r.policy.maxShrink {
		return failRefresh("shrink_refused", fmt.Errorf(
			"refresh allowlist: agora's list drops %d of the %d addresses it listed before (%.0f%% > firewall.max_shrink=%.0f%%); run -refresh -force to accept it",
			gone, before, 100*float64(gone)/float64(before), 100*r.policy.maxShrink))
	}
	return nil
}

// ApplyPersisted puts the last good allowlist (or, with none, static_allow
// alone: closed to everyone else) into the kernel. The daemon calls it at
// start, before it serves a request. It reports how many NCS addresses are
// allowed.
func (r *refresher) ApplyPersisted(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	unlock, err := r.lockState(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	st, err := r.state.load()
	if err != nil {
		r.log.Warn("ignoring unreadable allowlist state; only static_allow is allowed until a refresh succeeds", zap.Error(err))
		st = nil
	}
	if err := r.applyLocked(ctx, allowlist(st, r.policy.static)); err != nil {
		return 0, err
	}
	if st == nil {
		return 0, nil
	}
	r.metrics.setLastSuccess(st.FetchedAt)
	return len(st.Entries), nil
}

// Reconcile keeps the kernel in the last good state. If another process (a
// one-shot -refresh) persisted a newer list, it adopts that list; otherwise
// it asks the backend to repair drift (someone flushed the ruleset).
func (r *refresher) Reconcile(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	unlock, err := r.lockState(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.state.load()
	if err == nil {
		if want := allowlist(st, r.policy.static); !slices.Equal(want, r.lastApplied) {
			r.log.Info("adopting the allowlist persisted by another process", zap.Int("allowed", len(want)))
			return r.applyLocked(ctx, want)
		}
	}
	repaired, err := r.fw.Reconcile(ctx)
	if err != nil {
		r.metrics.reconcileErrors.Inc()
		return fmt.Errorf("reconcile firewall: %w", err)
	}
	if repaired {
		r.metrics.driftRepairs.Inc()
		r.log.Warn("firewall drift repaired: our rules had been changed or removed by someone else")
	}
	return nil
}

// Status reports the allowlist for /status.
func (r *refresher) Status() (refreshRecord, *allowState, error) {
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	st, err := r.state.load()
	return last, st, err
}

func (r *refresher) applyLocked(ctx context.Context, allow []netip.Prefix) error {
	start := time.Now()
	err := r.fw.Apply(ctx, allow)
	r.metrics.applyDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("apply allowlist: %w", err)
	}
	r.lastApplied = allow
	r.metrics.allowlistSize.Set(float64(len(allow)))
	return nil
}

// lockState takes the cross-process lock, waiting at most 30 s.
func (r *refresher) lockState(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := lockFile(ctx, r.lock)
	if err != nil {
		return nil, fmt.Errorf("lock allowlist state: %w", err)
	}
	return func() { _ = l.unlock() }, nil
}

// allowlist is the set the firewall enforces: the state's NCS addresses and
// static_allow, sorted and deduplicated so equal lists compare equal.
func allowlist(st *allowState, static []netip.Prefix) []netip.Prefix {
	out := slices.Clone(static)
	if st != nil {
		for _, e := range st.Entries {
			out = append(out, netip.PrefixFrom(e.Addr, e.Addr.BitLen()))
		}
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// refreshFailureReason is the metric label of a failed refresh.
func refreshFailureReason(err error) string {
	var re *refreshError
	if errors.As(err, &re) {
		return re.reason
	}
	return "other"
}

// print writes the plan for an operator at the terminal.
func (p *plan) print(w io.Writer) {
	fmt.Fprintf(w, "agora answered %d address(es) from %s\n", p.Fetched, p.Source)
	line := func(label string, addrs []netip.Addr) {
		fmt.Fprintf(w, "%-8s %4d", label, len(addrs))
		for _, a := range addrs {
			fmt.Fprintf(w, " %s", a)
		}
		fmt.Fprintln(w)
	}
	line("added", p.Added)
	line("removed", p.Removed)
	line("kept", p.Kept)
	line("grace", p.Grace)
	fmt.Fprintf(w, "%-8s %4d", "static", len(p.Static))
	for _, s := range p.Static {
		fmt.Fprintf(w, " %s", s)
	}
	fmt.Fprintln(w)
}
