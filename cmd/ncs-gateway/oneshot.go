package main

// The one-shot commands: -refresh, -remove-firewall and -status. Each asks
// the running daemon over the control socket first; with none there,
// -refresh and -remove-firewall act here under the state_dir lock, and
// -status asks the admin listener.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/control"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/status"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
)

// daemonLockWait bounds how long a starting daemon waits for a local
// one-shot (-refresh, -remove-firewall) to finish with state_dir.
const daemonLockWait = 2 * time.Minute

// oneShotLockWait bounds how long a one-shot waits for state_dir when no
// daemon answers on the control socket: a daemon that is starting holds the
// lock for good, so waiting longer would only delay the advice to retry.
const oneShotLockWait = 10 * time.Second

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

// refreshCmd is `-refresh`: through the running daemon when there is one,
// else the daemon's own Refresh, run once here. Either way it prints the
// plan and the result once.
func refreshCmd(ctx context.Context, cfg config.Config, secrets config.Secrets, opts refresh.Options, stdout io.Writer, log *zap.Logger) error {
	reply, err := control.NewClient(cfg.Admin.ControlSocket).Refresh(ctx, opts)
	if err == nil {
		fmt.Fprintf(stdout, "through the running daemon (pid %d, %s)\n", reply.PID, cfg.Admin.ControlSocket)
		return printRefresh(stdout, reply.Plan, reply.Backend, opts, reply.Err())
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return err
	}
	var p config.Problems
	secrets.CheckAgora(cfg, &p)
	if err := p.Err("(secrets)"); err != nil {
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
func removeFirewallCmd(ctx context.Context, cfg config.Config, stdout io.Writer, log *zap.Logger) error {
	err := control.NewClient(cfg.Admin.ControlSocket).RemoveFirewall(ctx)
	if !errors.Is(err, control.ErrNoDaemon) {
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
func statusCmd(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	st, err := control.NewClient(cfg.Admin.ControlSocket).Status(ctx)
	if errors.Is(err, control.ErrNoDaemon) {
		st, err = status.Fetch(ctx, cfg.Admin.Listen)
	}
	if err != nil {
		return err
	}
	st.Print(stdout)
	return nil
}

// sessionsCmd is `-sessions`: the running daemon's ledger, over the control
// socket only (the list is no business of the unauthenticated admin port).
func sessionsCmd(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	sessions, err := control.NewClient(cfg.Admin.ControlSocket).Sessions(ctx)
	if errors.Is(err, control.ErrNoDaemon) {
		return fmt.Errorf("-sessions: no daemon answers on %s: the ledger lives in the running daemon (or read its bucket: nats kv ls %s)",
			cfg.Admin.ControlSocket, cfg.Ledger.Bucket)
	}
	if err != nil {
		return err
	}
	status.PrintSessions(stdout, sessions)
	return nil
}
