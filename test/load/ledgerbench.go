package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ledgerConfig is the ledger command's line.
type ledgerConfig struct {
	sessions    int           // whole sessions per burst, sessionEvents notifications each
	active      int           // sessions recording at once in the interleaving
	c           int           // workers
	phases      []bool        // ledger on or off, in order: off, on, off brackets the on phase
	catchUp     time.Duration // the aim: lag back to 0 within this after the burst
	waitMax     time.Duration // how long to keep polling past the aim, to report the real time
	open        int           // open sessions for the memory phase; 0 skips it
	rssSettle   time.Duration // idle time after the restart before VmHWM is read
	maxRSS      int64         // the aim for peak RSS, bytes
	out         string
	keep        bool
	tmpParent   string
	commandLine string
}

// runLedgerCmd is `ledger`: the session ledger's cost on the webhook and
// its catch-up, and the daemon's memory with many open sessions.
func runLedgerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseLedgerFlags(args, stderr)
	if err != nil {
		return err
	}
	return runReported(ctx, stdout, stderr, cfg.tmpParent, cfg.keep, cfg.out, func(sess *session) (string, error) {
		return runLedgerBench(ctx, sess, cfg)
	})
}

// parseLedgerFlags reads the ledger command's flags.
func parseLedgerFlags(args []string, stderr io.Writer) (ledgerConfig, error) {
	fs := flag.NewFlagSet("ledger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg ledgerConfig
	fs.IntVar(&cfg.sessions, "sessions", 2000, fmt.Sprintf("whole recording sessions per burst, %d notifications each", sessionEvents))
	fs.IntVar(&cfg.active, "active", 64, "sessions recording at once in the burst's interleaving")
	fs.IntVar(&cfg.c, "c", 32, "workers, each on a keep-alive connection")
	phases := fs.String("phases", "off,on,off", "the ledger `off or on` in each burst, in order (the same notifications each time, a fresh store each time)")
	fs.DurationVar(&cfg.catchUp, "catch-up", 30*time.Second, "aim: the ledger's lag back to 0 within this after a burst")
	fs.DurationVar(&cfg.waitMax, "wait-max", 2*time.Minute, "keep waiting this long for the lag to reach 0, to report the real time")
	fs.IntVar(&cfg.open, "open", 100_000, "open sessions (recorder_started of distinct sids) for the memory phase; 0 skips it")
	fs.DurationVar(&cfg.rssSettle, "rss-settle", 10*time.Second, "idle time after the restart on the filled bucket before VmHWM is read")
	maxRSS := fs.Int("max-rss-mib", 150, "aim: the daemon's peak RSS with -open sessions, MiB")
	quick := fs.Bool("quick", false, "smoke run: 200 sessions per burst, 10,000 open sessions")
	fs.StringVar(&cfg.out, "out", "", "also write the Markdown report to this `file`")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work directory (logs, configs, stores)")
	fs.StringVar(&cfg.tmpParent, "tmp", "", "parent `dir` of the work directory (default $TMPDIR); the store fsyncs here")
	if err := fs.Parse(args); err != nil {
		return ledgerConfig{}, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ledger: unexpected argument %q\n", fs.Arg(0))
		return ledgerConfig{}, errUsage
	}
	cfg.commandLine = strings.Join(append([]string{"go run ./test/load ledger"}, args...), " ")
	if *quick {
		cfg.sessions, cfg.open = 200, 10_000
	}
	cfg.maxRSS = int64(*maxRSS) << 20
	var errs []error
	for _, p := range strings.Split(*phases, ",") {
		switch strings.TrimSpace(p) {
		case "on":
			cfg.phases = append(cfg.phases, true)
		case "off":
			cfg.phases = append(cfg.phases, false)
		default:
			errs = append(errs, fmt.Errorf("-phases: %q is neither on nor off", p))
		}
	}
	if !containsBool(cfg.phases, true) || !containsBool(cfg.phases, false) {
		errs = append(errs, errors.New("-phases: want at least one on and one off, to compare them"))
	}
	if cfg.sessions < 1 || cfg.active < 1 || cfg.c < 1 || cfg.open < 0 || cfg.catchUp <= 0 || cfg.waitMax < cfg.catchUp || *maxRSS < 1 {
		errs = append(errs, errors.New("want -sessions, -active, -c and -max-rss-mib positive, -open not negative, -catch-up positive and -wait-max at least -catch-up"))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("ledger: %w", err)
	}
	return cfg, nil
}

func containsBool(list []bool, v bool) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// ledgerGatewayConfig is the gateway's config for the benchmark: embedded
// NATS with fsync before every ack, firewall none, and the ledger on or
// off at its defaults (upload_grace 1h, stall_after 26h: no flag but
// abnormal_exit falls due during the run).
func ledgerGatewayConfig(stateDir string, hook, admin, embedded int, ledgerOn bool) string {
	return fmt.Sprintf(`# written by go run ./test/load ledger
state_dir: %q
log: {level: warn, format: json}
webhook: {listen: "127.0.0.1:%d", path: /agora/ncs}
admin: {listen: "127.0.0.1:%d"}
nats:
  url: ""
  embedded_listen: "127.0.0.1:%d"
  embedded_sync_interval: always
ledger: {enabled: %t, bucket: NCS_SESSIONS, upload_grace: 1h, stall_after: 26h}
ncs: {endpoints: []}
firewall: {backend: none, ports: [%d]}
`, stateDir, hook, admin, embedded, ledgerOn, hook)
}

// startLedgerGateway runs the gateway with ledgerGatewayConfig until it is
// ready and its stream exists.
func (l *launcher) startLedgerGateway(ctx context.Context, stateDir string, ledgerOn bool) (*gatewayProc, error) {
	return retryPorts(func() (*gatewayProc, error) {
		ports, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		l.seq++
		cfgPath := filepath.Join(l.dir, fmt.Sprintf("%02d-gateway-ledger-%t.yaml", l.seq, ledgerOn))
		if err := os.WriteFile(cfgPath, []byte(ledgerGatewayConfig(stateDir, ports[0], ports[1], ports[2], ledgerOn)), 0o600); err != nil {
			return nil, fmt.Errorf("write gateway config: %w", err)
		}
		p, err := l.start("ncs-gateway", []string{l.bins.gateway, "-config", cfgPath},
			[]string{"NCS_GATEWAY_WEBHOOK_SECRETS=" + l.secret})
		if err != nil {
			return nil, err
		}
		admin := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		if err := waitReady(ctx, p, readyTimeout, "the gateway's /readyz", func() bool { return httpOK(ctx, admin+"/readyz") }); err != nil {
			l.drop(p)
			return nil, bindFailed(p, err)
		}
		natsURL := "nats://127.0.0.1:" + strconv.Itoa(ports[2])
		g := &gatewayProc{target: &target{proc: p, url: fmt.Sprintf("http://127.0.0.1:%d/agora/ncs", ports[0])},
			admin: admin, nats: &natsHost{proc: p, url: natsURL}}
		err = waitReady(ctx, p, readyTimeout, "the gateway's stream", func() bool {
			_, err := streamMsgs(ctx, natsURL)
			return err == nil
		})
		return g, err
	})
}

// ledgerLag is one look at the ledger's metrics.
type ledgerLag struct {
	enabled, caughtUp bool
	messages, seconds float64
	completed         float64 // ncs_gateway_ledger_completed_total, both outcomes
	failed            float64 // of them outcome="failed"
	abnormal          float64 // ncs_gateway_ledger_flagged_total{reason="abnormal_exit"}
	recording         float64 // ncs_gateway_ledger_sessions{state="recording"}
}

// readLedgerLag reads the ledger's metrics from a scrape; a ledger series
// missing is an error (the daemon runs without the ledger wired in).
func readLedgerLag(m metricsSnapshot) (ledgerLag, error) {
	var l ledgerLag
	var errs []error
	get := func(name string, labels ...string) float64 {
		v, err := m.need(name, labels...)
		errs = append(errs, err)
		return v
	}
	l.enabled = get("ncs_gateway_ledger_enabled") == 1
	l.caughtUp = get("ncs_gateway_ledger_caught_up") == 1
	l.messages = get("ncs_gateway_ledger_lag_messages")
	l.seconds = get("ncs_gateway_ledger_lag_seconds")
	l.completed = get("ncs_gateway_ledger_completed_total")
	l.failed = get("ncs_gateway_ledger_completed_total", `outcome="failed"`)
	l.abnormal = get("ncs_gateway_ledger_flagged_total", `reason="abnormal_exit"`)
	l.recording = get("ncs_gateway_ledger_sessions", `state="recording"`)
	return l, errors.Join(errs...)
}

// done reports whether the ledger has applied everything.
func (l ledgerLag) done() bool { return l.caughtUp && l.messages == 0 }

// lagWatch polls the ledger's metrics every interval until stop closes,
// keeping the largest lag seen.
type lagWatch struct {
	maxMessages, maxSeconds float64
	err                     error
}

// watchLag fills w until stop closes, then closes done.
func watchLag(ctx context.Context, admin string, interval time.Duration, w *lagWatch, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for sleepCtx(ctx, interval, stop) {
		m, err := scrapeMetrics(ctx, admin)
		if err == nil {
			var l ledgerLag
			if l, err = readLedgerLag(m); err == nil {
				w.maxMessages, w.maxSeconds = max(w.maxMessages, l.messages), max(w.maxSeconds, l.seconds)
				continue
			}
		}
		w.err = err
	}
}

// waitCaughtUp polls until the ledger has applied everything, up to
// waitMax; it returns the time it took (from since), the last look, and
// whether it got there.
func waitCaughtUp(ctx context.Context, admin string, since time.Time, waitMax time.Duration) (time.Duration, ledgerLag, bool, error) {
	deadline := since.Add(waitMax)
	var last ledgerLag
	for {
		m, err := scrapeMetrics(ctx, admin)
		if err == nil {
			last, err = readLedgerLag(m)
		}
		if err != nil {
			return 0, last, false, err
		}
		if last.done() {
			return time.Since(since), last, true, nil
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 100*time.Millisecond, nil) {
			return time.Since(since), last, false, ctx.Err()
		}
	}
}

// waitSessions polls until the ledger has caught up and counts at least
// want recording sessions, up to timeout.
func waitSessions(ctx context.Context, admin string, want float64, timeout time.Duration) (ledgerLag, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := scrapeMetrics(ctx, admin)
		var l ledgerLag
		if err == nil {
			l, err = readLedgerLag(m)
		}
		if err != nil {
			return l, err
		}
		if l.done() && l.recording >= want {
			return l, nil
		}
		if time.Now().After(deadline) {
			return l, fmt.Errorf("after %s the ledger counts %.0f recording sessions, want %.0f (caught up %t, lag %.0f)", timeout, l.recording, want, l.caughtUp, l.messages)
		}
		if !sleepCtx(ctx, 200*time.Millisecond, nil) {
			return l, fmt.Errorf("wait for %.0f recording sessions: %w", want, ctx.Err())
		}
	}
}
