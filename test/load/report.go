package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Targets of the issue, checked at every concurrency and printed as verdicts.
const (
	wantRatio = 0.9
	wantP99   = 10 * time.Millisecond
)

// machine describes where and when the suite ran.
type machine struct {
	date       time.Time
	nproc      string
	cpuModel   string
	free       string
	goVersion  string
	loadBefore string
	loadAfter  string
}

// gatherMachine records the machine before the run; loadAfter is set at
// the end.
func gatherMachine(ctx context.Context) machine {
	m := machine{
		date:       time.Now().UTC(),
		nproc:      commandOutput(ctx, "nproc"),
		free:       commandOutput(ctx, "free", "-h"),
		goVersion:  commandOutput(ctx, "go", "version"),
		loadBefore: readLoadavg(),
	}
	if m.nproc == "" {
		m.nproc = fmt.Sprint(runtime.NumCPU())
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

// commandOutput runs a command and returns its trimmed output, or "" when
// it cannot run (the report then says less, nothing fails).
func commandOutput(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(out), "\n") // free -h's header starts with spaces
}

// readLoadavg returns the 1, 5 and 15 minute load averages: with other work
// on the machine they say how noisy the figures are.
func readLoadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// writeReport writes the suite's Markdown report: machine, table, verdicts,
// stream checks and notes. runErr, if any, is reported with the partial
// table.
func writeReport(w io.Writer, cfg suiteConfig, mc machine, corp *corpus, rows []row, checks []streamCheck, runErr error) {
	fmt.Fprintf(w, "## ncs-gateway load suite, %s\n\n", mc.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- command: `%s`\n", cfg.commandLine)
	fmt.Fprintf(w, "- machine: nproc %s, %s, %s/%s; load average %s before, %s after\n",
		mc.nproc, orUnknown(mc.cpuModel), runtime.GOOS, runtime.GOARCH, mc.loadBefore, mc.loadAfter)
	fmt.Fprintf(w, "- %s\n", orUnknown(mc.goVersion))
	lo, med, mean, hi := corp.sizeStats()
	fmt.Fprintf(w, "- bodies: %d Cloud Recording templates (productId 3), sizes %d..%d B, median %d B, mean %d B; every request a new noticeId, signed\n",
		len(corp.templates), lo, hi, med, mean)
	fmt.Fprintf(w, "- cells: %s measured after %s warm-up; minimal receiver %s + %s around each gateway's window (warn, and info as its own pair), pooled\n",
		cfg.duration, cfg.warmup, cfg.duration/2, cfg.duration/2)
	fmt.Fprintf(w, "- minimal receiver: %s\n", minimalDescription(cfg.minimalDecode))
	if mc.free != "" {
		fmt.Fprintf(w, "\n```\n$ free -h\n%s\n```\n", mc.free)
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| setup | target | c | events/s | × minimal | p50 ms | p99 ms | p99.9 ms | errors | CPU µs/event | NATS CPU µs/event | gen CPU µs/event | peak RSS MB |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		res := r.m.res
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s | %.2f | %.2f | %.2f | %d | %.0f | %s | %.0f | %s |\n",
			r.setup, r.target, r.c, res.EventsPerSecond(), ratioCell(r, rows),
			millis(res.Latency.P50), millis(res.Latency.P99), millis(res.Latency.P999), res.Errors,
			perEvent(r.m.cpu, res.Requests), natsCell(r), perEvent(r.m.genCPU, res.Requests), rssCell(r))
	}

	fmt.Fprintf(w, "\nTargets (gateway ≥ %.1f× the minimal receiver's events/s, p99 < %s):\n\n", wantRatio, wantP99)
	for _, r := range rows {
		if r.target != targetGateway && r.target != targetGatewayInfo {
			continue
		}
		ratio, ok := ratioOf(r, rows)
		p99 := r.m.res.Latency.P99
		fmt.Fprintf(w, "- %s, %s, c=%d: %.2f× %s, p99 %.2f ms %s\n", r.setup, r.target, r.c,
			ratio, verdict(ok && ratio >= wantRatio), millis(p99), verdict(p99 < wantP99))
	}

	fmt.Fprintln(w, "\nStream checks (messages in the stream = 200s answered, all distinct noticeIds):")
	fmt.Fprintln(w)
	for _, c := range checks {
		switch {
		case c.err != nil:
			fmt.Fprintf(w, "- %s, c=%d: stream count UNKNOWN: %v\n", c.setup, c.c, c.err)
		case c.got == c.want:
			fmt.Fprintf(w, "- %s, c=%d: stream count ok: %d messages = %d 200s (%s)\n", c.setup, c.c, c.got, c.want, c.targets)
		default:
			fmt.Fprintf(w, "- %s, c=%d: stream count MISMATCH: %d messages, %d 200s (%s)\n", c.setup, c.c, c.got, c.want, c.targets)
		}
	}

	fmt.Fprintln(w, "\nNotes:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "- Each server is its own process; the generator runs in the suite's process. events/s and latency count the 200s completed inside the window; errors count every non-200 or transport error of the run, warm-up included.")
	fmt.Fprintln(w, "- CPU µs/event: utime+stime of the target process (/proc/PID/stat, 10 ms ticks) over the window, per event. NATS CPU: the separate nats-server process; \"incl.\" where NATS runs inside the target and is counted in its CPU: in the embedded setup, the gateway's embedded server and the minimal receiver's own (each its own in-process nats-server, file store, fsync before every ack).")
	fmt.Fprintln(w, "- Peak RSS: VmHWM of the target, reset (clear_refs) before its warm-up, so it covers that cell only; in the embedded setup it includes the target's NATS server and its JetStream caches (gateway and minimal receiver alike).")
	fmt.Fprintln(w, "- gen CPU: the load generator's own CPU per event; all processes share the same cores, so a busy generator or a noisy neighbour lowers every figure of the cell.")
	for _, r := range rows {
		res := r.m.res
		if res.Spooled > 0 {
			fmt.Fprintf(w, "- %s, %s, c=%d: %d answers said \"spooled\" (JetStream did not ack within the publish timeout).\n", r.setup, r.target, r.c, res.Spooled)
		}
		if res.FirstError != "" {
			fmt.Fprintf(w, "- %s, %s, c=%d: first error: %s\n", r.setup, r.target, r.c, res.FirstError)
		}
		if res.Interrupted {
			fmt.Fprintf(w, "- %s, %s, c=%d: run cut short (interrupt or -n cap): partial window.\n", r.setup, r.target, r.c)
		}
		if r.m.rssErr != nil {
			fmt.Fprintf(w, "- %s, %s, c=%d: peak RSS covers the process's life (%v).\n", r.setup, r.target, r.c, r.m.rssErr)
		}
	}
	if runErr != nil {
		fmt.Fprintf(w, "\n**The suite stopped early: %s**\n", firstLine(runErr.Error()))
	}
}

// ratioOf is r's events/s over the minimal receiver's in the same setup and
// concurrency: the minimal's windows around r's own (around the info
// gateway for it, else around the warn gateway).
func ratioOf(r row, rows []row) (float64, bool) {
	bases := []string{targetMinimal}
	if r.target == targetGatewayInfo || r.target == targetMinimalInfo {
		bases = []string{targetMinimalInfo, targetMinimal}
	}
	for _, base := range bases {
		for _, o := range rows {
			if o.setup == r.setup && o.c == r.c && o.target == base {
				if eps := o.m.res.EventsPerSecond(); eps > 0 {
					return r.m.res.EventsPerSecond() / eps, true
				}
			}
		}
	}
	return 0, false
}

// minimalDescription says what the minimal receiver does for a -minimal value.
func minimalDescription(decode string) string {
	if decode == decodeJSON {
		return "HMAC, the envelope decoded with encoding/json (`-minimal json`), publish with the noticeId"
	}
	return "HMAC, the noticeId found with a byte scan (`-minimal scan`), publish with the noticeId"
}

func ratioCell(r row, rows []row) string {
	if ratio, ok := ratioOf(r, rows); ok {
		return fmt.Sprintf("%.2f", ratio)
	}
	return "-"
}

func natsCell(r row) string {
	switch {
	case r.natsInside:
		return "incl."
	case r.natsSeparate:
		return fmt.Sprintf("%.0f", perEvent(r.m.natsCPU, r.m.res.Requests))
	default:
		return "-"
	}
}

func rssCell(r row) string {
	mb := fmt.Sprintf("%.0f", float64(r.m.peakRSS)/(1<<20))
	if r.m.rssErr != nil {
		mb += " (life)"
	}
	return mb
}

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(**not met**)"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := bytes.Cut([]byte(s), []byte("\n"))
	return string(line)
}
