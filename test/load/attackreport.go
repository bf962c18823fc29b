package main

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// writeAttackReport writes the attack's Markdown report: machine, the
// phases side by side, the attack's traffic and the checks. runErr, if
// any, is reported with what was measured.
func writeAttackReport(w io.Writer, r *attackResult, runErr error) {
	cfg, mc, p := r.cfg, r.info, r.cfg.plan
	fmt.Fprintf(w, "## ncs-gateway under attack, %s\n\n", mc.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- command: `%s`\n", cfg.commandLine)
	fmt.Fprintf(w, "- machine: nproc %s, %s, %s/%s; load average %s before, %s after (shared: other jobs ran on the same cores)\n",
		mc.nproc, orUnknown(mc.cpuModel), runtime.GOOS, runtime.GOARCH, mc.loadBefore, mc.loadAfter)
	fmt.Fprintf(w, "- gateway: external nats-server, log level info, firewall none, max_body_bytes %d; open file limit (soft/hard) %s\n",
		p.maxBody, orUnknown(r.nofile))
	if cfg.tls {
		fmt.Fprintf(w, "- TLS: the webhook serves HTTPS (self-signed P-256 certificate made at start); every client offers h2 first; negotiated: %s\n", orUnknown(r.proto))
	}
	fmt.Fprintf(w, "- valid stream: %.0f notifications/s paced, c=%d on keep-alive connections; probe: %.0f/s on a new connection each; %s warm-up (attack phase: the attack builds up meanwhile), then %s measured\n",
		cfg.rate, cfg.c, cfg.probeRate, cfg.ramp, cfg.duration)
	fmt.Fprintf(w, "- attack, all at once: %d workers forging signatures, %d+%d workers posting %d B (with Content-Length / chunked), %d slow-loris connections (one header byte per %s), %d slow-body connections (Content-Length %d, one byte per %s), %d idle keep-alive connections (one valid request each)\n",
		p.forged, p.oversize, p.oversize, p.maxBody+1, p.loris, p.interval, p.slowBody, p.maxBody, p.interval, p.idle)

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| phase | valid 200s | valid errors | p50 ms | p99 ms | p99.9 ms | p99 from schedule ms | probes ok / sent | probe p99 ms | RSS max MB | VmHWM MB | heap in use max MB | goroutines max | open fds max | failed scrapes |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, ph := range r.phases {
		v, pr, pk := ph.valid, ph.probe, ph.peaks
		hwm := mb(float64(ph.hwm))
		if ph.hwmErr != nil {
			hwm = "?"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.2f | %.2f | %.2f | %.2f | %d / %d | %.2f | %s | %s | %s | %.0f | %.0f | %d of %d |\n",
			ph.name, v.OK, v.Errors, millis(v.Latency.P50), millis(v.Latency.P99), millis(v.Latency.P999),
			millis(v.SchedLatency.P99), pr.OK, pr.OK+pr.Errors, millis(pr.Latency.P99),
			mb(float64(pk.rss)), hwm, mb(pk.heapInuse), pk.goroutines, pk.fds, pk.failed, pk.n)
	}
	a := r.after
	fmt.Fprintf(w, "| %s after the attack stopped | - | - | - | - | - | - | - | - | %s | - | %s | %.0f | %.0f | %s |\n",
		r.cfg.settle, mb(float64(a.rss)), mb(a.heapInuse), a.goroutines, a.fds, failedCell(a.err))

	st := r.st
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| attack | size | requests or connections | outcomes (status, or how the connection ended) | server kept a connection p50 / max s |")
	fmt.Fprintln(w, "|---|--:|--:|---|--:|")
	fmt.Fprintf(w, "| forged signatures | %d workers | %d | %s | - |\n", p.forged, st.forged.total(), &st.forged)
	fmt.Fprintf(w, "| oversized, Content-Length | %d workers | %d | %s | - |\n", p.oversize, st.oversizeCL.total(), &st.oversizeCL)
	fmt.Fprintf(w, "| oversized, chunked | %d workers | %d | %s | - |\n", p.oversize, st.oversizeChunked.total(), &st.oversizeChunked)
	fmt.Fprintf(w, "| slow-loris header | %d conns | %d | %s | %s |\n", p.loris, st.loris.total(), &st.loris, lifeCell(&st.lorisLife))
	fmt.Fprintf(w, "| slow body | %d conns | %d | %s | %s |\n", p.slowBody, st.slowBody.total(), &st.slowBody, lifeCell(&st.slowBodyLife))
	idleClosed := st.idleLife.summary().N
	fmt.Fprintf(w, "| idle keep-alive | %d conns | %d | %s; not answered by the end: %d; after the 200, closed by the server: %d, open until the end: %d | %s |\n",
		p.idle, st.idle.total(), &st.idle, int64(p.idle)-st.idle.total(), idleClosed, st.idleOK.Load()-int64(idleClosed), lifeCell(&st.idleLife))

	fmt.Fprintln(w, "\nChecks:")
	fmt.Fprintln(w)
	writeAttackChecks(w, r)
	for _, t := range []*tally{&st.forged, &st.oversizeCL, &st.oversizeChunked, &st.loris, &st.slowBody, &st.idle} {
		if t.other != "" {
			fmt.Fprintf(w, "- first unclassified transport error: %s\n", t.other)
		}
	}
	for _, ph := range r.phases {
		if ph.valid.FirstError != "" {
			fmt.Fprintf(w, "- %s, first valid-stream error: %s\n", ph.name, ph.valid.FirstError)
		}
		if ph.probe.FirstError != "" {
			fmt.Fprintf(w, "- %s, first probe error: %s\n", ph.name, ph.probe.FirstError)
		}
		if ph.peaks.firstErr != nil {
			fmt.Fprintf(w, "- %s, first failed scrape of /metrics: %v\n", ph.name, ph.peaks.firstErr)
		}
	}
	fmt.Fprintln(w, "\nNotes: latencies are from the send (p99 from schedule: from the moment the pacing meant to send, which also counts requests queued behind a stalled one). RSS max is VmRSS sampled every second; VmHWM is the kernel's peak over the phase (reset at its start). Goroutines, heap and open fds come from the admin /metrics, scraped every second. The attack runs in the load tool's process, on the same cores as the gateway and nats-server.")
	if runErr != nil {
		fmt.Fprintf(w, "\n**The attack run stopped early: %s**\n", firstLine(runErr.Error()))
	}
}

// writeAttackChecks writes the verdicts: the stream holds exactly the
// notifications answered 200, the rejections match the attack, nothing
// valid was lost.
func writeAttackChecks(w io.Writer, r *attackResult) {
	st := r.st
	var validOK, validErr int64
	for _, ph := range r.phases {
		validOK += ph.valid.OK + ph.probe.OK
		validErr += ph.valid.Errors + ph.probe.Errors
	}
	fmt.Fprintf(w, "- stream: %d messages; 200s answered: %d valid stream and probes + %d idle connections' requests = %d%s: %s\n",
		r.stream, validOK, st.idleOK.Load(), r.want, slackNote(r.unknown()), verdictWord(r.streamOK, "ok (nothing forged published, nothing valid lost)", "MISMATCH"))
	if r.final != nil {
		m := r.final
		accepted, acceptedOK := m.sum("ncs_gateway_webhook_accepted_total")
		rejected := func(reason string) string {
			return countCell(m.sum("ncs_gateway_webhook_rejected_total", `reason="`+reason+`"`))
		}
		fmt.Fprintf(w, "- accepted_total %s %s; rejected_total: bad_signature %s (forged 401s seen %d), body_too_large %s (413s seen %d), read_error %s (slow bodies cut %d), missing_signature %s, unavailable %s\n",
			countCell(accepted, acceptedOK), verdictWord(acceptedOK && uint64(accepted) == uint64(r.stream), "= stream", "≠ stream"),
			rejected("bad_signature"), st.forged.count("401"),
			rejected("body_too_large"), st.oversizeCL.count("413")+st.oversizeChunked.count("413"),
			rejected("read_error"), st.slowBody.count("HTTP 400"),
			rejected("missing_signature"), rejected("unavailable"))
	}
	fmt.Fprintf(w, "- valid notifications not answered 200 (stream and probes, both phases): %d %s\n", validErr, verdictWord(validErr == 0, "(met)", "(not met)"))
	if len(r.phases) == 2 {
		b, a := r.phases[0].valid.Latency.P99, r.phases[1].valid.Latency.P99
		fmt.Fprintf(w, "- valid p99 under attack %.2f ms vs %.2f ms baseline (×%.1f); probe p99 %.2f ms vs %.2f ms\n",
			millis(a), millis(b), ratio(a, b), millis(r.phases[1].probe.Latency.P99), millis(r.phases[0].probe.Latency.P99))
	}
}

func failedCell(err error) string {
	if err != nil {
		return "1 of 1"
	}
	return "0 of 1"
}

func lifeCell(l *lifetimes) string {
	s := l.summary()
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f", s.P50.Seconds(), s.Max.Seconds())
}

func slackNote(unknown uint64) string {
	if unknown == 0 {
		return ""
	}
	return fmt.Sprintf(" (+ up to %d valid requests sent whose answer never came: timeouts, or cut by the attack's end)", unknown)
}

func verdictWord(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return "**" + no + "**"
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// countCell prints a scraped count, or says the series was missing.
func countCell(v float64, ok bool) string {
	if !ok {
		return "MISSING"
	}
	return fmt.Sprintf("%.0f", v)
}
