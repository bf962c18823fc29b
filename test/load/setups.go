package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// runEcho measures baseline 1 in its own process.
func (s *suite) runEcho(ctx context.Context, setup string, c int) error {
	echo, err := s.l.startEcho(ctx)
	if err != nil {
		return err
	}
	m, err := s.measure(ctx, setup, targetEcho, echo, nil, c, s.cfg.duration)
	if err != nil {
		return err
	}
	s.rows = append(s.rows, row{setup: setup, target: targetEcho, c: c, m: m})
	return echo.stop()
}

// runExternal: echo; then the minimal receiver and the gateway against one
// fresh nats-server; then the gateway at log level info, bracketed by the
// same minimal receiver again.
func (s *suite) runExternal(ctx context.Context, dir string, c int) error {
	setup := setupExternal
	if err := s.runEcho(ctx, setup, c); err != nil {
		return err
	}
	ns, err := s.l.startNATSServer(ctx, filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	minimal, err := s.l.startMinimal(ctx, ns.url)
	if err != nil {
		return err
	}
	gw, err := s.l.startGateway(ctx, gatewayOptions{natsURL: ns.url, stateDir: filepath.Join(dir, "gateway"), logLevel: "warn"})
	if err != nil {
		return err
	}
	minSent, gwSent, err := s.runPair(ctx, setup, c, minimal, ns, gw.target, ns)
	if err != nil {
		return err
	}
	sent := minSent + gwSent
	if err := gw.stop(); err != nil {
		return err
	}
	targets := "minimal + gateway"
	if contains(s.cfg.infoAt, c) {
		gi, err := s.l.startGateway(ctx, gatewayOptions{natsURL: ns.url, stateDir: filepath.Join(dir, "gateway-info"), logLevel: "info"})
		if err != nil {
			return err
		}
		minSent, giSent, err := s.runPairAs(ctx, setup, c, targetMinimalInfo, targetGatewayInfo, minimal, ns, gi.target, ns)
		if err != nil {
			return err
		}
		sent += minSent + giSent
		targets += " + minimal + gateway (info)"
		if err := gi.stop(); err != nil {
			return err
		}
	}
	s.checkStream(ctx, setup, c, ns.url, sent, targets)
	return nil
}

// runEmbedded: echo; then the gateway with its embedded NATS and the
// minimal receiver with an embedded NATS of its own (same durability: file
// store, fsync before every ack; each in its own store), each counted in
// its own stream; then the gateway at log level info on the same store,
// bracketed by the same minimal receiver on its (as much grown) store.
// The gateway's embedded server lets TCP clients only read, so the minimal
// cannot share it, and giving it its own keeps the comparison fair: both
// pay for an in-process server and its fsyncs.
func (s *suite) runEmbedded(ctx context.Context, dir string, c int) error {
	setup := setupEmbedded
	if err := s.runEcho(ctx, setup, c); err != nil {
		return err
	}
	state := filepath.Join(dir, "gateway")
	gw, err := s.l.startGateway(ctx, gatewayOptions{stateDir: state, logLevel: "warn"})
	if err != nil {
		return err
	}
	minimal, minNATS, err := s.l.startMinimalEmbedded(ctx, filepath.Join(dir, "minimal-nats"))
	if err != nil {
		return err
	}
	minSent, gwSent, err := s.runPair(ctx, setup, c, minimal, minNATS, gw.target, gw.nats)
	if err != nil {
		return err
	}
	s.checkStream(ctx, setup, c, gw.nats.url, gwSent, "gateway, its embedded NATS")
	if err := gw.stop(); err != nil {
		return err
	}
	minTargets := "minimal, its own embedded NATS"
	if contains(s.cfg.infoAt, c) {
		gi, err := s.l.startGateway(ctx, gatewayOptions{stateDir: state, logLevel: "info"})
		if err != nil {
			return err
		}
		minInfo, giSent, err := s.runPairAs(ctx, setup, c, targetMinimalInfo, targetGatewayInfo, minimal, minNATS, gi.target, gi.nats)
		if err != nil {
			return err
		}
		minSent += minInfo
		minTargets += ", around both gateways"
		gwSent += giSent
		s.checkStream(ctx, setup, c, gi.nats.url, gwSent, "gateway + gateway (info), its embedded NATS, same store")
	}
	s.checkStream(ctx, setup, c, minNATS.url, minSent, minTargets)
	return minimal.stop()
}

// runPair measures the minimal receiver and the gateway in the order
// minimal (d/2), gateway (d), minimal (d/2), and pools the minimal
// receiver's halves: both targets' windows are centred on the same moment,
// so a drift in the machine or in the store's size during the run weighs
// on both alike. It returns the 200s each of them answered. A NATS host
// that is the target's own process counts as inside it.
func (s *suite) runPair(ctx context.Context, setup string, c int, minimal *target, minNATS *natsHost, gw *target, gwNATS *natsHost) (minSent, gwSent uint64, err error) {
	return s.runPairAs(ctx, setup, c, targetMinimal, targetGateway, minimal, minNATS, gw, gwNATS)
}

// runPairAs is runPair with the two rows' target names.
func (s *suite) runPairAs(ctx context.Context, setup string, c int, minName, gwName string, minimal *target, minNATS *natsHost, gw *target, gwNATS *natsHost) (minSent, gwSent uint64, err error) {
	half := s.cfg.duration / 2
	m1, err := s.measure(ctx, setup, minName+" (1st half)", minimal, minNATS, c, half)
	if err != nil {
		return 0, 0, err
	}
	g, err := s.measure(ctx, setup, gwName, gw, gwNATS, c, s.cfg.duration)
	if err != nil {
		return 0, 0, err
	}
	m2, err := s.measure(ctx, setup, minName+" (2nd half)", minimal, minNATS, c, half)
	if err != nil {
		return 0, 0, err
	}
	s.rows = append(s.rows,
		row{setup: setup, target: minName, c: c, m: pool(m1, m2), natsSeparate: minNATS.proc != minimal.proc, natsInside: minNATS.proc == minimal.proc},
		row{setup: setup, target: gwName, c: c, m: g, natsSeparate: gwNATS.proc != gw.proc, natsInside: gwNATS.proc == gw.proc},
	)
	return uint64(m1.res.OK + m2.res.OK), uint64(g.res.OK), nil
}

// measure runs one cell and prints a progress line.
func (s *suite) measure(ctx context.Context, setup, name string, t *target, nh *natsHost, c int, d time.Duration) (measurement, error) {
	m, err := measure(ctx, t, nh, s.base, c, s.cfg.warmup, d)
	if err != nil {
		return m, fmt.Errorf("measure %s: %w", name, err)
	}
	r := m.res
	fmt.Fprintf(s.progress, "%s  %-13s c=%-3d %-28s %8.0f ev/s  p50 %6.2f  p99 %6.2f ms  errors %d\n",
		time.Now().Format("15:04:05"), strings.Fields(setup)[0], c, name, r.EventsPerSecond(),
		millis(r.Latency.P50), millis(r.Latency.P99), r.Errors)
	return m, nil
}

// checkStream waits (up to 15 s, for anything spooled to be forwarded)
// until the stream at url holds want messages, and records the outcome.
func (s *suite) checkStream(ctx context.Context, setup string, c int, url string, want uint64, targets string) {
	chk := streamCheck{setup: setup, c: c, want: want, targets: targets}
	deadline := time.Now().Add(15 * time.Second)
	for {
		chk.got, chk.err = streamMsgs(ctx, url)
		if (chk.err == nil && chk.got == want) || time.Now().After(deadline) || !sleepCtx(ctx, 200*time.Millisecond, nil) {
			break
		}
	}
	s.checks = append(s.checks, chk)
}
