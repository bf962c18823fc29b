// Package watchdog pings systemd's watchdog only while every long-running
// loop of the daemon shows, by its own heartbeat, that it still runs. A loop
// that hangs stops marking, the pings stop, and systemd restarts the
// service after WatchdogSec; a timer beside the work would keep pinging a
// daemon that no longer does it (STYLE.md point 18).
//
// A heartbeat says the loop runs, not that what it waits on is healthy: each
// loop marks while it waits on NATS or Agora with a bounded wait, or its
// part's max silence covers the longest wait that is still legitimate, so
// an outage of a dependency never gets the daemon restarted.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Beater is a loop's heartbeat: when it last showed it runs. The zero time
// means not yet.
type Beater interface {
	LastBeat() time.Time
}

// DefaultCheckInterval is how often the parts are looked at when systemd's
// watchdog is off: stalls are still logged and reported by Stalled.
const DefaultCheckInterval = 5 * time.Second

// Config is how a Watchdog talks to systemd; the zero value is the real one.
type Config struct {
	// Notify sends one state line to systemd; nil means sd_notify
	// (NOTIFY_SOCKET), which does nothing outside systemd.
	Notify func(state string) error
	// Interval is the time between pings; zero means half of systemd's
	// WATCHDOG_USEC, and no pings when systemd set none.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// part is one registered loop.
type part struct {
	name       string
	src        Beater
	maxSilence time.Duration
	stalled    bool // as last logged by Run
}

// Watchdog holds the parts and pings systemd while all of them are fresh.
type Watchdog struct {
	notify func(string) error
	now    func() time.Time
	log    *zap.Logger

	interval time.Duration // between pings; 0: systemd's watchdog is off
	check    time.Duration // between looks at the parts

	mu      sync.Mutex
	parts   []*part
	started time.Time // a part that never beat is fresh until maxSilence after this

	notifyFailing bool   // the last ping failed (logged once per streak); Run's goroutine only
	checked       func() // tests: called after each look, outside the lock
}

// New returns a Watchdog with no parts. It reads systemd's watchdog
// setting (WATCHDOG_USEC, WATCHDOG_PID) when cfg.Interval is zero.
func New(cfg Config, log *zap.Logger) (*Watchdog, error) {
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watchdog{notify: cfg.Notify, now: cfg.Now, log: log.Named("watchdog"), interval: cfg.Interval}
	if w.notify == nil {
		w.notify = func(state string) error {
			_, err := daemon.SdNotify(false, state)
			return err
		}
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.interval < 0 {
		return nil, fmt.Errorf("watchdog interval %s: must not be negative", w.interval)
	}
	if w.interval == 0 {
		usec, err := daemon.SdWatchdogEnabled(false)
		if err != nil {
			return nil, fmt.Errorf("read systemd watchdog setting: %w", err)
		}
		w.interval = usec / 2
	}
	w.check = w.interval
	if w.check == 0 {
		w.check = DefaultCheckInterval
	}
	w.started = w.now()
	return w, nil
}

// Add registers a loop under name: it counts as stalled once src has not
// beaten for longer than maxSilence. Add every part before Run.
func (w *Watchdog) Add(name string, src Beater, maxSilence time.Duration) error {
	if name == "" || src == nil || maxSilence <= 0 {
		return errors.New("watchdog part: a name, a heartbeat and a positive max silence are required")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.parts {
		if p.name == name {
			return fmt.Errorf("watchdog part %q: registered twice", name)
		}
	}
	w.parts = append(w.parts, &part{name: name, src: src, maxSilence: maxSilence})
	return nil
}

// Interval returns the time between pings, 0 when systemd's watchdog is off.
func (w *Watchdog) Interval() time.Duration { return w.interval }

// Stalled names the parts whose heartbeat is older than their max
// silence, in the order they were added; nil when all are fresh. It reads
// the heartbeats now, so /readyz sees a stall even between two pings and
// when systemd's watchdog is off.
func (w *Watchdog) Stalled() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var out []string
	for _, p := range w.parts {
		if _, stale := w.silence(p, now); stale {
			out = append(out, p.name)
		}
	}
	return out
}

// silence is how long p has been quiet at now, and whether that is longer
// than it may be. A part that never beat is counted from the watchdog's
// start, so a loop that never starts is caught too.
func (w *Watchdog) silence(p *part, now time.Time) (time.Duration, bool) {
	last := p.src.LastBeat()
	if last.Before(w.started) {
		last = w.started
	}
	d := now.Sub(last)
	return d, d > p.maxSilence
}

// Run looks at the parts every interval until ctx ends, pinging systemd
// (WATCHDOG=1) each time all of them are fresh, and logging once when a
// part stalls and once when it beats again. With systemd's watchdog off it
// only logs.
func (w *Watchdog) Run(ctx context.Context) error {
	if w.interval > 0 {
		w.log.Info("systemd watchdog enabled", zap.Duration("interval", 2*w.interval), zap.Strings("parts", w.names()))
	}
	t := time.NewTicker(w.check)
	defer t.Stop()
	for {
		w.step()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// step is one look at the parts: log changes, ping if all are fresh.
func (w *Watchdog) step() {
	w.mu.Lock()
	now := w.now()
	fresh := true
	for _, p := range w.parts {
		quiet, stale := w.silence(p, now)
		if stale {
			fresh = false
		}
		switch {
		case stale && !p.stalled:
			w.log.Error("part stalled: its loop stopped marking its heartbeat; pings to systemd stop, so systemd restarts the service after WatchdogSec",
				zap.String("part", p.name), zap.Duration("silence", quiet), zap.Duration("max_silence", p.maxSilence),
				zap.Bool("systemd_watchdog", w.interval > 0))
		case !stale && p.stalled:
			w.log.Info("part beats again", zap.String("part", p.name), zap.Duration("max_silence", p.maxSilence))
		}
		p.stalled = stale
	}
	w.mu.Unlock()
	if fresh && w.interval > 0 {
		err := w.notify(daemon.SdNotifyWatchdog)
		if err != nil && !w.notifyFailing {
			w.log.Warn("ping systemd watchdog", zap.Error(err))
		}
		w.notifyFailing = err != nil
	}
	if w.checked != nil {
		w.checked()
	}
}

func (w *Watchdog) names() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.parts))
	for i, p := range w.parts {
		out[i] = p.name
	}
	return out
}
