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

// The two NATS setups the suite measures.
const (
	setupExternal = "external nats-server (default sync)"
	setupEmbedded = "embedded NATS (durable default, sync always)"
	// setupCluster is in cluster.go.
)

// Target names, as they appear in the table.
const (
	targetEcho        = "echo (no work)"
	targetMinimal     = "minimal receiver"
	targetMinimalInfo = "minimal receiver (around info)"
	targetGateway     = "gateway (log warn)"
	targetGatewayInfo = "gateway (log info)"
)

// suiteConfig is the suite's command line.
type suiteConfig struct {
	duration      time.Duration
	warmup        time.Duration
	concurrencies []int
	infoAt        []int  // concurrencies at which the gateway also runs at log level info
	minimalDecode string // serve-minimal -decode: decodeScan or decodeJSON
	setups        []string
	sizes         sizeRange
	templates     int
	maxRequests   int64
	out           string
	keep          bool
	tmpParent     string
	commandLine   string
}

// row is one line of the table.
type row struct {
	setup, target string
	c             int
	m             measurement
	natsSeparate  bool // m.natsCPU is another process's; false: none, or inside the target
	natsInside    bool // the target hosts NATS itself (the gateway's embedded server)
}

// streamCheck compares a NATS server's stream with the 200s sent to it.
type streamCheck struct {
	setup   string
	c       int
	want    uint64
	got     uint64
	err     error
	targets string
}

// suite runs the whole benchmark and collects its rows.
type suite struct {
	cfg      suiteConfig
	l        *launcher
	base     genConfig
	progress io.Writer
	rows     []row
	checks   []streamCheck
}

// runSuiteCmd is `suite`: the throughput table of the README.
func runSuiteCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseSuiteFlags(args, stderr)
	if err != nil {
		return err
	}
	return runReported(ctx, stdout, stderr, cfg.tmpParent, cfg.keep, cfg.out, func(sess *session) (string, error) {
		return runSuite(ctx, sess, cfg)
	})
}

// runReported opens a session, runs one measurement in it, and prints its
// report, also to out when set; the report is printed even when partial.
func runReported(ctx context.Context, stdout, stderr io.Writer, tmpParent string, keep bool, out string, run func(*session) (string, error)) error {
	sess, err := openSession(ctx, tmpParent, keep, stderr)
	if err != nil {
		return err
	}
	defer sess.close()
	report, runErr := run(sess)
	fmt.Fprint(stdout, report)
	return errors.Join(runErr, writeOut(out, report))
}

// runSuite measures every setup at every concurrency with the session's
// binaries and returns the Markdown report, partial if err is not nil.
func runSuite(ctx context.Context, sess *session, cfg suiteConfig) (string, error) {
	corp, err := newCorpus(cfg.templates, cfg.sizes, 1)
	if err != nil {
		return "", err
	}
	l, err := sess.launcher("suite")
	if err != nil {
		return "", err
	}
	l.minimalDecode = cfg.minimalDecode
	info := gatherMachine(ctx)
	s := &suite{
		cfg:      cfg,
		l:        l,
		base:     genConfig{Secret: sess.secret, Timeout: 10 * time.Second, MaxRequests: cfg.maxRequests, Corpus: corp},
		progress: sess.stderr,
	}
	fmt.Fprintf(sess.stderr, "suite: about %s of load (%s per cell, %s warm-up)\n",
		s.estimate().Round(time.Second), cfg.duration, cfg.warmup)
	runErr := s.runAll(ctx)
	if err := s.l.stopAll(); err != nil && runErr == nil {
		runErr = fmt.Errorf("stop servers: %w", err)
	}
	info.loadAfter = readLoadavg()
	var report strings.Builder
	writeReport(&report, cfg, info, corp, s.rows, s.checks, runErr)
	return report.String(), runErr
}

// parseSuiteFlags reads the suite's flags; -quick overrides the cell
// length and concurrencies for a smoke run.
func parseSuiteFlags(args []string, stderr io.Writer) (suiteConfig, error) {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := fs.Duration("d", 10*time.Second, "measured window per cell (the minimal receiver gets two halves)")
	warm := fs.Duration("warmup", 2*time.Second, "warm-up before each window")
	cs := fs.String("c", "1,32,256", "concurrencies, comma-separated")
	infoC := fs.String("info-c", "32", "concurrencies at which the gateway is also run at log level info (empty: none)")
	setups := fs.String("setups", "external,embedded,cluster", "NATS setups: external, embedded, cluster (3 nodes, R3, with a leader-kill run)")
	minimal := fs.String("minimal", decodeScan, "how the minimal receiver reads the noticeId: "+decodeScan+
		" (a byte scan) or "+decodeJSON+" (it decodes the envelope with encoding/json)")
	quick := fs.Bool("quick", false, "smoke run: 3 s cells, 1 s warm-up, c=32 only")
	sizes := fs.String("sizes", "200:8192", "body sizes MIN:MAX in bytes, log-uniform")
	templates := fs.Int("templates", 1024, "distinct body templates (each request still gets its own noticeId)")
	n := fs.Int64("n", 2_000_000, "cap on requests per generator run")
	out := fs.String("out", "", "also write the Markdown report to this `file`")
	keep := fs.Bool("keep", false, "keep the work directory (logs, configs, stores)")
	tmp := fs.String("tmp", "", "parent `dir` of the work directory (default $TMPDIR); stores fsync here")
	if err := fs.Parse(args); err != nil {
		return suiteConfig{}, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "suite: unexpected argument %q\n", fs.Arg(0))
		return suiteConfig{}, errUsage
	}
	cfg := suiteConfig{duration: *d, warmup: *warm, templates: *templates, maxRequests: *n,
		out: *out, keep: *keep, tmpParent: *tmp, minimalDecode: *minimal}
	cfg.commandLine = strings.Join(append([]string{"go run ./test/load suite"}, args...), " ")
	if *quick {
		cfg.duration, cfg.warmup, *cs, *infoC = 3*time.Second, time.Second, "32", "32"
	}
	var errs []error
	var err error
	if cfg.concurrencies, err = parseInts(*cs); err != nil || len(cfg.concurrencies) == 0 {
		errs = append(errs, fmt.Errorf("-c %q: want comma-separated positive integers", *cs))
	}
	if cfg.infoAt, err = parseInts(*infoC); err != nil {
		errs = append(errs, fmt.Errorf("-info-c %q: want comma-separated positive integers or nothing", *infoC))
	}
	for _, s := range strings.Split(*setups, ",") {
		switch strings.TrimSpace(s) {
		case "external":
			cfg.setups = append(cfg.setups, setupExternal)
		case "embedded":
			cfg.setups = append(cfg.setups, setupEmbedded)
		case "cluster":
			cfg.setups = append(cfg.setups, setupCluster)
		default:
			errs = append(errs, fmt.Errorf("-setups: %q is not external, embedded or cluster", s))
		}
	}
	if _, err := noticeIDReader(cfg.minimalDecode); err != nil {
		errs = append(errs, err)
	}
	if cfg.sizes, err = parseSizeRange(*sizes); err != nil {
		errs = append(errs, err)
	}
	if cfg.duration < time.Second || cfg.warmup < 0 {
		errs = append(errs, errors.New("-d must be at least 1s and -warmup not negative"))
	}
	return cfg, errors.Join(errs...)
}

// parseInts reads "1,32,256"; empty gives none.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// estimate is the load time the suite will take, start-ups excluded.
func (s *suite) estimate() time.Duration {
	d, w := s.cfg.duration, s.cfg.warmup
	perCell := (d + w) + 2*(d/2+w) + (d + w) // echo, minimal twice half, gateway
	total := time.Duration(len(s.cfg.concurrencies)*len(s.cfg.setups)) * perCell
	for _, c := range s.cfg.infoAt {
		if contains(s.cfg.concurrencies, c) {
			// The info gateway, bracketed by the minimal receiver again.
			total += time.Duration(len(s.cfg.setups)) * ((d + w) + 2*(d/2+w))
		}
	}
	return total
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// runAll measures every setup at every concurrency.
func (s *suite) runAll(ctx context.Context) error {
	for _, setup := range s.cfg.setups {
		for _, c := range s.cfg.concurrencies {
			dir := filepath.Join(s.l.dir, fmt.Sprintf("%s-c%d", strings.Fields(setup)[0], c))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return fmt.Errorf("create data dir: %w", err)
			}
			var err error
			switch setup {
			case setupExternal:
				err = s.runExternal(ctx, dir, c)
			case setupCluster:
				err = s.runCluster(ctx, dir, c)
			default:
				err = s.runEmbedded(ctx, dir, c)
			}
			if stopErr := s.l.stopAll(); err == nil && stopErr != nil {
				err = fmt.Errorf("stop servers: %w", stopErr)
			}
			if err != nil {
				return fmt.Errorf("%s, c=%d: %w", setup, c, err)
			}
			if !s.cfg.keep {
				os.RemoveAll(dir) // stores grow by hundreds of MB per cell
			}
		}
	}
	return nil
}
