package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// attackConfig is the attack command's line.
type attackConfig struct {
	duration    time.Duration // measured window of each phase
	ramp        time.Duration // warm-up of each phase; in the attack phase the attack builds up meanwhile
	rate        float64       // valid notifications per second
	c           int           // their workers, each on a keep-alive connection
	probeRate   float64       // valid notifications per second on a new connection each
	settle      time.Duration // wait after the attack before the last sample
	plan        attackPlan    // the counts; addresses are filled at run time
	nofile      uint64        // the gateway's open file limit; 0: inherited
	tls         bool          // the webhook serves HTTPS with a self-signed certificate
	out         string
	keep        bool
	tmpParent   string
	commandLine string
}

// phaseResult is one phase of the attack run.
type phaseResult struct {
	name   string
	valid  genResult // keep-alive stream
	probe  genResult // one new connection per request
	peaks  peaks     // of the samples taken every second
	hwm    int64     // VmHWM over the phase
	hwmErr error
}

// attackResult is everything the attack report shows.
type attackResult struct {
	cfg      attackConfig
	info     machine
	nofile   string // the gateway's open file limit, soft/hard
	proto    string // with -tls: what an h2-capable client negotiated
	phases   []phaseResult
	st       *attackStats
	after    gwSample // cfg.settle after the attack stopped
	final    metricsSnapshot
	stream   uint64
	streamOK bool
	want     uint64 // 200s: valid, probes and idle connections' requests
}

// runAttackCmd is `attack`: baseline, then the same valid stream under
// attack, against the gateway with an external nats-server.
func runAttackCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseAttackFlags(args, stderr)
	if err != nil {
		return err
	}
	return runReported(ctx, stdout, stderr, cfg.tmpParent, cfg.keep, cfg.out, func(sess *session) (string, error) {
		return runAttack(ctx, sess, cfg)
	})
}

// parseAttackFlags reads the attack's flags; -quick shortens the phases.
func parseAttackFlags(args []string, stderr io.Writer) (attackConfig, error) {
	fs := flag.NewFlagSet("attack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg attackConfig
	p := &cfg.plan
	fs.DurationVar(&cfg.duration, "d", 30*time.Second, "measured window of each phase (baseline, attack)")
	fs.DurationVar(&cfg.ramp, "ramp", 5*time.Second, "warm-up of each phase; the attack builds up during the attack phase's")
	fs.Float64Var(&cfg.rate, "rate", 200, "valid notifications per second")
	fs.IntVar(&cfg.c, "c", 8, "workers of the valid stream, each on a keep-alive connection")
	fs.Float64Var(&cfg.probeRate, "probe-rate", 5, "valid notifications per second on a new connection each (0: none)")
	fs.IntVar(&p.forged, "forged", 16, "workers posting wrong signatures as fast as answered")
	fs.IntVar(&p.oversize, "oversize", 2, "workers per form (with Content-Length, chunked) posting max_body_bytes+1")
	fs.IntVar(&p.loris, "loris", 500, "slow-loris connections, each sending a header one byte per -interval")
	fs.IntVar(&p.slowBody, "slow-body", 200, "connections sending a header with Content-Length max_body_bytes, then one body byte per -interval")
	fs.IntVar(&p.idle, "idle", 2000, "connections that send one valid request each, then stay idle")
	fs.DurationVar(&p.interval, "interval", time.Second, "byte interval of the slow senders")
	fs.Uint64Var(&cfg.nofile, "nofile", 0, "open file limit (soft and hard) of the gateway process; 0: inherited from this tool")
	fs.BoolVar(&cfg.tls, "tls", false, "serve the webhook over HTTPS (a self-signed certificate made at start); every client offers h2")
	quick := fs.Bool("quick", false, "smoke run: 10 s phases, 3 s ramp")
	fs.StringVar(&cfg.out, "out", "", "also write the Markdown report to this `file`")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work directory (logs, configs, stores)")
	fs.StringVar(&cfg.tmpParent, "tmp", "", "parent `dir` of the work directory (default $TMPDIR)")
	if err := fs.Parse(args); err != nil {
		return attackConfig{}, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "attack: unexpected argument %q\n", fs.Arg(0))
		return attackConfig{}, errUsage
	}
	cfg.commandLine = strings.Join(append([]string{"go run ./test/load attack"}, args...), " ")
	if *quick {
		cfg.duration, cfg.ramp = 10*time.Second, 3*time.Second
	}
	cfg.settle = 3 * time.Second
	var errs []error
	if cfg.duration < time.Second || cfg.ramp < 0 {
		errs = append(errs, errors.New("-d must be at least 1s and -ramp not negative"))
	}
	if cfg.rate <= 0 || cfg.c < 1 || cfg.probeRate < 0 {
		errs = append(errs, errors.New("-rate and -c must be positive, -probe-rate not negative"))
	}
	if p.forged < 0 || p.oversize < 0 || p.loris < 0 || p.slowBody < 0 || p.idle < 0 || p.interval <= 0 {
		errs = append(errs, errors.New("attack sizes must not be negative, -interval must be positive"))
	}
	return cfg, errors.Join(errs...)
}

// runAttack runs nats-server and the gateway, the baseline phase, the
// attack phase, and the checks, and returns the Markdown report.
func runAttack(ctx context.Context, sess *session, cfg attackConfig) (string, error) {
	res := &attackResult{cfg: cfg, st: &attackStats{}, info: gatherMachine(ctx)}
	err := res.run(ctx, sess)
	res.info.loadAfter = readLoadavg()
	var b strings.Builder
	writeAttackReport(&b, res, err)
	return b.String(), err
}

// run fills res; it stops every process it started.
func (res *attackResult) run(ctx context.Context, sess *session) (err error) {
	cfg := &res.cfg
	if soft, _, lerr := nofile(); lerr == nil && soft < uint64(cfg.plan.conns()+cfg.c+256) {
		return fmt.Errorf("attack: this tool may open %d files, its limit is %d: raise ulimit -n", cfg.plan.conns()+cfg.c+256, soft)
	}
	l, err := sess.launcher("attack")
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
	ns, err := l.startNATSServer(ctx, filepath.Join(l.dir, "nats"))
	if err != nil {
		return err
	}
	var lt *loadTLS
	var clientTLS *tls.Config
	if cfg.tls {
		if lt, err = newLoadTLS(l.dir); err != nil {
			return err
		}
		clientTLS = lt.client
	}
	gw, err := l.startGateway(ctx, gatewayOptions{natsURL: ns.url, stateDir: filepath.Join(l.dir, "gateway"), logLevel: "info", nofile: cfg.nofile, tls: lt})
	if err != nil {
		return err
	}
	if cfg.tls {
		if res.proto, err = negotiatedProto(ctx, gw.url, clientTLS); err != nil {
			return err
		}
	}
	res.nofile, _ = procNofile(gw.pid())
	u, err := url.Parse(gw.url)
	if err != nil {
		return fmt.Errorf("parse webhook url: %w", err)
	}
	cfg.plan.addr, cfg.plan.path, cfg.plan.secret = u.Host, u.Path, sess.secret
	cfg.plan.corpus, cfg.plan.maxBody, cfg.plan.tls = corp, webhook.DefaultMaxBodyBytes, clientTLS
	base := genConfig{URL: gw.url, Secret: sess.secret, Timeout: 10 * time.Second, Corpus: corp, TLS: clientTLS}

	fmt.Fprintf(sess.stderr, "attack: baseline phase, %s\n", cfg.duration+cfg.ramp)
	ph, err := res.phase(ctx, gw, base, "baseline (valid only)")
	if err != nil {
		return err
	}
	res.phases = append(res.phases, ph)

	fmt.Fprintf(sess.stderr, "attack: attack phase, %s\n", cfg.duration+cfg.ramp)
	var runID [8]byte
	if _, err := rand.Read(runID[:]); err != nil {
		return fmt.Errorf("draw run id: %w", err)
	}
	run := cfg.plan.start(ctx, binary.BigEndian.Uint64(runID[:]), res.st)
	ph, err = res.phase(ctx, gw, base, "under attack")
	run.stop()
	if err != nil {
		return err
	}
	res.phases = append(res.phases, ph)
	sleepCtx(ctx, cfg.settle, nil)
	res.after = sampleGateway(ctx, gw.pid(), gw.admin)
	if gw.exited() {
		return fmt.Errorf("attack: the gateway exited: %v\n%s", gw.err, gw.logTail(20))
	}

	for _, p := range res.phases {
		res.want += uint64(p.valid.OK + p.probe.OK)
	}
	res.want += uint64(res.st.idleOK.Load())
	res.stream, res.streamOK, err = waitStream(ctx, ns.url, res.want, res.unknown())
	if err != nil {
		return err
	}
	if res.final, err = scrapeMetrics(ctx, gw.admin); err != nil {
		return err
	}
	return nil
}

// phase runs the valid stream and the new-connection probe for the ramp
// and the window, sampling the gateway every second.
func (res *attackResult) phase(ctx context.Context, gw *gatewayProc, base genConfig, name string) (phaseResult, error) {
	cfg := res.cfg
	ph := phaseResult{name: name}
	_ = resetPeakRSS(gw.pid()) // refused: the HWM covers the process's life, and hwmErr says so below
	smp := startSampler(ctx, gw, time.Second)
	valid := base
	valid.Concurrency, valid.Rate, valid.Warmup, valid.Duration = cfg.c, cfg.rate, cfg.ramp, cfg.duration
	valid.MaxRequests = int64(cfg.rate*(cfg.ramp+cfg.duration).Seconds())*2 + 1000
	var wg sync.WaitGroup
	var probeErr error
	if cfg.probeRate > 0 {
		probe := valid
		probe.Concurrency, probe.Rate, probe.NewConns = 2, cfg.probeRate, true
		wg.Go(func() { ph.probe, probeErr = runGen(ctx, probe, genHooks{}) })
	}
	var err error
	ph.valid, err = runGen(ctx, valid, genHooks{})
	wg.Wait()
	ph.peaks = peakOf(smp.stop())
	ph.hwm, ph.hwmErr = procPeakRSS(gw.pid())
	if err = errors.Join(err, probeErr); err != nil {
		return ph, fmt.Errorf("%s: %w", name, err)
	}
	if gw.exited() {
		return ph, fmt.Errorf("%s: the gateway exited: %v\n%s", name, gw.err, gw.logTail(20))
	}
	return ph, nil
}

// unknown is the number of valid notifications sent whose answer the
// client never saw (timeouts, transport errors, the attack's stop): each
// may or may not be in the stream.
func (res *attackResult) unknown() uint64 {
	n := res.st.idleUnknown.Load()
	for _, p := range res.phases {
		n += p.valid.Errors + p.probe.Errors
	}
	return uint64(n)
}

// waitStream waits (up to 15 s) until the stream at url holds between want
// and want+slack messages; slack counts requests whose fate the client
// could not see.
func waitStream(ctx context.Context, url string, want, slack uint64) (uint64, bool, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := streamMsgs(ctx, url)
		ok := err == nil && got >= want && got <= want+slack
		if ok || time.Now().After(deadline) || !sleepCtx(ctx, 200*time.Millisecond, nil) {
			return got, ok, err
		}
	}
}
