// Command ncs-gateway takes Agora Cloud Recording's signed notifications,
// verifies them and publishes each to NATS JetStream without losing any, and
// keeps the host firewall open to the webhook port only for Agora's
// notification servers, refreshing that allowlist on a schedule.
//
// Usage:
//
//	ncs-gateway -config FILE                  run the daemon
//	ncs-gateway -config FILE -check-config    validate the config and exit
//	ncs-gateway -config FILE -refresh [-dry-run] [-force]
//	ncs-gateway -config FILE -remove-firewall
//	ncs-gateway -config FILE -status
//	ncs-gateway -config FILE -sessions
//	ncs-gateway -version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// errUsage marks a command line that cannot run; main exits 2 for it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "ncs-gateway:", err)
		}
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// cliFlags is the parsed command line.
type cliFlags struct {
	config         string
	checkConfig    bool
	showVersion    bool
	refresh        bool
	dryRun         bool
	force          bool
	removeFirewall bool
	status         bool
	sessions       bool
}

// run is the whole program with its inputs injected, so tests drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	var f cliFlags
	fs := flag.NewFlagSet("ncs-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "/etc/ncs-gateway/ncs-gateway.yaml", "configuration `file`")
	fs.BoolVar(&f.checkConfig, "check-config", false, "validate the configuration and secrets, then exit (touches neither the kernel, the network nor NATS)")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&f.refresh, "refresh", false, "fetch Agora's NCS IP list once, apply it to the firewall (through the running daemon if there is one), print the changes and exit")
	fs.BoolVar(&f.dryRun, "dry-run", false, "with -refresh: print the plan and change nothing")
	fs.BoolVar(&f.force, "force", false, "with -refresh: accept a list that shrinks by more than firewall.max_shrink")
	fs.BoolVar(&f.removeFirewall, "remove-firewall", false, "remove every table, chain, rule and set ncs-gateway created, then exit")
	fs.BoolVar(&f.status, "status", false, "print the running daemon's allowlist, refresh, spool and NATS state (through its control socket)")
	fs.BoolVar(&f.sessions, "sessions", false, "list the session ledger's recording and flagged Cloud Recording sessions (through the running daemon's control socket)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ncs-gateway: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	if f.showVersion {
		fmt.Fprintln(stdout, "ncs-gateway", version)
		return nil
	}
	modes := 0
	for _, on := range []bool{f.checkConfig, f.refresh, f.removeFirewall, f.status, f.sessions} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		fmt.Fprintln(stderr, "ncs-gateway: -check-config, -refresh, -remove-firewall, -status and -sessions are exclusive")
		return errUsage
	}
	if (f.dryRun || f.force) && !f.refresh {
		fmt.Fprintln(stderr, "ncs-gateway: -dry-run and -force go with -refresh")
		return errUsage
	}

	cfg, err := config.Load(f.config, lookup)
	if f.checkConfig {
		return checkConfig(cfg, err, f.config, lookup, stdout)
	}
	if err != nil {
		return err
	}
	// -status, -sessions and -remove-firewall need no secret: a missing
	// password file must not keep the package's prerm from removing the rules.
	switch {
	case f.status:
		return statusCmd(ctx, cfg, stdout)
	case f.sessions:
		return sessionsCmd(ctx, cfg, stdout)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if f.removeFirewall {
		return removeFirewallCmd(ctx, cfg, stdout, log)
	}
	secrets, err := config.LoadSecrets(cfg, lookup)
	if err != nil {
		return fmt.Errorf("load secrets: %w", err)
	}
	if f.refresh {
		return refreshCmd(ctx, cfg, secrets, refresh.Options{DryRun: f.dryRun, Force: f.force}, stdout, log)
	}
	return runDaemon(ctx, cfg, secrets, log)
}
