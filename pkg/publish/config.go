package publish

import (
	"fmt"
	"strings"
	"time"
)

// Config configures a Publisher: how to reach NATS, which stream to publish
// to, and where the local spool lives. Zero durations and sizes are replaced
// by the defaults of defaultConfig when the Publisher is created.
type Config struct {
	// URL lists the NATS servers, comma-separated (nats://host:4222,...).
	// Ignored when Embedded is set.
	URL string
	// Embedded, when set, makes the publisher connect to this in-process
	// server without a TCP round trip through the kernel; its TCP listener
	// still serves other clients.
	Embedded *Embedded

	// CredsFile is a NATS .creds file (user JWT and nkey seed).
	CredsFile string
	// User and Password authenticate with a user name; Password is a secret.
	User     string
	Password string
	// NkeySeedFile is a file holding a user nkey seed.
	NkeySeedFile string
	// Token is a bearer token; it is a secret.
	Token string
	// TLSCAFile verifies the server certificate; TLSCertFile and TLSKeyFile
	// are the client certificate for mutual TLS.
	TLSCAFile   string
	TLSCertFile string
	TLSKeyFile  string

	// Stream is the JetStream stream, created when absent.
	Stream string
	// SubjectPrefix is the subject prefix; the stream created covers "<SubjectPrefix>.>".
	SubjectPrefix string
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
	DuplicateWindow time.Duration
	// StreamMaxAge is the retention of a stream this package creates.
	StreamMaxAge time.Duration
	// StreamReplicas is the replica count of a stream this package creates.
	StreamReplicas int
	// PublishTimeout bounds one publish, acknowledgement included.
	PublishTimeout time.Duration

	// SpoolPath is the bbolt file holding messages NATS did not take
	// (<state_dir>/spool.db).
	SpoolPath string
	// SpoolMaxBytes caps the encoded size of the spooled messages.
	SpoolMaxBytes int64
}

// Defaults of the operator configuration.
const (
	DefaultStream          = "AGORA_NCS"
	DefaultSubjectPrefix   = "agora.ncs"
	DefaultDuplicateWindow = 2 * time.Hour
	DefaultStreamMaxAge    = 168 * time.Hour
	DefaultStreamReplicas  = 1
	DefaultPublishTimeout  = 3 * time.Second
	DefaultSpoolMaxBytes   = 1 << 30
	DefaultEmbeddedListen  = "127.0.0.1:4222"
	// DefaultEmbeddedSyncInterval is nats.embedded_sync_interval's default,
	// as ParseSyncInterval reads it: fsync before every acknowledgement.
	DefaultEmbeddedSyncInterval = "always"
)

// defaultConfig returns the configuration used for every field left zero.
func defaultConfig() Config {
	return Config{
		Stream:          DefaultStream,
		SubjectPrefix:   DefaultSubjectPrefix,
		DuplicateWindow: DefaultDuplicateWindow,
		StreamMaxAge:    DefaultStreamMaxAge,
		StreamReplicas:  DefaultStreamReplicas,
		PublishTimeout:  DefaultPublishTimeout,
		SpoolMaxBytes:   DefaultSpoolMaxBytes,
	}
}

// withDefaults fills zero fields from defaultConfig.
func (c Config) withDefaults() Config {
	d := defaultConfig()
	if c.Stream == "" {
		c.Stream = d.Stream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = d.SubjectPrefix
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = d.DuplicateWindow
	}
	if c.StreamMaxAge == 0 {
		c.StreamMaxAge = d.StreamMaxAge
	}
	if c.StreamReplicas == 0 {
		c.StreamReplicas = d.StreamReplicas
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = d.SpoolMaxBytes
	}
	return c
}

// ParseSyncInterval maps the operator's embedded_sync_interval to
// EmbeddedConfig.SyncInterval: "always" or "" is 0 (fsync before every
// acknowledgement), anything else is a positive Go duration such as "2m".
func ParseSyncInterval(s string) (time.Duration, error) {
	if s == "" || strings.EqualFold(s, "always") {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parse sync interval: %w", err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("parse sync interval: %q must be \"always\" or a positive duration", s)
	}
	return d, nil
}
