package main

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ncsmsg"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// components are the daemon's parts, built from one config and not yet
// started: nothing here has touched the kernel, the network or NATS.
type components struct {
	fw  firewall.Firewall
	ref *refresh.Refresher
	// hook publishes through notify, whose Pub is set once the publisher
	// runs (it needs the embedded server's URL first).
	hook   *webhook.Server
	notify *ncsmsg.Publisher
	// embedded is the embedded nats-server's config; nats.url empty only.
	embedded publish.EmbeddedConfig
	// publisher is the publisher's config; the daemon adds the embedded
	// server once it runs.
	publisher publish.Config
	// sched refreshes at start, on ncs.schedule and on each signal sent to
	// hup (the daemon relays SIGHUP there), after reloading the webhook's
	// TLS certificate.
	sched *refresh.Scheduler
	hup   chan os.Signal
}

// buildComponents checks every rule of cfg and s at once (the secrets, each
// package's Validate, the TLS files), then builds every component. The
// daemon, -check-config and the tests all call it, so a config the check
// accepts starts, and each rule speaks once: config.Problems keeps cmd's
// message for a key a package reports again. The metrics go to reg.
func buildComponents(cfg config.Config, s config.Secrets, reg prometheus.Registerer, log *zap.Logger) (*components, error) {
	var p config.Problems
	checkAll(cfg, s, &p)
	if err := p.Err("(config and secrets)"); err != nil {
		return nil, err
	}
	ref, fw, err := newAllowlist(cfg, s, refresh.NewMetrics(reg), log)
	if err != nil {
		return nil, err
	}
	wm, err := webhook.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register webhook metrics: %w", err)
	}
	c := &components{fw: fw, ref: ref, notify: &ncsmsg.Publisher{Prefix: cfg.NATS.SubjectPrefix}, publisher: cfg.Publisher(s, nil)}
	if cfg.NATS.URL == "" {
		c.embedded = cfg.EmbeddedServer(s)
	}
	if c.hook, err = webhook.NewServer(cfg.WebhookServer(s), c.notify, log, wm); err != nil {
		return nil, fmt.Errorf("create webhook server: %w", err)
	}
	c.hup = make(chan os.Signal, 1)
	onHUP := func() {
		if cfg.Webhook.TLSCertFile == "" {
			return
		}
		if err := c.hook.ReloadCertificate(); err != nil {
			log.Error("reload webhook tls certificate; the old one stays in use", zap.Error(err))
			return
		}
		log.Info("webhook tls certificate reloaded")
	}
	if c.sched, err = refresh.NewScheduler(cfg.NCS.Schedule, ref, c.hup, onHUP, log); err != nil {
		return nil, err
	}
	return c, nil
}

// checkAll records every problem of the secrets and of the packages'
// configs as the daemon builds them, each package checking its own
// (Validate), and loads the TLS files the daemon would load.
// -check-config calls it first to report these with the file's own.
func checkAll(cfg config.Config, s config.Secrets, p *config.Problems) {
	s.Check(cfg, p)
	p.AddErr(cfg.WebhookServer(s).Validate())
	p.AddErr(cfg.Publisher(s, nil).Validate())
	if cfg.NATS.URL == "" {
		p.AddErr(cfg.EmbeddedServer(s).Validate())
	}
	p.AddErr(cfg.FirewallBackend().Validate())
	p.AddErr(cfg.Refresher().Validate())
	p.AddErr(cfg.SessionLedger().Validate())
	if len(cfg.NCS.Endpoints) > 0 {
		p.AddErr(cfg.AgoraClient(s, userAgent()).Validate())
	}
	cfg.CheckTLSFiles(p)
}

// newAllowlist builds the refresher with its firewall backend and Agora
// client: the allowlist part of buildComponents, all a local -refresh
// needs (it needs no webhook secret).
func newAllowlist(cfg config.Config, s config.Secrets, m *refresh.Metrics, log *zap.Logger) (*refresh.Refresher, firewall.Firewall, error) {
	fw, err := newFirewall(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	var fetch refresh.Fetcher // nil: no endpoint, the allowlist is static_allow alone
	if len(cfg.NCS.Endpoints) > 0 {
		c, err := ncsip.New(cfg.AgoraClient(s, userAgent()), log)
		if err != nil {
			return nil, nil, fmt.Errorf("ncs client: %w", err)
		}
		fetch = c
	}
	if _, err := config.ParseStaticAllow(cfg.Firewall.StaticAllow); err != nil {
		return nil, nil, fmt.Errorf("firewall.static_allow: %w", err)
	}
	rc := cfg.Refresher()
	// The watchdog's self-probe reaches the webhook from loopback, which the
	// allowlist would drop like any other source. The kernel never accepts
	// a loopback source from outside the host (a martian), and a spoofed one
	// could not complete a handshake: its answers stay on lo.
	if cfg.Firewall.Backend != "none" {
		rc.StaticAllow = append(rc.StaticAllow, probeSources...)
	}
	rc.Fetcher, rc.Firewall, rc.Store = fetch, fw, refresh.NewFileStore(cfg.StateDir)
	rc.Metrics, rc.Log = m, log.Named("refresh")
	ref, err := refresh.New(rc)
	if err != nil {
		return nil, nil, err
	}
	return ref, fw, nil
}

// probeSources are the addresses the webhook's self-probe connects from.
var probeSources = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// newFirewall builds the firewall backend; it touches no kernel state.
func newFirewall(cfg config.Config, log *zap.Logger) (firewall.Firewall, error) {
	fw, err := firewall.New(cfg.FirewallBackend(), log)
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	return fw, nil
}

// userAgent names this build to Agora's API.
func userAgent() string { return "ncs-gateway/" + version }
