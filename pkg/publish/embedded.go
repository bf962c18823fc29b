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

	// Anonymous (nats.embedded_anonymous) lets clients without credentials
	// read, as a declared user does, on a loopback listener or with a
	// client certificate of TLSCAFile. Off, every client must name a user:
	// the way to keep other local processes from reading, and from
	// creating durable consumers up to the account's limit.
	Anonymous bool
	// LedgerBucket is the session ledger's KV bucket (ledger.bucket),
	// which readers may read but not write; empty: ledger off, and readers
	// get no KV permissions.
	LedgerBucket string

	// Users are the consumer users (nats.embedded_users), with read-only
	// rights on Stream and "<SubjectPrefix>.>". On a listen address that is
	// not loopback, they (or client certificates) are the only way in.
	Users []EmbeddedUser
	// TLSCertFile and TLSKeyFile make the client listener speak TLS; with
	// TLSCAFile set, clients must present a certificate it signed, and such
	// a client reads without further credentials.
	TLSCertFile string
	TLSKeyFile  string
	TLSCAFile   string
	// Stream and SubjectPrefix are what the read-only permissions cover
	// (default DefaultStream and DefaultSubjectPrefix): the gateway alone
	// writes.
	Stream        string
	SubjectPrefix string
}

// EmbeddedUser is one consumer of nats.embedded_users: a user with a
// password (plaintext or a bcrypt hash "$2a$..."), or a user public nkey
// whose seed the consumer keeps. It reads the stream and nothing else, like
// an anonymous local client.
type EmbeddedUser struct {
	User     string
	Password string
	NKey     string
}

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	srv  *server.Server
	auth *embeddedAuth // the gateway's identity; nil on an open test server
}

// StartEmbedded starts nats-server in-process with a JetStream file store,
// routes its logs to log, and waits until it accepts connections. Only the
// Publisher given this Embedded writes: other clients read.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*Embedded, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("check embedded nats config: %w", err)
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	opts, err := embeddedOptions(cfg)
	if err != nil {
		return nil, err
	}
	gw, err := newEmbeddedAuth()
	if err != nil {
		return nil, err
	}
	if err := configureAuth(opts, cfg, gw); err != nil {
		return nil, err
	}
	e, err := startServer(opts, cfg.ReadyTimeout, log,
		zap.Int("reader_users", len(cfg.Users)),
		zap.Bool("anonymous_read", opts.NoAuthUser != ""),
		zap.Bool("tls", opts.TLSConfig != nil),
		zap.Bool("client_certificates", opts.TLSVerify),
	)
	if err != nil {
		return nil, err
	}
	e.auth = gw
	return e, nil
}

// embeddedOptions are the server options of cfg, without authentication.
func embeddedOptions(cfg EmbeddedConfig) (*server.Options, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("parse embedded listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("parse embedded listen port %q: not a port number", portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default 4222
	}
	return &server.Options{
		ServerName:             "ncs-gateway",
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		SyncAlways:             cfg.SyncInterval <= 0,
		SyncInterval:           max(cfg.SyncInterval, 0),
		NoSigs:                 true, // the daemon owns signal handling
		DisableJetStreamBanner: true,
	}, nil
}

// startServer starts a server with opts, waits until it accepts
// connections, and logs that it is ready with fields.
func startServer(opts *server.Options, readyTimeout time.Duration, log *zap.Logger, fields ...zap.Field) (*Embedded, error) {
	if readyTimeout <= 0 {
		readyTimeout = 10 * time.Second
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded nats server: %w", err)
	}
	slog := newServerLogger(log)
	srv.SetLoggerV2(slog, log.Core().Enabled(zap.DebugLevel), false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if f := slog.lastFatal(); f != "" {
			return nil, fmt.Errorf("start embedded nats server: %s", f)
		}
		return nil, fmt.Errorf("start embedded nats server: not ready after %s", readyTimeout)
	}
	log.Info("embedded nats server ready", append([]zap.Field{
		zap.String("client_url", srv.ClientURL()),
		zap.String("store_dir", opts.StoreDir),
		zap.Bool("sync_always", opts.SyncAlways),
	}, fields...)...)
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
