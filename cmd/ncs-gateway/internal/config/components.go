package config

import (
	"path/filepath"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ledger"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// The packages' configs as the daemon builds them from the operator's
// Config and Secrets. The daemon, -check-config and the one-shots all build
// from these, so what is checked is what runs.

// Publisher is the publisher's config; emb is nil with an external NATS.
func (cfg Config) Publisher(s Secrets, emb *publish.Embedded) publish.Config {
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

// WebhookServer is the webhook server's config.
func (cfg Config) WebhookServer(s Secrets) webhook.Config {
	return webhook.Config{
		Listen:          cfg.Webhook.Listen,
		Path:            cfg.Webhook.Path,
		TLSCertFile:     cfg.Webhook.TLSCertFile,
		TLSKeyFile:      cfg.Webhook.TLSKeyFile,
		Secrets:         s.WebhookSecrets,
		AcceptSHA1:      cfg.Webhook.AcceptSHA1,
		MaxBodyBytes:    cfg.Webhook.MaxBodyBytes,
		MaxConnections:  cfg.Webhook.MaxConnections,
		MaxNotifyAge:    cfg.Webhook.MaxNotifyAge,
		MaxNotifyFuture: cfg.Webhook.MaxNotifyFuture,
	}
}

// EmbeddedServer is the embedded nats-server's config as the daemon starts it.
func (cfg Config) EmbeddedServer(s Secrets) publish.EmbeddedConfig {
	sync, _ := publish.ParseSyncInterval(cfg.NATS.EmbeddedSyncInterval) // validated
	users := make([]publish.EmbeddedUser, len(cfg.NATS.EmbeddedUsers))
	for i, u := range cfg.NATS.EmbeddedUsers {
		users[i] = publish.EmbeddedUser{User: u.User, NKey: u.NKey}
		if i < len(s.EmbeddedPasswords) {
			users[i].Password = s.EmbeddedPasswords[i]
		}
	}
	return publish.EmbeddedConfig{
		Listen:        cfg.NATS.EmbeddedListen,
		StoreDir:      cfg.StateDir,
		SyncInterval:  sync,
		Users:         users,
		TLSCertFile:   cfg.NATS.EmbeddedTLSCertFile,
		TLSKeyFile:    cfg.NATS.EmbeddedTLSKeyFile,
		TLSCAFile:     cfg.NATS.EmbeddedTLSCAFile,
		Stream:        cfg.NATS.Stream,
		SubjectPrefix: cfg.NATS.SubjectPrefix,
		Anonymous:     cfg.NATS.EmbeddedAnonymous,
		LedgerBucket:  cfg.ledgerBucket(),
	}
}

// ledgerBucket is the bucket readers of the embedded server may read:
// none while the ledger is off.
func (cfg Config) ledgerBucket() string {
	if !cfg.Ledger.Enabled {
		return ""
	}
	return cfg.Ledger.Bucket
}

// SessionLedger is the session ledger's config: the ledger.* keys and the
// stream, prefix and replicas it shares with the publisher. The daemon
// adds the Store (its publisher) once that runs.
func (cfg Config) SessionLedger() ledger.Config {
	return ledger.Config{
		Enabled:       cfg.Ledger.Enabled,
		Bucket:        cfg.Ledger.Bucket,
		Stream:        cfg.NATS.Stream,
		SubjectPrefix: cfg.NATS.SubjectPrefix,
		Replicas:      cfg.NATS.StreamReplicas,
		UploadGrace:   cfg.Ledger.UploadGrace,
		StallAfter:    cfg.Ledger.StallAfter,
	}
}

// FirewallBackend is the firewall backend's config.
func (cfg Config) FirewallBackend() firewall.Config {
	return firewall.Config{Backend: cfg.Firewall.Backend, Ports: cfg.Firewall.Ports}
}

// AgoraClient is the Agora client's config; userAgent names this build.
func (cfg Config) AgoraClient(s Secrets, userAgent string) ncsip.Config {
	return ncsip.Config{
		Endpoints:      cfg.NCS.Endpoints,
		CustomerID:     s.CustomerID,
		CustomerSecret: s.CustomerSecret,
		Timeout:        cfg.NCS.Timeout,
		MaxAddresses:   cfg.NCS.MaxAddresses,
		AllowPrivate:   cfg.Firewall.AllowPrivate,
		UserAgent:      userAgent,
	}
}

// Refresher is the refresher's policy from the firewall.* keys, without
// its parts (fetcher, firewall, store). An unparsable static_allow is
// reported by Load.
func (cfg Config) Refresher() refresh.Config {
	static, _ := ParseStaticAllow(cfg.Firewall.StaticAllow)
	return refresh.Config{
		StaticAllow: static,
		MinIPs:      cfg.Firewall.MinIPs,
		MaxShrink:   cfg.Firewall.MaxShrink,
		RemoveGrace: cfg.Firewall.RemoveGrace,
	}
}
