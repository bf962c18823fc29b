package main

import (
	"fmt"
	"io"
	"runtime"
)

// flatness compares one resource's peak in the last third of the soak with
// its peak in the first third.
type flatness struct {
	name        string
	first, last float64
	tol         float64
	ok          bool
}

// flatVerdicts judges RSS and heap (within memTol) and goroutines and open
// fds (within countTol): flat when the last third's max is at most the
// first third's max times 1+tol. It needs at least 3 samples; failed
// scrapes (-1) are left out.
func flatVerdicts(samples []soakSample, memTol, countTol float64) []flatness {
	k := len(samples) / 3
	if k == 0 {
		return nil
	}
	first, last := samples[:k], samples[len(samples)-k:]
	peak := func(ss []soakSample, v func(soakSample) float64) float64 {
		m := -1.0
		for _, s := range ss {
			if s.err == nil {
				m = max(m, v(s))
			}
		}
		return m
	}
	metrics := []struct {
		name string
		tol  float64
		v    func(soakSample) float64
	}{
		{"RSS", memTol, func(s soakSample) float64 { return float64(s.rss) }},
		{"heap in use", memTol, func(s soakSample) float64 { return s.heapInuse }},
		{"goroutines", countTol, func(s soakSample) float64 { return s.goroutines }},
		{"open fds", countTol, func(s soakSample) float64 { return s.fds }},
	}
	out := make([]flatness, 0, len(metrics))
	for _, m := range metrics {
		f := flatness{name: m.name, first: peak(first, m.v), last: peak(last, m.v), tol: m.tol}
		f.ok = f.first >= 0 && f.last >= 0 && f.last <= f.first*(1+m.tol)
		out = append(out, f)
	}
	return out
}

// writeSoakReport writes the soak's Markdown report: the time series, the
// flatness verdicts and the end checks.
func writeSoakReport(w io.Writer, r *soakResult, runErr error) {
	cfg, mc := r.cfg, r.info
	title := "embedded NATS"
	if cfg.external {
		title = "external nats-server"
	}
	fmt.Fprintf(w, "## ncs-gateway soak, %s, %s\n\n", title, mc.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- command: `%s`\n", cfg.commandLine)
	fmt.Fprintf(w, "- machine: nproc %s, %s, %s/%s; load average %s before, %s after (shared: other jobs ran on the same cores)\n",
		mc.nproc, orUnknown(mc.cpuModel), runtime.GOOS, runtime.GOARCH, mc.loadBefore, mc.loadAfter)
	setup := "embedded NATS (durable default: JetStream fsync before every ack; its memory is in the gateway's)"
	if cfg.external {
		setup = "an external nats-server (the gateway's figures exclude NATS)"
	}
	if cfg.dupWindow > 0 {
		setup += fmt.Sprintf(", stream duplicate window %s", cfg.dupWindow)
	}
	fmt.Fprintf(w, "- gateway with %s, log level info; %.0f notifications/s paced, c=%d on keep-alive connections, %s after %s warm-up; a sample every %s\n",
		setup, cfg.rate, cfg.c, cfg.duration, cfg.warmup, cfg.every)
	g := r.gen
	fmt.Fprintf(w, "- whole window: %.0f events/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms (p99 from schedule %.2f ms); sent %d, 200s %d (spooled %d), errors %d\n",
		g.EventsPerSecond(), millis(g.Latency.P50), millis(g.Latency.P99), millis(g.Latency.P999),
		millis(g.SchedLatency.P99), g.Sent, g.OK, g.Spooled, g.Errors)

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| t s | events/s | p99 ms | errors | RSS MB | heap in use MB | goroutines | open fds | spool depth |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, s := range r.samples {
		fmt.Fprintf(w, "| %.0f | %.0f | %.2f | %d | %s |\n", s.t.Seconds(), s.events, millis(s.p99), s.errs, gaugeCells(s.gwSample))
	}
	fmt.Fprintf(w, "| end | - | - | - | %s |\n", gaugeCells(r.final))

	fmt.Fprintln(w, "\nVerdicts:")
	fmt.Fprintln(w)
	vs := flatVerdicts(r.samples, cfg.memTol, cfg.countTol)
	if vs == nil {
		fmt.Fprintln(w, "- flatness: UNKNOWN, fewer than 3 samples")
	}
	for _, v := range vs {
		fmt.Fprintf(w, "- %s: last third's max %s vs first third's %s (limit +%.0f%%): %s\n",
			v.name, flatValue(v.name, v.last), flatValue(v.name, v.first), v.tol*100, verdictWord(v.ok, "flat", "GROWING"))
	}
	f := r.final
	fmt.Fprintf(w, "- spool depth at the end: %s %s\n", gaugeValue(f.spool, f.err), verdictWord(f.err == nil && f.spool == 0, "(empty)", "(NOT EMPTY)"))
	fmt.Fprintf(w, "- stream: %d messages for %d 200s%s: %s\n", r.stream, g.OK, slackNote(uint64(g.Errors)),
		verdictWord(r.streamOK, "ok", "MISMATCH"))
	if g.FirstError != "" {
		fmt.Fprintf(w, "- first error: %s\n", g.FirstError)
	}
	fmt.Fprintln(w, "\nNotes: each row covers the interval ending at t (events/s and p99 of its 200s); RSS is VmRSS, the rest the admin /metrics at that moment. Heap in use moves with the garbage collector's cycle, so single samples are noisy; the verdict compares peaks.")
	if runErr != nil {
		fmt.Fprintf(w, "\n**The soak stopped early: %s**\n", firstLine(runErr.Error()))
	}
}

// gaugeCells are the RSS, heap, goroutines, fds and spool cells of a row.
func gaugeCells(s gwSample) string {
	return fmt.Sprintf("%s | %s | %s | %s | %s", mb(float64(s.rss)), gaugeMB(s.heapInuse, s.err),
		gaugeValue(s.goroutines, s.err), gaugeValue(s.fds, s.err), gaugeValue(s.spool, s.err))
}

func gaugeValue(v float64, err error) string {
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.0f", v)
}

func gaugeMB(v float64, err error) string {
	if err != nil {
		return "?"
	}
	return mb(v)
}

func flatValue(name string, v float64) string {
	if v < 0 {
		return "?"
	}
	if name == "RSS" || name == "heap in use" {
		return mb(v) + " MB"
	}
	return fmt.Sprintf("%.0f", v)
}
