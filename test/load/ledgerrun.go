package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// ledgerPhase is one burst against a fresh gateway.
type ledgerPhase struct {
	ledgerOn bool
	burst    burstResult
	cpuPerEv float64 // the gateway's CPU µs per 200, NATS included (embedded)
	peakRSS  int64   // VmHWM over the burst, bytes; -1 unknown
	stream   uint64  // messages in the stream once caught up
	streamOK bool    // the 200s, plus the derived messages with the ledger on
	// Ledger on only:
	watch    lagWatch // the largest lag seen during the burst
	catchUp  time.Duration
	caughtUp bool
	final    ledgerLag
	err      error // a phase that could not finish
}

// ledgerMemory is the memory phase: many open sessions in the bucket.
type ledgerMemory struct {
	open       int
	fill       burstResult
	fillPeak   int64 // VmHWM while filling, bytes
	fillLag    ledgerLag
	fillCaught time.Duration
	restart    int64 // VmHWM after a restart on the filled store, caught up and settled
	restartRSS int64 // VmRSS then
	restartLag ledgerLag
	offPeak    int64 // VmHWM after a restart on that store with the ledger off, settled
	err        error
}

// ledgerResult is everything the ledger report shows.
type ledgerResult struct {
	cfg    ledgerConfig
	info   machine
	work   ledgerWorkload
	phases []ledgerPhase
	memory *ledgerMemory
}

// runLedgerBench runs the bursts, then the memory phase, and returns the
// Markdown report, partial if err is not nil.
func runLedgerBench(ctx context.Context, sess *session, cfg ledgerConfig) (string, error) {
	res := &ledgerResult{cfg: cfg, info: gatherMachine(ctx), work: newLedgerWorkload(cfg.sessions, cfg.active, 1)}
	l, err := sess.launcher("ledger")
	if err != nil {
		return "", err
	}
	runErr := res.run(ctx, l, sess.secret, sess.stderr)
	if err := l.stopAll(); err != nil && runErr == nil {
		runErr = fmt.Errorf("stop servers: %w", err)
	}
	res.info.loadAfter = readLoadavg()
	var b strings.Builder
	writeLedgerReport(&b, res, runErr)
	return b.String(), runErr
}

// run fills res phase by phase; a phase that fails ends the run.
func (res *ledgerResult) run(ctx context.Context, l *launcher, secret string, progress io.Writer) error {
	for i, on := range res.cfg.phases {
		p := res.runPhase(ctx, l, secret, filepath.Join(l.dir, fmt.Sprintf("phase%d", i+1)), on)
		res.phases = append(res.phases, p)
		fmt.Fprintf(progress, "%s  ledger %-3s %6.0f ev/s  p99 %6.2f ms  errors %d  catch-up %s\n", time.Now().Format("15:04:05"),
			onOff(on), p.burst.eventsPerSecond(), millis(p.burst.latency.P99), p.burst.errors, p.catchUpCell())
		if p.err != nil {
			return p.err
		}
	}
	if res.cfg.open == 0 {
		return nil
	}
	res.memory = res.runMemory(ctx, l, secret, filepath.Join(l.dir, "open"))
	return res.memory.err
}

// runPhase starts a fresh gateway, sends the workload once and, with the
// ledger on, waits for it to catch up.
func (res *ledgerResult) runPhase(ctx context.Context, l *launcher, secret, stateDir string, on bool) (p ledgerPhase) {
	p.ledgerOn, p.peakRSS = on, -1
	gw, err := l.startLedgerGateway(ctx, stateDir, on)
	if err != nil {
		p.err = err
		return p
	}
	defer func() {
		if err := gw.stop(); err != nil && p.err == nil {
			p.err = err
		}
	}()
	if m, err := scrapeMetrics(ctx, gw.admin); err == nil {
		if lag, err := readLedgerLag(m); err == nil && lag.enabled != on {
			p.err = fmt.Errorf("ledger phase %s: the gateway reports ncs_gateway_ledger_enabled %t", onOff(on), lag.enabled)
			return p
		}
	}
	_ = resetPeakRSS(gw.pid()) // when refused, the peak also covers the start: still an upper bound
	cpu0, _ := procCPU(gw.pid())
	stop, watched := make(chan struct{}), make(chan struct{})
	if on {
		go watchLag(ctx, gw.admin, 500*time.Millisecond, &p.watch, stop, watched)
	} else {
		close(watched)
	}
	p.burst, err = sendBurst(ctx, gw.url, secret, res.cfg.c, res.work.notes)
	end := time.Now()
	close(stop)
	<-watched
	if cpu1, cerr := procCPU(gw.pid()); cerr == nil {
		p.cpuPerEv = perEvent(cpu1-cpu0, int64(p.burst.ok))
	}
	if rss, rerr := procPeakRSS(gw.pid()); rerr == nil {
		p.peakRSS = rss
	}
	if err != nil {
		p.err = err
		return p
	}
	want := uint64(p.burst.ok)
	if on {
		var werr error
		p.catchUp, p.final, p.caughtUp, werr = waitCaughtUp(ctx, gw.admin, end, res.cfg.waitMax)
		if werr != nil {
			p.err = fmt.Errorf("ledger phase on: %w", werr)
			return p
		}
		// What the workload calls for, not what the ledger says it did: one
		// completed per session, one flagged per abnormal exit.
		want += uint64(res.work.wantCompleted + res.work.wantAbnormal)
	}
	p.stream, p.streamOK, p.err = waitStream(ctx, gw.nats.url, want, 0)
	return p
}

// runMemory opens res.cfg.open sessions through the webhook, waits for the
// ledger to apply them, then restarts the gateway on that store and reads
// its peak RSS once it holds them all and idled; then once more with the
// ledger off, for the baseline.
func (res *ledgerResult) runMemory(ctx context.Context, l *launcher, secret, stateDir string) *ledgerMemory {
	m := &ledgerMemory{open: res.cfg.open, fillPeak: -1, restart: -1, restartRSS: -1, offPeak: -1}
	gw, err := l.startLedgerGateway(ctx, stateDir, true)
	if err != nil {
		m.err = err
		return m
	}
	m.fill, err = sendBurst(ctx, gw.url, secret, res.cfg.c, openSessionNotes(res.cfg.open, 2))
	end := time.Now()
	if err == nil {
		m.fillCaught, _, _, err = waitCaughtUp(ctx, gw.admin, end, 5*time.Minute)
	}
	if err == nil {
		m.fillLag, err = waitSessions(ctx, gw.admin, float64(m.fill.ok), time.Minute)
	}
	if rss, rerr := procPeakRSS(gw.pid()); rerr == nil {
		m.fillPeak = rss
	}
	if stopErr := gw.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		m.err = fmt.Errorf("fill %d open sessions: %w", res.cfg.open, err)
		return m
	}
	if m.err = m.restartOn(ctx, l, stateDir, res.cfg.rssSettle); m.err != nil {
		return m
	}
	m.err = m.restartOff(ctx, l, stateDir, res.cfg.rssSettle)
	return m
}

// restartOn restarts the gateway, ledger on, on the filled store and reads
// its peak RSS once the ledger holds every open session and idled.
func (m *ledgerMemory) restartOn(ctx context.Context, l *launcher, stateDir string, settle time.Duration) (err error) {
	gw, err := l.startLedgerGateway(ctx, stateDir, true)
	if err != nil {
		return fmt.Errorf("restart on %d open sessions: %w", m.open, err)
	}
	defer func() {
		if stopErr := gw.stop(); err == nil {
			err = stopErr
		}
	}()
	// Caught up with the stream is not enough: the ledger reads the bucket
	// at start, and its sessions gauge says when every record is in.
	if m.restartLag, err = waitSessions(ctx, gw.admin, m.fillLag.recording, 5*time.Minute); err != nil {
		return fmt.Errorf("restart on %d open sessions: %w", m.open, err)
	}
	sleepCtx(ctx, settle, nil)
	m.restart, m.restartRSS = peakAndRSS(gw.pid())
	return nil
}

// restartOff restarts the gateway with the ledger off on the same store:
// the embedded NATS with the filled bucket alone, the baseline of the
// ledger's own memory.
func (m *ledgerMemory) restartOff(ctx context.Context, l *launcher, stateDir string, settle time.Duration) (err error) {
	gw, err := l.startLedgerGateway(ctx, stateDir, false)
	if err != nil {
		return fmt.Errorf("restart with the ledger off: %w", err)
	}
	defer func() {
		if stopErr := gw.stop(); err == nil {
			err = stopErr
		}
	}()
	sleepCtx(ctx, settle, nil)
	m.offPeak, _ = peakAndRSS(gw.pid())
	return nil
}

// peakAndRSS reads VmHWM and VmRSS, -1 where unknown.
func peakAndRSS(pid int) (peak, rss int64) {
	peak, rss = -1, -1
	if v, err := procPeakRSS(pid); err == nil {
		peak = v
	}
	if v, err := procRSS(pid); err == nil {
		rss = v
	}
	return peak, rss
}

// onOff names a phase.
func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// catchUpCell says how long the ledger took to reach lag 0 after the burst.
func (p ledgerPhase) catchUpCell() string {
	switch {
	case !p.ledgerOn:
		return "-"
	case p.caughtUp:
		return p.catchUp.Round(100 * time.Millisecond).String()
	default:
		return fmt.Sprintf("not after %s (lag %.0f)", p.catchUp.Round(time.Second), p.final.messages)
	}
}
