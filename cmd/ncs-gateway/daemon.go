package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// shutdownGrace bounds a graceful stop: in-flight notifications finish
// (each within Agora's 10 s), NATS drains.
const shutdownGrace = 15 * time.Second

// runDaemon runs the gateway until ctx is cancelled (SIGTERM, SIGINT).
//
// Start order matters: the last good allowlist is in the kernel before the
// webhook listens, and systemd hears READY only once both are true.
func runDaemon(ctx context.Context, cfg Config, secrets Secrets, log *zap.Logger) error {
	var p problemList
	secrets.check(cfg, &p)
	if err := p.err("(secrets)"); err != nil {
		return err
	}
	log.Info("starting ncs-gateway", zap.String("version", version),
		zap.Any("config", cfg.effective()), zap.Stringer("secrets", secrets))
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if cfg.Firewall.Backend != "none" && !portListed(cfg.Webhook.Listen, cfg.Firewall.Ports) {
		log.Warn("webhook.listen's port is not in firewall.ports: the allowlist does not protect it (fine only behind a proxy)",
			zap.String("listen", cfg.Webhook.Listen), zap.Any("ports", cfg.Firewall.Ports))
	}

	reg := newRegistry()
	ref, fw, err := newAllowlist(cfg, secrets, newGatewayMetrics(reg), log)
	if err != nil {
		return err
	}
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

	var emb *publish.Embedded
	natsURL := cfg.NATS.URL
	if natsURL == "" {
		sync, _ := publish.ParseSyncInterval(cfg.NATS.EmbeddedSyncInterval) // validated
		emb, err = publish.StartEmbedded(publish.EmbeddedConfig{
			Listen:       cfg.NATS.EmbeddedListen,
			StoreDir:     cfg.StateDir,
			SyncInterval: sync,
		}, log.Named("nats-server"))
		if err != nil {
			return fmt.Errorf("start embedded nats: %w", err)
		}
		defer emb.Shutdown()
		natsURL = emb.ClientURL()
		log.Info("embedded nats-server started", zap.String("url", natsURL),
			zap.String("sync_interval", cfg.NATS.EmbeddedSyncInterval))
	}
	pub, err := publish.New(publisherConfig(cfg, secrets, emb), log, reg)
	if err != nil {
		return fmt.Errorf("start publisher: %w", err)
	}

	wm, err := webhook.NewMetrics(reg)
	if err != nil {
		_ = pub.Close(context.Background())
		return fmt.Errorf("register webhook metrics: %w", err)
	}
	hook, err := webhook.NewServer(webhookConfig(cfg, secrets), notifier{pub: pub, prefix: cfg.NATS.SubjectPrefix}, log, wm)
	if err != nil {
		_ = pub.Close(context.Background())
		return fmt.Errorf("create webhook server: %w", err)
	}
	if err := hook.Start(); err != nil {
		_ = pub.Close(context.Background())
		return fmt.Errorf("start webhook server: %w", err)
	}
	adm := newAdminServer(cfg.Admin.Listen, reg, &statusSource{cfg: cfg, ref: ref, pub: pub, fetchEnabled: ref.fetch != nil}, log)
	if err := adm.Start(); err != nil {
		_ = hook.Shutdown(context.Background())
		_ = pub.Close(context.Background())
		return fmt.Errorf("start admin server: %w", err)
	}

	// SIGHUP means "refresh now"; catch it before READY so an early reload
	// never hits the default action, which would kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	g.Go(func() error {
		if err := hook.Wait(); err != nil {
			return fmt.Errorf("webhook server: %w", err)
		}
		return nil
	})
	onHUP := func() {
		if cfg.Webhook.TLSCertFile == "" {
			return
		}
		if err := hook.ReloadCertificate(); err != nil {
			log.Error("reload webhook tls certificate; the old one stays in use", zap.Error(err))
			return
		}
		log.Info("webhook tls certificate reloaded")
	}
	g.Go(func() error { return scheduleRefreshes(gctx, cfg.NCS.Schedule, ref, hup, onHUP, log) })
	g.Go(func() error { return reconcileLoop(gctx, cfg.Firewall.ReconcileInterval, ref, log) })
	g.Go(func() error { return watchdogLoop(gctx, log) })

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

// scheduleRefreshes refreshes once at start, then on the cron schedule and
// on SIGHUP (after onHUP, which reloads the TLS certificate), until ctx
// ends. Refresh itself never overlaps. With no Agora endpoint configured
// there is nothing to fetch.
func scheduleRefreshes(ctx context.Context, spec string, ref *refresher, hup <-chan os.Signal, onHUP func(), log *zap.Logger) error {
	if ref.fetch == nil {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				onHUP()
				log.Info("SIGHUP: no allowlist refresh, ncs.endpoints is empty")
			}
		}
	}
	clog := cronLogger{log.Named("cron")}
	c := cron.New(cron.WithParser(cronParser), cron.WithChain(cron.Recover(clog), cron.SkipIfStillRunning(clog)))
	if _, err := c.AddFunc(spec, func() { _, _ = ref.Refresh(ctx, refreshOptions{}) }); err != nil {
		return fmt.Errorf("schedule refresh: %w", err)
	}
	c.Start()
	defer func() { <-c.Stop().Done() }()

	_, _ = ref.Refresh(ctx, refreshOptions{}) // errors are logged and counted inside
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			onHUP()
			log.Info("SIGHUP: refreshing the allowlist now")
			_, _ = ref.Refresh(ctx, refreshOptions{})
		}
	}
}

// reconcileLoop puts our firewall state back if someone else changed it.
func reconcileLoop(ctx context.Context, every time.Duration, ref *refresher, log *zap.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := ref.Reconcile(ctx); err != nil && ctx.Err() == nil {
				log.Error("reconcile firewall", zap.Error(err))
			}
		}
	}
}

// watchdogLoop pings systemd's watchdog at half its interval, if it is on.
func watchdogLoop(ctx context.Context, log *zap.Logger) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return nil
	}
	log.Info("systemd watchdog enabled", zap.Duration("interval", interval))
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}

// refreshOnce is `-refresh`: the daemon's own Refresh, run once, its plan
// printed. The file lock keeps it from racing the running daemon, which
// adopts the result at its next reconcile.
func refreshOnce(ctx context.Context, cfg Config, secrets Secrets, opts refreshOptions, stdout io.Writer, log *zap.Logger) error {
	var p problemList
	secrets.check(cfg, &p)
	if err := p.err("(secrets)"); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	ref, fw, err := newAllowlist(cfg, secrets, newGatewayMetrics(newRegistry()), log)
	if err != nil {
		return err
	}
	if ref.fetch == nil {
		return errors.New("refresh: ncs.endpoints is empty, there is nothing to fetch")
	}
	plan, err := ref.Refresh(ctx, opts)
	if plan != nil {
		plan.print(stdout)
	}
	if err != nil {
		return err
	}
	if opts.DryRun {
		fmt.Fprintln(stdout, "dry run: nothing changed")
	} else {
		fmt.Fprintf(stdout, "applied %d entries with the %s backend\n", len(plan.allowed()), fw.Backend())
	}
	return nil
}

// removeFirewall is `-remove-firewall`: it removes all that we created.
func removeFirewall(ctx context.Context, cfg Config, stdout io.Writer, log *zap.Logger) error {
	fw, err := newFirewall(cfg, log)
	if err != nil {
		return err
	}
	if err := fw.Remove(ctx); err != nil {
		return fmt.Errorf("remove firewall: %w", err)
	}
	fmt.Fprintf(stdout, "removed ncs-gateway's %s rules; ports %v are open to everyone again (stop the daemon first, or it puts them back)\n",
		fw.Backend(), cfg.Firewall.Ports)
	return nil
}

// newAllowlist builds the refresher with its firewall backend and Agora
// client, as the daemon and -refresh both use them.
func newAllowlist(cfg Config, s Secrets, m *gatewayMetrics, log *zap.Logger) (*refresher, firewall.Firewall, error) {
	fw, err := newFirewall(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	fetch, err := newFetcher(cfg, s, log)
	if err != nil {
		return nil, nil, err
	}
	ref, err := newRefresher(cfg, fetch, fw, m, log)
	if err != nil {
		return nil, nil, err
	}
	return ref, fw, nil
}

func newFirewall(cfg Config, log *zap.Logger) (firewall.Firewall, error) {
	fw, err := firewall.New(firewall.Config{Backend: cfg.Firewall.Backend, Ports: cfg.Firewall.Ports}, log.Named("firewall"))
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	return fw, nil
}

// newFetcher returns nil, nil when no endpoint is configured: the allowlist
// is then static_allow alone.
func newFetcher(cfg Config, s Secrets, log *zap.Logger) (ipFetcher, error) {
	if len(cfg.NCS.Endpoints) == 0 {
		return nil, nil
	}
	c, err := ncsip.New(ncsip.Config{
		Endpoints:      cfg.NCS.Endpoints,
		CustomerID:     s.CustomerID,
		CustomerSecret: s.CustomerSecret,
		Timeout:        cfg.NCS.Timeout,
		AllowPrivate:   cfg.Firewall.AllowPrivate,
		UserAgent:      "ncs-gateway/" + version,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("ncs client: %w", err)
	}
	return c, nil
}

func publisherConfig(cfg Config, s Secrets, emb *publish.Embedded) publish.Config {
	return publish.Config{
		URL:             cfg.NATS.URL,
		Embedded:        emb,
		CredsFile:       cfg.NATS.CredsFile,
		User:            cfg.NATS.User,
		Password:        s.NATSPassword,
		NkeySeedFile:    cfg.NATS.NKeySeedFile,
		Token:           s.NATSToken,
		TLSCAFile:       cfg.NATS.TLSCAFile,
		TLSCertFile:     cfg.NATS.TLSCertFile,
		TLSKeyFile:      cfg.NATS.TLSKeyFile,
		Stream:          cfg.NATS.Stream,
		SubjectPrefix:   cfg.NATS.SubjectPrefix,
		DuplicateWindow: cfg.NATS.DuplicateWindow,
		StreamMaxAge:    cfg.NATS.StreamMaxAge,
		StreamReplicas:  cfg.NATS.StreamReplicas,
		PublishTimeout:  cfg.NATS.PublishTimeout,
		SpoolPath:       filepath.Join(cfg.StateDir, "spool.db"),
		SpoolMaxBytes:   cfg.Spool.MaxBytes,
	}
}

func webhookConfig(cfg Config, s Secrets) webhook.Config {
	return webhook.Config{
		Listen:         cfg.Webhook.Listen,
		Path:           cfg.Webhook.Path,
		TLSCertFile:    cfg.Webhook.TLSCertFile,
		TLSKeyFile:     cfg.Webhook.TLSKeyFile,
		Secrets:        s.WebhookSecrets,
		AcceptSHA1:     cfg.Webhook.AcceptSHA1,
		MaxBodyBytes:   cfg.Webhook.MaxBodyBytes,
		MaxConnections: cfg.Webhook.MaxConnections,
	}
}

// portListed reports whether listen's port is one of ports.
func portListed(listen string, ports []uint16) bool {
	i := strings.LastIndex(listen, ":")
	n, err := strconv.ParseUint(listen[i+1:], 10, 16)
	if err != nil {
		return false
	}
	for _, p := range ports {
		if uint64(p) == n {
			return true
		}
	}
	return false
}

// cronLogger adapts zap to robfig/cron's logger.
type cronLogger struct{ l *zap.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, zap.Any("details", kv)) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, zap.Error(err), zap.Any("details", kv))
}
