package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
)

// daemonLockWait bounds how long a starting daemon waits for a local
// one-shot (-refresh, -remove-firewall) to finish with state_dir.
const daemonLockWait = 2 * time.Minute

// oneShotLockWait bounds how long a one-shot waits for state_dir when no
// daemon answers on the control socket: a daemon that is starting holds the
// lock for good, so waiting longer would only delay the advice to retry.
const oneShotLockWait = 10 * time.Second

// newAllowlist builds the refresher with its firewall backend and Agora
// client, as the daemon and a local -refresh both use them.
func newAllowlist(cfg Config, s Secrets, m *refresh.Metrics, log *zap.Logger) (*refresh.Refresher, firewall.Firewall, error) {
	fw, err := newFirewall(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	fetch, err := newFetcher(cfg, s, log)
	if err != nil {
		return nil, nil, err
	}
	if _, err := parseStaticAllow(cfg.Firewall.StaticAllow); err != nil {
		return nil, nil, fmt.Errorf("firewall.static_allow: %w", err)
	}
	rc := refreshConfig(cfg)
	rc.Fetcher, rc.Firewall, rc.Store = fetch, fw, refresh.NewFileStore(cfg.StateDir)
	rc.Metrics, rc.Log = m, log.Named("refresh")
	ref, err := refresh.New(rc)
	if err != nil {
		return nil, nil, err
	}
	return ref, fw, nil
}

// lockStateDir takes state_dir for this process, waiting at most wait.
func lockStateDir(ctx context.Context, dir string, wait time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	unlock, err := refresh.LockDir(ctx, dir)
	if errors.Is(err, refresh.ErrLocked) {
		return nil, fmt.Errorf("state_dir %s is held by another ncs-gateway process (a daemon starting up or without its control socket, or another one-shot); try again in a moment: %w", dir, err)
	}
	return unlock, err
}

// lockStateDirForDaemon takes state_dir for the daemon's whole life. A
// one-shot that got there first is waited for, with one log line.
func lockStateDirForDaemon(ctx context.Context, dir string, log *zap.Logger) (func(), error) {
	now, cancel := context.WithCancel(ctx)
	cancel() // one try, no wait
	if unlock, err := refresh.LockDir(now, dir); err == nil {
		return unlock, nil
	} else if !errors.Is(err, refresh.ErrLocked) {
		return nil, err
	}
	log.Warn("waiting for state_dir: another ncs-gateway process holds it (a one-shot -refresh, or a second daemon)",
		zap.String("state_dir", dir), zap.Duration("max_wait", daemonLockWait))
	return lockStateDir(ctx, dir, daemonLockWait)
}

// scheduleRefreshes refreshes once at start, then on the cron schedule and
// on SIGHUP (after onHUP, which reloads the TLS certificate), until ctx
// ends. It is the top of those refreshes, so it logs their failures. With
// no Agora endpoint configured there is nothing to fetch.
func scheduleRefreshes(ctx context.Context, spec string, ref *refresh.Refresher, hup <-chan os.Signal, onHUP func(), log *zap.Logger) error {
	var refreshNow func() // nil: nothing to fetch
	if ref.FetchEnabled() {
		refreshNow = func() {
			if _, err := ref.Refresh(ctx, refresh.Options{}); err != nil && ctx.Err() == nil {
				logRefreshFailure(log, err)
			}
		}
		clog := cronLogger{log.Named("cron")}
		c := cron.New(cron.WithParser(cronParser), cron.WithChain(cron.Recover(clog), cron.SkipIfStillRunning(clog)))
		if _, err := c.AddFunc(spec, refreshNow); err != nil {
			return fmt.Errorf("schedule refresh: %w", err)
		}
		c.Start()
		defer func() { <-c.Stop().Done() }()
		refreshNow()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			onHUP()
			if refreshNow == nil {
				log.Info("SIGHUP: no allowlist refresh, ncs.endpoints is empty")
				continue
			}
			log.Info("SIGHUP: refreshing the allowlist now")
			refreshNow()
		}
	}
}

// logRefreshFailure is the one log line of a failed refresh in the daemon.
func logRefreshFailure(log *zap.Logger, err error) {
	reason := refresh.Reason(err)
	if reason == refresh.ReasonPersist {
		log.Error("allowlist refresh failed to persist; the new allowlist is applied and the save is retried at every reconcile",
			zap.String("reason", reason), zap.Error(err))
		return
	}
	log.Error("allowlist refresh failed; the last good allowlist stays applied", zap.String("reason", reason), zap.Error(err))
}

// refreshCmd is `-refresh`: through the running daemon when there is one,
// else the daemon's own Refresh, run once here. Either way it prints the
// plan and the result once.
func refreshCmd(ctx context.Context, cfg Config, secrets Secrets, opts refresh.Options, stdout io.Writer, log *zap.Logger) error {
	reply, err := newControlClient(cfg.Admin.ControlSocket).refresh(ctx, opts)
	if err == nil {
		fmt.Fprintf(stdout, "through the running daemon (pid %d, %s)\n", reply.PID, cfg.Admin.ControlSocket)
		return printRefresh(stdout, reply.Plan, reply.Backend, opts, reply.err())
	}
	if !errors.Is(err, errNoDaemon) {
		return err
	}
	var p problemList
	secrets.checkAgora(cfg, &p)
	if err := p.err("(secrets)"); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	unlock, err := lockStateDir(ctx, cfg.StateDir, oneShotLockWait)
	if err != nil {
		return err
	}
	defer unlock()
	ref, fw, err := newAllowlist(cfg, secrets, refresh.NewMetrics(nil), log)
	if err != nil {
		return err
	}
	plan, err := ref.Refresh(ctx, opts)
	return printRefresh(stdout, plan, fw.Backend(), opts, err)
}

// printRefresh writes a refresh's plan and result for the operator and
// returns its error.
func printRefresh(w io.Writer, plan *refresh.Plan, backend string, opts refresh.Options, err error) error {
	if plan != nil {
		plan.Print(w)
	}
	switch {
	case err != nil:
		return err
	case opts.DryRun:
		fmt.Fprintln(w, "dry run: nothing changed")
	default:
		fmt.Fprintf(w, "applied %d entries with the %s backend\n", plan.Entries, backend)
	}
	return nil
}

// removeFirewallCmd is `-remove-firewall`. A running daemon refuses it (it
// would put the rules back at its next reconcile); with none running it
// removes all that we created.
func removeFirewallCmd(ctx context.Context, cfg Config, stdout io.Writer, log *zap.Logger) error {
	err := newControlClient(cfg.Admin.ControlSocket).removeFirewall(ctx)
	if !errors.Is(err, errNoDaemon) {
		return err // the daemon's refusal, or a socket we may not use
	}
	if _, statErr := os.Stat(cfg.StateDir); statErr == nil {
		unlock, err := lockStateDir(ctx, cfg.StateDir, oneShotLockWait)
		if err != nil {
			return err
		}
		defer unlock()
	}
	fw, err := newFirewall(cfg, log)
	if err != nil {
		return err
	}
	if err := fw.Remove(ctx); err != nil {
		return fmt.Errorf("remove firewall: %w", err)
	}
	fmt.Fprintf(stdout, "removed ncs-gateway's %s rules; ports %v are open to everyone again\n",
		fw.Backend(), cfg.Firewall.Ports)
	return nil
}

// statusCmd is `-status`: the running daemon's view, over the control
// socket, or its admin endpoint if the socket is not there.
func statusCmd(ctx context.Context, cfg Config, stdout io.Writer) error {
	st, err := newControlClient(cfg.Admin.ControlSocket).status(ctx)
	if errors.Is(err, errNoDaemon) {
		return printStatus(ctx, cfg, stdout)
	}
	if err != nil {
		return err
	}
	st.print(stdout)
	return nil
}

// cronLogger adapts zap to robfig/cron's logger.
type cronLogger struct{ l *zap.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, zap.Any("details", kv)) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, zap.Error(err), zap.Any("details", kv))
}
