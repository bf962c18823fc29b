package refresh

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// Bounds of ncs.schedule.
const (
	// MaxRefreshGap is the longest Agora lets pass between two reads of the
	// NCS IP list: the addresses change on a cycle of about 24 hours.
	MaxRefreshGap = 24 * time.Hour
	// MinRefreshInterval is the floor: each refresh calls Agora's REST API
	// with the customer's credentials, and a list that changes about daily
	// gains nothing from being read more than once a minute.
	MinRefreshInterval = time.Minute
)

// idleBeat is how often the schedule loop marks its heartbeat while it
// waits: a watchdog that allows a few of these sees a live loop.
const idleBeat = 5 * time.Second

// cronParser reads ncs.schedule: five standard fields or a descriptor such as
// "@every 1h" or "@daily", with an optional CRON_TZ= prefix.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CheckSchedule parses spec and rejects it if it runs more often than
// MinRefreshInterval, or can leave more than MaxRefreshGap between two runs
// at any point of the coming year (daylight-saving shifts, short months and
// weekdays included). The message names the bound and why it is there.
func CheckSchedule(spec string) error {
	return checkSchedule(spec, MaxRefreshGap)
}

func checkSchedule(spec string, maxGap time.Duration) error {
	sched, err := cronParser.Parse(spec)
	if err != nil {
		return fmt.Errorf("%q is not a cron spec: %v", spec, err)
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		if every.Delay < MinRefreshInterval {
			return fmt.Errorf("%q refreshes more than once a minute: each refresh calls Agora's REST API with the customer's credentials, and the list changes about every 24h, so refresh at most every %s (hourly is the default)", spec, MinRefreshInterval)
		}
		if every.Delay > maxGap {
			return fmt.Errorf("%q leaves %s between refreshes; Agora changes its IPs about every 24h, so refresh at least every %s", spec, every.Delay, maxGap)
		}
		return nil
	}
	// Five cron fields cannot run more often than once a minute.
	if gap, at := longestGap(sched, time.Now(), maxGap); gap > maxGap {
		return fmt.Errorf("%q leaves %s between refreshes (after %s); refresh at least every %s", spec, gap.Round(time.Minute), at.Format(time.RFC3339), maxGap)
	}
	return nil
}

// longestGap finds a gap between consecutive runs of sched longer than
// limit within a year from start, if there is one, and returns it with the
// run that opens it; otherwise it returns the longest gap it measured.
//
// Walking every run of a once-a-minute schedule for a year is half a million
// steps, so it probes on an hourly grid instead: a gap longer than limit
// shows at some probe as a wait longer than limit-1h, and only then are the
// runs around that probe walked one by one to measure the gap exactly.
func longestGap(sched cron.Schedule, start time.Time, limit time.Duration) (time.Duration, time.Time) {
	const probeStep = time.Hour
	end := start.AddDate(1, 0, 7)
	var longest time.Duration
	var longestAt time.Time
	for t := start; t.Before(end); t = t.Add(probeStep) {
		if sched.Next(t).Sub(t) <= limit-probeStep {
			continue
		}
		// Walk the runs from well before this probe to well after it.
		from, to := t.Add(-limit-probeStep), t.Add(limit+probeStep)
		prev := sched.Next(from)
		if prev.IsZero() {
			return end.Sub(from), from // the schedule never runs again
		}
		if gap := prev.Sub(from); gap > limit {
			return gap, from // at least this long without a run
		}
		for prev.Before(to) {
			next := sched.Next(prev)
			if next.IsZero() {
				return end.Sub(prev), prev
			}
			if gap := next.Sub(prev); gap > longest {
				longest, longestAt = gap, prev
			}
			prev = next
		}
		if longest > limit {
			return longest, longestAt
		}
	}
	return longest, longestAt
}

// Scheduler runs the daemon's refreshes: once at start, then on the cron
// schedule and on SIGHUP, all through the one Refresh. It is the top of
// those refreshes, so it logs their failures.
type Scheduler struct {
	ref   *Refresher
	sched cron.Schedule // nil: no Agora endpoint, nothing to fetch
	hup   <-chan os.Signal
	onHUP func()
	log   *zap.Logger
	beat  atomic.Int64 // unix nanos of the loop's last mark
}

// NewScheduler returns the schedule loop over ref. hup delivers SIGHUP;
// onHUP runs first at each one (the daemon reloads its TLS certificate
// there). spec is ncs.schedule, parsed only when ref has something to fetch.
func NewScheduler(spec string, ref *Refresher, hup <-chan os.Signal, onHUP func(), log *zap.Logger) (*Scheduler, error) {
	s := &Scheduler{ref: ref, hup: hup, onHUP: onHUP, log: log}
	if onHUP == nil {
		s.onHUP = func() {}
	}
	if ref.FetchEnabled() {
		sched, err := cronParser.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("schedule refresh: %w", err)
		}
		s.sched = sched
	}
	return s, nil
}

// LastBeat is when the loop last showed it runs: at each tick and SIGHUP,
// and every few seconds while it waits. A refresh in progress (a slow
// Agora API) does not stop the marks: it runs beside the loop.
func (s *Scheduler) LastBeat() time.Time { return time.Unix(0, s.beat.Load()) }

func (s *Scheduler) mark() { s.beat.Store(time.Now().UnixNano()) }

// Run refreshes until ctx ends. Ticks and SIGHUPs that arrive while a
// refresh runs are folded into one more refresh after it.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mark()
	kick := make(chan struct{}, 1)
	want := func() {
		select {
		case kick <- struct{}{}:
		default: // one pending refresh covers every request before it
		}
	}
	done := make(chan struct{})
	defer func() { <-done }()
	go func() { // the one worker: refreshes never overlap
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			if _, err := s.ref.Refresh(ctx, Options{}); err != nil && ctx.Err() == nil {
				LogFailure(s.log, err)
			}
		}
	}()
	var tick <-chan time.Time
	var timer *time.Timer
	next := func() {
		if s.sched == nil {
			return
		}
		d := time.Until(s.sched.Next(time.Now()))
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		tick = timer.C
	}
	if s.sched != nil {
		want() // once at start
		next()
		defer timer.Stop()
	}
	idle := time.NewTicker(idleBeat)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-idle.C:
		case <-tick:
			want()
			next()
		case <-s.hup:
			s.onHUP()
			if s.sched == nil {
				s.log.Info("SIGHUP: no allowlist refresh, ncs.endpoints is empty")
			} else {
				s.log.Info("SIGHUP: refreshing the allowlist now")
				want()
			}
		}
		s.mark()
	}
}

// LogFailure is the one log line of a failed refresh in the daemon.
func LogFailure(log *zap.Logger, err error) {
	reason := Reason(err)
	if reason == ReasonPersist {
		log.Error("allowlist refresh failed to persist; the new allowlist is applied and the save is retried at every reconcile",
			zap.String("reason", reason), zap.Error(err))
		return
	}
	log.Error("allowlist refresh failed; the last good allowlist stays applied", zap.String("reason", reason), zap.Error(err))
}
