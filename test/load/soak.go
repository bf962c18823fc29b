package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// soakConfig is the soak command's line.
type soakConfig struct {
	duration    time.Duration
	warmup      time.Duration
	every       time.Duration // sampling interval
	rate        float64
	c           int
	memTol      float64 // RSS and heap: last third's max may exceed the first third's by this share
	countTol    float64 // goroutines and open fds: the same
	external    bool    // an external nats-server instead of the embedded NATS
	dupWindow   time.Duration
	out         string
	keep        bool
	tmpParent   string
	commandLine string
}

// soakSample is one row of the soak's time series.
type soakSample struct {
	gwSample
	t      time.Duration // since the measured window began
	events float64       // 200s per second over the interval
	p99    time.Duration // of the interval's 200s
	errs   int64         // non-200s and transport errors in the interval
}

// soakResult is everything the soak report shows.
type soakResult struct {
	cfg      soakConfig
	info     machine
	gen      genResult
	samples  []soakSample
	final    gwSample // after the load, once the spool drained (or gave up)
	stream   uint64
	streamOK bool
}

// runSoakCmd is `soak`: sustained valid load against the gateway with its
// embedded NATS, sampled over time.
func runSoakCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseSoakFlags(args, stderr)
	if err != nil {
		return err
	}
	return runReported(ctx, stdout, stderr, cfg.tmpParent, cfg.keep, cfg.out, func(sess *session) (string, error) {
		return runSoak(ctx, sess, cfg)
	})
}

// parseSoakFlags reads the soak's flags; -quick shortens it.
func parseSoakFlags(args []string, stderr io.Writer) (soakConfig, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg soakConfig
	fs.DurationVar(&cfg.duration, "d", 3*time.Minute, "measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "warm-up before the measured window")
	fs.DurationVar(&cfg.every, "every", 10*time.Second, "sampling interval")
	fs.Float64Var(&cfg.rate, "rate", 500, "notifications per second, paced")
	fs.IntVar(&cfg.c, "c", 16, "workers, each on a keep-alive connection")
	fs.Float64Var(&cfg.memTol, "mem-tol", 0.20, "flat: RSS and heap of the last third within this share above the first third's")
	fs.Float64Var(&cfg.countTol, "count-tol", 0.10, "flat: goroutines and open fds of the last third within this share above the first third's")
	fs.BoolVar(&cfg.external, "external", false, "publish to an external nats-server, so the gateway's figures exclude NATS")
	fs.DurationVar(&cfg.dupWindow, "dup-window", 0, "nats.duplicate_window of the stream (0: the gateway's default, 2h; else at least 2m, and webhook.max_notify_age and max_notify_future are set to a quarter of it each, age at least 1m); JetStream keeps every id of the window in memory")
	quick := fs.Bool("quick", false, "smoke run: 1 min, a sample every 5 s")
	fs.StringVar(&cfg.out, "out", "", "also write the Markdown report to this `file`")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work directory (logs, configs, stores)")
	fs.StringVar(&cfg.tmpParent, "tmp", "", "parent `dir` of the work directory (default $TMPDIR); the store fsyncs here")
	if err := fs.Parse(args); err != nil {
		return soakConfig{}, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "soak: unexpected argument %q\n", fs.Arg(0))
		return soakConfig{}, errUsage
	}
	cfg.commandLine = strings.Join(append([]string{"go run ./test/load soak"}, args...), " ")
	if *quick {
		cfg.duration, cfg.every = time.Minute, 5*time.Second
	}
	if cfg.dupWindow != 0 && cfg.dupWindow < minDupWindow {
		return cfg, fmt.Errorf("soak: -dup-window %s: want 0 (the default, 2h) or at least %s, so that webhook.max_notify_age (at least 1m) and max_notify_future fit below it", cfg.dupWindow, minDupWindow)
	}
	if cfg.every <= 0 || cfg.duration < 3*cfg.every || cfg.rate <= 0 || cfg.c < 1 || cfg.warmup < 0 {
		return cfg, errors.New("soak: want -every > 0, -d at least 3 intervals, -rate and -c positive, -warmup not negative")
	}
	return cfg, nil
}

// runSoak runs the gateway with embedded NATS under paced load for the
// duration, sampling it, and returns the Markdown report.
func runSoak(ctx context.Context, sess *session, cfg soakConfig) (string, error) {
	res := &soakResult{cfg: cfg, info: gatherMachine(ctx)}
	err := res.run(ctx, sess)
	res.info.loadAfter = readLoadavg()
	var b strings.Builder
	writeSoakReport(&b, res, err)
	return b.String(), err
}

// run fills res; it stops every process it started.
func (res *soakResult) run(ctx context.Context, sess *session) (err error) {
	cfg := res.cfg
	sub := "soak"
	if cfg.external {
		sub = "soak-external"
	}
	l, err := sess.launcher(sub)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := l.stopAll(); err == nil && stopErr != nil {
			err = fmt.Errorf("stop servers: %w", stopErr)
		}
	}()
	corp, err := newCorpus(1024, sizeRange{200, 8192}, 1)
	if err != nil {
		return err
	}
	opts := gatewayOptions{stateDir: filepath.Join(l.dir, "gateway"), logLevel: "info", dupWin: cfg.dupWindow}
	if cfg.external {
		ns, err := l.startNATSServer(ctx, filepath.Join(l.dir, "nats"))
		if err != nil {
			return err
		}
		opts.natsURL = ns.url
	}
	gw, err := l.startGateway(ctx, opts)
	if err != nil {
		return err
	}
	natsURL := opts.natsURL
	if gw.nats != nil {
		natsURL = gw.nats.url
	}
	fmt.Fprintf(sess.stderr, "soak: %s at %.0f/s, c=%d, a sample every %s\n", cfg.duration, cfg.rate, cfg.c, cfg.every)
	iv := &intervalStats{}
	started := make(chan struct{})
	gcfg := genConfig{URL: gw.url, Secret: sess.secret, Concurrency: cfg.c, Warmup: cfg.warmup, Duration: cfg.duration,
		Rate: cfg.rate, Timeout: 10 * time.Second, Corpus: corp, Observe: iv.observe,
		MaxRequests: int64(cfg.rate*(cfg.warmup+cfg.duration).Seconds())*2 + 1000}
	var genErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res.gen, genErr = runGen(ctx, gcfg, genHooks{Start: func() { close(started) }})
	}()
	select {
	case <-started:
		res.sampleUntil(ctx, gw, iv, done)
	case <-done:
	}
	<-done
	if genErr != nil {
		return genErr
	}
	if gw.exited() {
		return fmt.Errorf("soak: the gateway exited: %v\n%s", gw.err, gw.logTail(20))
	}
	// The spool must drain, and the stream hold every 200.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res.final = sampleGateway(ctx, gw.pid(), gw.admin)
		if (res.final.err == nil && res.final.spool == 0) || time.Now().After(deadline) || !sleepCtx(ctx, time.Second, nil) {
			break
		}
	}
	res.stream, res.streamOK, err = waitStream(ctx, natsURL, uint64(res.gen.OK), uint64(res.gen.Errors))
	return err
}

// sampleUntil takes a soakSample every interval until done closes; the
// last one covers the interval's remainder.
func (res *soakResult) sampleUntil(ctx context.Context, gw *gatewayProc, iv *intervalStats, done <-chan struct{}) {
	begin := time.Now()
	last := begin
	t := time.NewTicker(res.cfg.every)
	defer t.Stop()
	for {
		finished := false
		select {
		case <-t.C:
		case <-done:
			finished = true
		case <-ctx.Done():
			return
		}
		now := time.Now()
		n, errs, p99 := iv.take()
		s := soakSample{gwSample: sampleGateway(ctx, gw.pid(), gw.admin), t: now.Sub(begin), p99: p99, errs: errs}
		if d := now.Sub(last).Seconds(); d > 0 {
			s.events = float64(n) / d
		}
		if finished && now.Sub(last) < res.cfg.every/2 {
			return // the load's tail: too short an interval for a row
		}
		last = now
		res.samples = append(res.samples, s)
		if finished {
			return
		}
	}
}

// intervalStats collects the latencies of one sampling interval; safe for
// concurrent use by the generator's workers.
type intervalStats struct {
	mu   sync.Mutex
	lat  []time.Duration
	errs int64
}

// observe is the generator's Observe hook.
func (s *intervalStats) observe(lat time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs++
		return
	}
	s.lat = append(s.lat, lat)
}

// take returns the interval's 200s, errors and p99, and starts a new one.
func (s *intervalStats) take() (n int, errs int64, p99 time.Duration) {
	s.mu.Lock()
	lat, errs := s.lat, s.errs
	s.lat, s.errs = nil, 0
	s.mu.Unlock()
	return len(lat), errs, summarize(lat).P99
}
