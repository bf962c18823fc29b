package publish

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// EmbeddedConfig configures the in-process nats-server the daemon runs when
// no external NATS URL is configured.
type EmbeddedConfig struct {
	// Listen is the host:port of the client listener, so local consumers and
	// the nats CLI can subscribe; port 0 picks a free port.
	Listen string
	// StoreDir is the state directory: nats-server keeps JetStream data in
	// <StoreDir>/jetstream.
	StoreDir string
	// SyncInterval is how often JetStream fsyncs its files. Zero means
	// "always": fsync before acknowledging each message, so an acknowledged
	// notification survives a power cut. nats-server's own default is 2m.
	SyncInterval time.Duration
	// ReadyTimeout bounds the wait for the server to accept connections
	// (default 10s).
	ReadyTimeout time.Duration

	// Users are the consumer users (nats.embedded_users), with read-only
	// rights on Stream and "<SubjectPrefix>.>".
	Users []EmbeddedUser
	// TLSCertFile and TLSKeyFile make the client listener speak TLS; with
	// TLSCAFile set, clients must present a certificate it signed.
	TLSCertFile string
	TLSKeyFile  string
	TLSCAFile   string
	// Stream and SubjectPrefix are what the read-only permissions cover.
	Stream        string
	SubjectPrefix string
}

// EmbeddedUser is one consumer of nats.embedded_users: a user with a
// password (plaintext or a bcrypt hash "$2a$..."), or a user public nkey.
type EmbeddedUser struct {
	User     string
	Password string
	NKey     string
}

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts nats-server in-process with a JetStream file store,
// routes its logs to log, and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*Embedded, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("check embedded nats config: %w", err)
	}
	host, portStr, _ := net.SplitHostPort(cfg.Listen) // validated
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default 4222
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}

	opts := &server.Options{
		ServerName:             "ncs-gateway",
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		SyncAlways:             cfg.SyncInterval <= 0,
		SyncInterval:           max(cfg.SyncInterval, 0),
		NoSigs:                 true, // the daemon owns signal handling
		DisableJetStreamBanner: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded nats server: %w", err)
	}
	slog := newServerLogger(log)
	srv.SetLoggerV2(slog, log.Core().Enabled(zap.DebugLevel), false, false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if f := slog.lastFatal(); f != "" {
			return nil, fmt.Errorf("start embedded nats server: %s", f)
		}
		return nil, fmt.Errorf("start embedded nats server: not ready after %s", cfg.ReadyTimeout)
	}
	log.Info("embedded nats server ready",
		zap.String("client_url", srv.ClientURL()),
		zap.String("store_dir", cfg.StoreDir),
		zap.Bool("sync_always", opts.SyncAlways),
	)
	return &Embedded{srv: srv}, nil
}

// ClientURL is the nats:// URL other clients use to reach the server.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Server is the underlying nats-server, for in-process connections and tests.
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
