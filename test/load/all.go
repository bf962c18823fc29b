package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// runAllCmd is `all`: the throughput suite, the attack and the soak with
// one build of the binaries, printed as one Markdown report headed by the
// machine and the date. The README's figures come from it.
func runAllCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "smoke run: suite -quick, attack -quick, soak -quick twice (about 5 min)")
	out := fs.String("out", "", "also write the Markdown report to this `file`")
	keep := fs.Bool("keep", false, "keep the work directory (logs, configs, stores)")
	tmp := fs.String("tmp", "", "parent `dir` of the work directory (default $TMPDIR); stores fsync here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "all: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	cmdLine := strings.Join(append([]string{"go run ./test/load all"}, args...), " ")
	var sub []string
	if *quick {
		sub = []string{"-quick"}
	}
	suiteCfg, err1 := parseSuiteFlags(sub, stderr)
	attackCfg, err2 := parseAttackFlags(sub, stderr)
	soakCfg, err3 := parseSoakFlags(sub, stderr)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	suiteCfg.commandLine = cmdLine + " (suite)"
	attackCfg.commandLine = cmdLine + " (attack)"
	soakCfg.commandLine = cmdLine + " (soak)"
	// The same soak against an external nats-server: the gateway's own
	// memory, apart from the embedded JetStream's.
	soakExtCfg := soakCfg
	soakExtCfg.external, soakExtCfg.commandLine = true, cmdLine+" (soak -external)"

	sess, err := openSession(ctx, *tmp, *keep, stderr)
	if err != nil {
		return err
	}
	defer sess.close()
	begin := time.Now()
	info := gatherMachine(ctx)
	var parts []string
	var errs []error
	steps := []struct {
		name string
		run  func() (string, error)
	}{
		{"suite", func() (string, error) { return runSuite(ctx, sess, suiteCfg) }},
		{"attack", func() (string, error) { return runAttack(ctx, sess, attackCfg) }},
		{"soak", func() (string, error) { return runSoak(ctx, sess, soakCfg) }},
		{"soak -external", func() (string, error) { return runSoak(ctx, sess, soakExtCfg) }},
	}
	for _, st := range steps {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: not run: %w", st.name, ctx.Err()))
			break
		}
		fmt.Fprintf(stderr, "all: %s (%s elapsed)\n", st.name, time.Since(begin).Round(time.Second))
		report, err := st.run()
		parts = append(parts, report)
		if err != nil {
			// The next parts still run: each starts its own servers.
			errs = append(errs, fmt.Errorf("%s: %w", st.name, err))
		}
	}
	info.loadAfter = readLoadavg()

	var b strings.Builder
	fmt.Fprintf(&b, "# ncs-gateway benchmarks, %s\n\n", info.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- command: `%s`, %s in all\n", cmdLine, time.Since(begin).Round(time.Second))
	fmt.Fprintf(&b, "- machine: nproc %s, %s, %s/%s; load average %s before, %s after; **shared with other jobs during the run**\n",
		info.nproc, orUnknown(info.cpuModel), runtime.GOOS, runtime.GOARCH, info.loadBefore, info.loadAfter)
	fmt.Fprintf(&b, "- %s\n", orUnknown(info.goVersion))
	if info.free != "" {
		fmt.Fprintf(&b, "\n```\n$ free -h\n%s\n```\n", info.free)
	}
	for _, p := range parts {
		fmt.Fprintf(&b, "\n%s", p)
	}
	for _, err := range errs {
		fmt.Fprintf(&b, "\n**%s**\n", firstLine(err.Error()))
	}
	report := b.String()
	fmt.Fprint(stdout, report)
	return errors.Join(append(errs, writeOut(*out, report))...)
}
