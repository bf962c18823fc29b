package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/admin"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/control"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/status"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/watchdog"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ledger"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// shutdownGrace bounds a graceful stop: in-flight notifications finish
// (each within Agora's 10 s), NATS drains.
const shutdownGrace = 15 * time.Second

// runDaemon runs the gateway until ctx is cancelled (SIGTERM, SIGINT).
//
// Start order matters: the last good allowlist is in the kernel before the
// webhook listens, and systemd hears READY only once both are true.
func runDaemon(ctx context.Context, cfg config.Config, secrets config.Secrets, log *zap.Logger) error {
	reg := newRegistry()
	c, err := buildComponents(cfg, secrets, reg, log)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn("config warning", zap.String("warning", w))
	}
	log.Info("starting ncs-gateway", zap.String("version", version),
		zap.Any("config", cfg.Effective()), zap.Stringer("secrets", secrets))
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	// This process owns the kernel rules and state_dir until it exits;
	// one-shots go through the control socket meanwhile.
	unlock, err := lockStateDirForDaemon(ctx, cfg.StateDir, log)
	if err != nil {
		return err
	}
	defer unlock()

	ref, fw, hook := c.ref, c.fw, c.hook
	ncsCount, err := ref.ApplyPersisted(ctx)
	if err != nil {
		return fmt.Errorf("apply persisted allowlist: %w", err)
	}
	if ncsCount == 0 && cfg.Firewall.Backend != "none" {
		log.Warn("no persisted allowlist: the webhook ports are closed to everyone but static_allow until a refresh succeeds",
			zap.Any("ports", cfg.Firewall.Ports), zap.Strings("static_allow", cfg.Firewall.StaticAllow))
	} else {
		log.Info("persisted allowlist applied", zap.Int("ncs_addresses", ncsCount), zap.String("backend", fw.Backend()))
	}

	pcfg := c.publisher
	if cfg.NATS.URL == "" {
		emb, err := publish.StartEmbedded(c.embedded, log.Named("nats-server"))
		if err != nil {
			return fmt.Errorf("start embedded nats: %w", err)
		}
		defer emb.Shutdown()
		pcfg.Embedded = emb
		log.Info("embedded nats-server started", zap.String("url", emb.ClientURL()),
			zap.String("sync_interval", cfg.NATS.EmbeddedSyncInterval))
	}
	pub, err := publish.New(pcfg, log, reg)
	if err != nil {
		return fmt.Errorf("start publisher: %w", err)
	}
	c.notify.Pub = pub
	// The ledger reads the stream and writes its bucket on the publisher's
	// connection, and stores its derived notifications through the
	// publisher, whose acknowledgements readers cannot spoof.
	lcfg := cfg.SessionLedger()
	lcfg.Store = pub
	led, err := ledger.New(lcfg, pub.Conn(), log, reg)
	if err != nil {
		_ = pub.Close(context.Background())
		return fmt.Errorf("start session ledger: %w", err)
	}
	if err := hook.Start(); err != nil {
		_ = pub.Close(context.Background())
		return fmt.Errorf("start webhook server: %w", err)
	}
	wd, probe, err := newWatchdog(cfg, secrets, c, pub, led, log)
	if err != nil {
		_ = hook.Shutdown(context.Background())
		_ = pub.Close(context.Background())
		return err
	}
	src := &status.Source{
		Version: version, Backend: cfg.Firewall.Backend, Ports: cfg.Firewall.Ports, StaticAllow: cfg.Firewall.StaticAllow,
		MaxNotifyAge: cfg.Webhook.MaxNotifyAge, MaxNotifyFuture: cfg.Webhook.MaxNotifyFuture,
		Ref: ref, Pub: pub, Hook: hook, Ledger: led, Stalled: wd.Stalled,
	}
	adm := admin.New(cfg.Admin.Listen, reg, src, log)
	if err := adm.Start(); err != nil {
		_ = hook.Shutdown(context.Background())
		_ = pub.Close(context.Background())
		return fmt.Errorf("start admin server: %w", err)
	}
	ctlCtx, stopCtl := context.WithCancel(ctx)
	defer stopCtl()
	ctl := control.NewServer(ctlCtx, cfg.Admin.ControlSocket, ref, fw.Backend(), src, log)
	if err := ctl.Start(); err != nil {
		// Notifications matter more: run on. One-shots then find state_dir
		// locked and change nothing beside this daemon.
		log.Error("control socket unavailable: -refresh, -status and -remove-firewall cannot reach this daemon", zap.Error(err))
	}

	// SIGHUP means "refresh now"; catch it before READY so an early reload
	// never hits the default action, which would kill the process.
	signal.Notify(c.hup, syscall.SIGHUP)
	defer signal.Stop(c.hup)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	g.Go(func() error {
		if err := hook.Wait(); err != nil {
			return fmt.Errorf("webhook server: %w", err)
		}
		return nil
	})
	g.Go(func() error { return c.sched.Run(gctx) })
	g.Go(func() error { return ref.Run(gctx, cfg.Firewall.ReconcileInterval) })
	g.Go(ctl.Serve)
	g.Go(func() error { return led.Run(gctx) })
	g.Go(func() error { return probe.Run(gctx) })
	g.Go(func() error { return wd.Run(gctx) })

	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("tell systemd we are ready", zap.Error(err))
	}
	log.Info("ncs-gateway ready")

	<-gctx.Done()
	log.Info("shutting down")
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var errs []error
	if err := hook.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop webhook server: %w", err))
	}
	if err := ctl.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop control socket: %w", err))
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	if err := pub.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("close publisher: %w", err))
	}
	if err := adm.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop admin server: %w", err))
	}
	log.Info("stopped; the firewall rules stay in place")
	return errors.Join(errs...)
}

// newWatchdog watches every loop the daemon runs: systemd hears WATCHDOG=1
// only while each has shown within its max silence that it still goes
// round, and /readyz names those that have not. The webhook shows it by a
// self-probe through its own listener, since an idle server has no loop.
func newWatchdog(cfg config.Config, s config.Secrets, c *components, pub *publish.Publisher, led *ledger.Ledger, log *zap.Logger) (*watchdog.Watchdog, *webhook.Probe, error) {
	wd, err := watchdog.New(watchdog.Config{}, log.Named("watchdog"))
	if err != nil {
		return nil, nil, fmt.Errorf("start watchdog: %w", err)
	}
	probe := webhook.NewProbe(c.hook, log)
	parts := []struct {
		name string
		src  watchdog.Beater
		max  time.Duration
	}{
		{"webhook", probe, watchdog.WebhookMaxSilence},
		{"publisher", pub, watchdog.PublisherMaxSilence(cfg.NATS.PublishTimeout)},
		{"refresher", c.ref, watchdog.RefresherMaxSilence},
		{"scheduler", c.sched, watchdog.SchedulerMaxSilence(cfg.AgoraClient(s, userAgent()))},
		{"ledger", led, watchdog.LedgerMaxSilence},
	}
	for _, p := range parts {
		if err := wd.Add(p.name, p.src, p.max); err != nil {
			return nil, nil, fmt.Errorf("watch %s: %w", p.name, err)
		}
	}
	return wd, probe, nil
}
