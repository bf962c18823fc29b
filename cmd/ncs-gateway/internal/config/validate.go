package config

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/ncs-gateway/ncs-gateway/internal/loopback"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// Bounds of cmd's own keys.
const (
	// maxReconcileInterval bounds firewall.reconcile_interval: the periodic
	// reconcile is the backstop that puts the allowlist back after an
	// external change the watch missed, so it must not be hours away.
	maxReconcileInterval = 10 * time.Minute
	// maxSocketPath is the longest admin.control_socket: sun_path holds
	// 108 bytes with the terminating NUL.
	maxSocketPath = 107
)

// validate records every problem that the config alone shows, without the
// secrets: cmd's own keys (state_dir, log, admin, schedule, the
// refresher's firewall.* keys) and the rules that span packages. The
// packages' own rules run when the daemon's components are built, once the
// secrets are read.
func (c *Config) validate(p *Problems) {
	if c.StateDir == "" {
		p.Add("state_dir", "must be set: everything durable (spool, allowlist, JetStream store) lives there")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Add("log.level", fmt.Sprintf("%q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		p.Add("log.format", fmt.Sprintf("%q is not one of json, console", c.Log.Format))
	}
	if host, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
		p.Add("admin.listen", fmt.Sprintf("%q is not host:port (%v)", c.Admin.Listen, err))
	} else if !loopback.Host(host) && !c.Admin.AllowRemote {
		p.Add("admin.listen", fmt.Sprintf("%q is reachable from other hosts and /status and /metrics answer anyone, without authentication "+
			"(the allowlist, the spool, NATS): listen on 127.0.0.1, or set admin.allow_remote: true if a firewall or proxy you run guards the port", c.Admin.Listen))
	}
	switch {
	case !filepath.IsAbs(c.Admin.ControlSocket):
		p.Add("admin.control_socket", fmt.Sprintf("must be an absolute path (got %q): the one-shots find the daemon there", c.Admin.ControlSocket))
	case len(c.Admin.ControlSocket) > maxSocketPath:
		p.Add("admin.control_socket", fmt.Sprintf("%q is %d bytes: a unix socket address holds at most %d; use a shorter path such as /run/ncs-gateway/control.sock",
			c.Admin.ControlSocket, len(c.Admin.ControlSocket), maxSocketPath))
	}
	if c.NATS.URL == "" {
		if _, err := publish.ParseSyncInterval(c.NATS.EmbeddedSyncInterval); err != nil {
			p.Add("nats.embedded_sync_interval", fmt.Sprintf("%q is neither \"always\" nor a positive duration like 2m", c.NATS.EmbeddedSyncInterval))
		}
	}
	if c.NATS.PasswordFile != "" && c.NATS.User == "" {
		p.Add("nats.user", "nats.password_file is set but nats.user is empty")
	}
	for i, u := range c.NATS.EmbeddedUsers {
		key := fmt.Sprintf("nats.embedded_users[%d]", i)
		if u.User != "" && u.PasswordFile == "" {
			p.Add(key, fmt.Sprintf("user %q needs password_file: a password is never written in the config", u.User))
		}
		if u.User == "" && u.PasswordFile != "" {
			p.Add(key, "password_file is set but user is empty")
		}
	}
	if len(c.NCS.Endpoints) > 0 {
		if err := refresh.CheckSchedule(c.NCS.Schedule); err != nil {
			p.Add("ncs.schedule", err.Error())
		}
	}

	// The refresher's keys: parsed here, judged by the refresher's Validate
	// (with the packages' rules, in checkComponents).
	if _, err := ParseStaticAllow(c.Firewall.StaticAllow); err != nil {
		p.Add("firewall.static_allow", err.Error())
	}
	if c.Firewall.ReconcileInterval < time.Second || c.Firewall.ReconcileInterval > maxReconcileInterval {
		p.Add("firewall.reconcile_interval", fmt.Sprintf("%s is outside 1s..10m: it is the backstop that puts the allowlist back after an external change", c.Firewall.ReconcileInterval))
	}

	// Rules that span packages.
	if c.Firewall.Backend != firewall.BackendNone {
		if host, port, err := net.SplitHostPort(c.Webhook.Listen); err == nil && !loopback.Host(host) && !portListed(port, c.Firewall.Ports) {
			p.Add("webhook.listen", fmt.Sprintf("%q: port %s is not in firewall.ports %v, so the allowlist does not protect it: "+
				"add the port to firewall.ports, listen on 127.0.0.1 behind a local TLS proxy, or set firewall.backend: none",
				c.Webhook.Listen, port, c.Firewall.Ports))
		}
	}
	// A zero is the package's default, so compare what will run.
	age := cmp.Or(c.Webhook.MaxNotifyAge, webhook.DefaultMaxNotifyAge)
	future := cmp.Or(c.Webhook.MaxNotifyFuture, webhook.DefaultMaxNotifyFuture)
	if window := cmp.Or(c.NATS.DuplicateWindow, publish.DefaultDuplicateWindow); age+future >= window {
		p.Add("webhook.max_notify_age", fmt.Sprintf("%s plus webhook.max_notify_future %s must stay below nats.duplicate_window %s, so that every replay accepted is caught as a duplicate",
			age, future, window))
	}
}

// CheckTLSFiles loads the certificates, keys and CA bundles the daemon
// would load, so a missing or mismatched file fails the check, not the
// start.
func (c Config) CheckTLSFiles(p *Problems) {
	checkKeyPair(p, "webhook.tls_cert_file", c.Webhook.TLSCertFile, c.Webhook.TLSKeyFile)
	checkKeyPair(p, "nats.tls_cert_file", c.NATS.TLSCertFile, c.NATS.TLSKeyFile)
	checkCA(p, "nats.tls_ca_file", c.NATS.TLSCAFile)
	if c.NATS.URL == "" {
		checkKeyPair(p, "nats.embedded_tls_cert_file", c.NATS.EmbeddedTLSCertFile, c.NATS.EmbeddedTLSKeyFile)
		checkCA(p, "nats.embedded_tls_ca_file", c.NATS.EmbeddedTLSCAFile)
	}
}

// checkKeyPair loads a certificate and its key when both are set (the
// packages report a lone one).
func checkKeyPair(p *Problems, key, cert, keyFile string) {
	if cert == "" || keyFile == "" {
		return
	}
	if _, err := tls.LoadX509KeyPair(cert, keyFile); err != nil {
		p.Add(key, fmt.Sprintf("load the certificate and key: %v", err))
	}
}

// checkCA reads a PEM bundle of CA certificates.
func checkCA(p *Problems, key, file string) {
	if file == "" {
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		p.Add(key, err.Error())
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		p.Add(key, fmt.Sprintf("%s holds no PEM certificate", file))
	}
}

// Warnings lists what is allowed but weakens a trust promise. The daemon
// logs them at start and -check-config prints them.
func (cfg Config) Warnings() []string {
	var out []string
	if host, _, err := net.SplitHostPort(cfg.Admin.Listen); err == nil && !loopback.Host(host) {
		out = append(out, fmt.Sprintf("admin.listen: %q is reachable from other hosts and /status is unauthenticated (it shows the allowlist, the spool and NATS): bind it to 127.0.0.1 or filter the port", cfg.Admin.Listen))
	}
	if cfg.NATS.URL != "" && (len(cfg.NATS.EmbeddedUsers) > 0 || cfg.NATS.EmbeddedTLSCertFile != "" || cfg.NATS.EmbeddedTLSCAFile != "") {
		out = append(out, "nats.embedded_users, nats.embedded_tls_*: ignored, nats.url is set and no embedded server runs")
	}
	if cfg.NATS.URL == "" {
		out = append(out, cfg.EmbeddedServer(Secrets{}).Warnings()...)
	}
	secretFiles := []struct{ key, path string }{
		{"webhook.secrets_file", cfg.Webhook.SecretsFile},
		{"webhook.tls_key_file", cfg.Webhook.TLSKeyFile},
		{"ncs.customer_id_file", cfg.NCS.CustomerIDFile},
		{"ncs.customer_secret_file", cfg.NCS.CustomerSecretFile},
		{"nats.password_file", cfg.NATS.PasswordFile},
		{"nats.token_file", cfg.NATS.TokenFile},
		{"nats.nkey_seed_file", cfg.NATS.NKeySeedFile},
		{"nats.creds_file", cfg.NATS.CredsFile},
		{"nats.tls_key_file", cfg.NATS.TLSKeyFile},
		{"nats.embedded_tls_key_file", cfg.NATS.EmbeddedTLSKeyFile},
	}
	for i, u := range cfg.NATS.EmbeddedUsers {
		secretFiles = append(secretFiles, struct{ key, path string }{fmt.Sprintf("nats.embedded_users[%d].password_file", i), u.PasswordFile})
	}
	for _, f := range secretFiles {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(f.path); err == nil && fi.Mode().Perm()&0o004 != 0 {
			out = append(out, fmt.Sprintf("%s: %s is readable by every user of this host (mode %04o): chmod o-r it", f.key, f.path, fi.Mode().Perm()))
		}
	}
	return out
}

// portListed reports whether port (as written in a listen address) is one
// of ports.
func portListed(port string, ports []uint16) bool {
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && slices.Contains(ports, uint16(n))
}
