package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// secretEnv names the environment variable the tool reads the HMAC secret
// from when -secret is not given.
const secretEnv = "LOAD_SECRET"

// defaultSecret matches configs/quickstart-secrets.txt, so gen works against
// the quickstart gateway as is.
const defaultSecret = "quickstart-secret"

// secretFrom returns flagValue, else $LOAD_SECRET, else the quickstart secret.
func secretFrom(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if s := os.Getenv(secretEnv); s != "" {
		return s
	}
	return defaultSecret
}

// runGenCmd is `gen`: one generator run against a URL, reported as text.
func runGenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "http://127.0.0.1:8080/agora/ncs", "webhook `URL` (loopback only)")
	secret := fs.String("secret", "", "HMAC `secret` (default $"+secretEnv+", else the quickstart secret)")
	c := fs.Int("c", 32, "concurrent workers, each with its own keep-alive connection")
	d := fs.Duration("d", 10*time.Second, "measured window")
	warm := fs.Duration("warmup", 2*time.Second, "warm-up before the window (sent, not measured)")
	n := fs.Int64("n", 2_000_000, "cap on requests sent, warm-up included")
	sizes := fs.String("sizes", "200:8192", "body sizes MIN:MAX in bytes, log-uniform")
	templates := fs.Int("templates", 1024, "distinct body templates (each request still gets its own noticeId)")
	seed := fs.Uint64("seed", 1, "seed for the templates")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout (Agora waits 10 s)")
	rate := fs.Float64("rate", 0, "pace to this many requests/s in total (0: as fast as answered)")
	pids := fs.String("pid", "", "comma-separated `pids` of server processes whose CPU per event and peak RSS to report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gen: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	sr, err := parseSizeRange(*sizes)
	if err != nil {
		return err
	}
	corp, err := newCorpus(*templates, sr, *seed)
	if err != nil {
		return err
	}
	watch, err := parseInts(*pids)
	if err != nil {
		return fmt.Errorf("-pid %q: %w", *pids, err)
	}
	cr := &cpuReader{pids: watch}
	var before, cpu []time.Duration
	for _, pid := range watch {
		if err := resetPeakRSS(pid); err != nil {
			fmt.Fprintf(stderr, "gen: pid %d: peak RSS will cover its whole life: %v\n", pid, err)
		}
	}
	res, err := runGen(ctx, genConfig{
		URL: *target, Secret: secretFrom(*secret), Concurrency: *c, Warmup: *warm, Duration: *d,
		MaxRequests: *n, Timeout: *timeout, Corpus: corp, Rate: *rate,
	}, genHooks{
		Start: func() { before = cr.read() },
		End: func() {
			for i, d := range cr.read() {
				cpu = append(cpu, d-before[i])
			}
		},
	})
	printGenResult(stdout, corp, res)
	for i, pid := range watch {
		if i >= len(cpu) {
			break
		}
		rss, rerr := procPeakRSS(pid)
		fmt.Fprintf(stdout, "pid %d: CPU %.0f µs/event, peak RSS %.0f MB (%v)\n",
			pid, perEvent(cpu[i], res.Requests), float64(rss)/(1<<20), rerr)
	}
	if cr.err != nil {
		err = errors.Join(err, cr.err)
	}
	return err
}

// printGenResult writes one run's figures as text.
func printGenResult(w io.Writer, corp *corpus, r genResult) {
	lo, med, mean, hi := corp.sizeStats()
	fmt.Fprintf(w, "bodies: %d templates, sizes min %d / median %d / mean %d / max %d B\n",
		len(corp.templates), lo, med, mean, hi)
	fmt.Fprintf(w, "concurrency %d, window %.2fs: %d events, %.0f events/s\n",
		r.Concurrency, r.Window.Seconds(), r.Requests, r.EventsPerSecond())
	l := r.Latency
	fmt.Fprintf(w, "latency ms: p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
		millis(l.P50), millis(l.P99), millis(l.P999), millis(l.Max), millis(l.Mean))
	fmt.Fprintf(w, "sent %d, 200s %d, errors (non-200 or transport) %d, spooled %d\n", r.Sent, r.OK, r.Errors, r.Spooled)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "run cut short (interrupt or -n reached): figures cover a partial window")
	}
}
