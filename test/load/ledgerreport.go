package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// The aims for the ledger.
const (
	ledgerMinThroughput = 0.80 // events/s with the ledger on, at least this share of off
	ledgerMaxP99        = 1.20 // p99 with the ledger on, at most this multiple of off
)

// burstStats pools bursts: 200s over their summed wall time, and the
// percentiles of all their samples together.
type burstStats struct {
	ok      int
	wall    time.Duration
	latency latencySummary
}

func (s burstStats) eventsPerSecond() float64 {
	if s.wall <= 0 {
		return 0
	}
	return float64(s.ok) / s.wall.Seconds()
}

// poolBursts pools the phases with the ledger on (or off).
func poolBursts(phases []ledgerPhase, on bool) burstStats {
	var s burstStats
	var all []time.Duration
	for _, p := range phases {
		if p.ledgerOn != on {
			continue
		}
		s.ok += p.burst.ok
		s.wall += p.burst.wall
		all = append(all, p.burst.samples...)
	}
	s.latency = summarize(slices.Clone(all))
	return s
}

// ledgerComparison is the ledger's cost on the webhook: on against off.
type ledgerComparison struct {
	on, off         burstStats
	throughputRatio float64 // on / off events/s
	p99Ratio        float64 // on / off p99
}

// compareLedger pools each side's phases and compares them.
func compareLedger(phases []ledgerPhase) ledgerComparison {
	c := ledgerComparison{on: poolBursts(phases, true), off: poolBursts(phases, false)}
	if eps := c.off.eventsPerSecond(); eps > 0 {
		c.throughputRatio = c.on.eventsPerSecond() / eps
	}
	if c.off.latency.P99 > 0 {
		c.p99Ratio = float64(c.on.latency.P99) / float64(c.off.latency.P99)
	}
	return c
}

// met reports whether both aims hold.
func (c ledgerComparison) met() (throughput, p99 bool) {
	return c.throughputRatio >= ledgerMinThroughput, c.p99Ratio > 0 && c.p99Ratio <= ledgerMaxP99
}

// offSpread is the slowest and fastest events/s of the bursts with the
// ledger off, and how many there were: the same work twice, so their
// difference is the machine's noise.
func offSpread(phases []ledgerPhase) (lo, hi float64, n int) {
	for _, p := range phases {
		if p.ledgerOn || p.burst.ok == 0 {
			continue
		}
		eps := p.burst.eventsPerSecond()
		if n == 0 || eps < lo {
			lo = eps
		}
		hi = max(hi, eps)
		n++
	}
	return lo, hi, n
}

// mib formats bytes as MiB, "-" when unknown.
func mib(b int64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

// writeLedgerReport writes the Markdown report of the ledger benchmark.
func writeLedgerReport(w io.Writer, res *ledgerResult, runErr error) {
	cfg, mc := res.cfg, res.info
	fmt.Fprintf(w, "## ncs-gateway session ledger benchmark, %s\n\n", mc.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- command: `%s`\n", cfg.commandLine)
	fmt.Fprintf(w, "- machine: nproc %s, %s, %s/%s; load average %s before, %s after\n",
		mc.nproc, orUnknown(mc.cpuModel), runtime.GOOS, runtime.GOARCH, mc.loadBefore, mc.loadAfter)
	fmt.Fprintf(w, "- %s\n", orUnknown(mc.goVersion))
	fmt.Fprintf(w, "- each burst: %d notifications of %d whole sessions (%d each, about %d recording at once; one in %d exits abnormally), c=%d on keep-alive connections, the same bodies every burst with notifyMs at send time\n",
		len(res.work.notes), res.work.sessions, sessionEvents, cfg.active, abnormalEvery, cfg.c)
	fmt.Fprintln(w, "- each burst against a fresh gateway and store: embedded NATS, `embedded_sync_interval: always` (fsync before every ack), log level warn, the ledger on or off (`ledger.enabled`), upload_grace 1h, stall_after 26h")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| # | ledger | 200s | errors | events/s | p50 ms | p99 ms | p99.9 ms | CPU µs/event | peak RSS MiB | max lag msgs | max lag s | lag 0 after | stream |")
	fmt.Fprintln(w, "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|")
	for i, p := range res.phases {
		b := p.burst
		lagMsgs, lagSecs := "-", "-"
		if p.ledgerOn {
			lagMsgs, lagSecs = fmt.Sprintf("%.0f", p.watch.maxMessages), fmt.Sprintf("%.1f", p.watch.maxSeconds)
		}
		stream := fmt.Sprint(p.stream)
		if !p.streamOK {
			stream += " MISMATCH"
		}
		fmt.Fprintf(w, "| %d | %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.0f | %s | %s | %s | %s | %s |\n",
			i+1, onOff(p.ledgerOn), b.ok, b.errors, b.eventsPerSecond(), millis(b.latency.P50), millis(b.latency.P99),
			millis(b.latency.P999), p.cpuPerEv, mib(p.peakRSS), lagMsgs, lagSecs, p.catchUpCell(), stream)
	}
	fmt.Fprintln(w, "\nAims:")
	fmt.Fprintln(w)
	if runErr != nil {
		fmt.Fprintln(w, "- not judged: the run stopped early (below); the rows above are what it measured.")
	} else {
		writeLedgerAims(w, res)
	}
	writeLedgerNotes(w, res, runErr)
}

// writeLedgerAims holds the run's figures against the aims.
func writeLedgerAims(w io.Writer, res *ledgerResult) {
	cfg := res.cfg
	c := compareLedger(res.phases)
	tOK, pOK := c.met()
	fmt.Fprintf(w, "- throughput with the ledger on: %.0f events/s, %.2f× off's %.0f (aim ≥ %.2f×) %s\n",
		c.on.eventsPerSecond(), c.throughputRatio, c.off.eventsPerSecond(), ledgerMinThroughput, verdict(tOK))
	fmt.Fprintf(w, "- p99 with the ledger on: %.2f ms, %.2f× off's %.2f ms (aim ≤ %.2f×) %s\n",
		millis(c.on.latency.P99), c.p99Ratio, millis(c.off.latency.P99), ledgerMaxP99, verdict(pOK))
	if lo, hi, n := offSpread(res.phases); n > 1 {
		fmt.Fprintf(w, "- noise: the %d off bursts ran at %.0f to %.0f events/s (%.0f%% apart); an on/off difference within that says more about the machine than about the ledger\n",
			n, lo, hi, 100*(hi-lo)/lo)
	}
	for i, p := range res.phases {
		if !p.ledgerOn {
			continue
		}
		fmt.Fprintf(w, "- burst %d: lag back to 0 %s after the burst (aim within %s) %s; session.completed %.0f (want %d, failed %.0f want %d), flagged abnormal_exit %.0f (want %d) %s\n",
			i+1, p.catchUpCell(), cfg.catchUp, verdict(p.caughtUp && p.catchUp <= cfg.catchUp),
			p.final.completed, res.work.wantCompleted, p.final.failed, res.work.wantFailed, p.final.abnormal, res.work.wantAbnormal,
			verdict(int(p.final.completed) == res.work.wantCompleted && int(p.final.failed) == res.work.wantFailed && int(p.final.abnormal) == res.work.wantAbnormal))
	}
	if m := res.memory; m != nil {
		fmt.Fprintf(w, "- %d open sessions (recorder_started of distinct sids, through the webhook at c=%d: %.0f events/s, %d errors, applied %s after the last): ncs_gateway_ledger_sessions{state=\"recording\"} %.0f\n",
			m.open, cfg.c, m.fill.eventsPerSecond(), m.fill.errors, m.fillCaught.Round(100*time.Millisecond), m.fillLag.recording)
		fmt.Fprintf(w, "  - peak RSS while filling: %s MiB %s\n", mib(m.fillPeak), verdict(m.fillPeak >= 0 && m.fillPeak < cfg.maxRSS))
		fmt.Fprintf(w, "  - peak RSS after a restart on that store, caught up (%.0f recording) and %s idle: %s MiB (VmRSS %s MiB) %s\n",
			m.restartLag.recording, cfg.rssSettle, mib(m.restart), mib(m.restartRSS), verdict(m.restart >= 0 && m.restart < cfg.maxRSS))
		fmt.Fprintf(w, "  - the same store with the ledger off, %s idle: %s MiB (the embedded NATS and the filled bucket without the ledger)\n", cfg.rssSettle, mib(m.offPeak))
		fmt.Fprintf(w, "  - aim: under %d MiB\n", cfg.maxRSS>>20)
	}
}

// writeLedgerNotes explains the figures and lists the errors seen.
func writeLedgerNotes(w io.Writer, res *ledgerResult, runErr error) {
	fmt.Fprintln(w, "\nNotes:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "- events/s: the burst's 200s over its wall time (first send to last answer); latency from before the request to the end of the answer, every 200, exact percentiles. The ledger's bursts are pooled against the others'.")
	fmt.Fprintln(w, "- CPU µs/event and peak RSS are the gateway's process, its embedded NATS included; peak RSS is reset (clear_refs) at the burst's start when allowed.")
	fmt.Fprintln(w, "- lag: ncs_gateway_ledger_lag_messages and _lag_seconds polled every 500 ms during the burst; \"lag 0 after\" is from the last answer until lag_messages is 0 and caught_up is 1 (polled every 100 ms).")
	fmt.Fprintln(w, "- stream: its messages once caught up; want the 200s plus, with the ledger on, the derived session.completed and session.flagged it stored.")
	for i, p := range res.phases {
		if p.burst.firstError != "" {
			fmt.Fprintf(w, "- burst %d: first error: %s\n", i+1, p.burst.firstError)
		}
		if p.watch.err != nil {
			fmt.Fprintf(w, "- burst %d: a lag scrape failed: %v\n", i+1, p.watch.err)
		}
	}
	if runErr != nil {
		fmt.Fprintf(w, "\n**The benchmark stopped early: %s**\n", firstLine(runErr.Error()))
	}
}
