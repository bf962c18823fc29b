package webhook

import "time"

// Server timeouts. A request must be answered well within Agora's 10 s: the
// headers and body arrive within readTimeout, the publish context expires
// defaultPublishTimeout after the handler starts, and writeTimeout (counted
// from the end of the headers) leaves room to write the answer after that.
const (
	readHeaderTimeout     = 5 * time.Second
	readTimeout           = 5 * time.Second
	writeTimeout          = 9 * time.Second
	idleTimeout           = 60 * time.Second
	maxHeaderBytes        = 16 << 10
	defaultPublishTimeout = 8 * time.Second
)

// Defaults of the operator's webhook.* keys.
const (
	// DefaultListen is webhook.listen's default.
	DefaultListen = ":8443"
	// DefaultPath is webhook.path's default.
	DefaultPath = "/agora/ncs"
	// DefaultMaxBodyBytes is the body limit used when Config.MaxBodyBytes is zero.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxNotifyAge is how old a notification's notifyMs may be
	// (webhook.max_notify_age); it stays well inside nats.duplicate_window
	// so that every replay accepted is caught as a duplicate.
	DefaultMaxNotifyAge = 30 * time.Minute
	// DefaultMaxNotifyFuture is how far ahead of this host's clock a
	// notification's notifyMs may be (webhook.max_notify_future).
	DefaultMaxNotifyFuture = 5 * time.Minute
)

// DefaultMaxConnections is the cap on open webhook connections used when
// Config.MaxConnections is zero. Agora needs a few dozen at most; the cap
// bounds what hostile clients can hold: one file descriptor each, about
// 25 KiB for an idle or slow connection, and up to max_body_bytes for one
// whose body is being read.
const DefaultMaxConnections = 512

// Config is the webhook receiver's configuration, filled by the daemon from
// the operator's webhook.* settings.
type Config struct {
	// Listen is the TCP address to bind, e.g. ":8443" or "127.0.0.1:0".
	Listen string
	// Path is the URL path Agora posts to, e.g. "/agora/ncs".
	Path string
	// TLSCertFile and TLSKeyFile, when both set, make the server speak HTTPS.
	TLSCertFile string
	// TLSKeyFile is the PEM private key matching TLSCertFile.
	TLSKeyFile string
	// Secrets are the webhook secrets; a body signed with any of them verifies.
	Secrets []string
	// AcceptSHA1 also accepts Agora-Signature (HMAC-SHA1) when Agora-Signature-V2 is absent.
	AcceptSHA1 bool
	// MaxBodyBytes caps the request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxConnections caps the open connections (webhook.max_connections);
	// zero means DefaultMaxConnections. At the cap new connections wait in
	// the kernel's accept queue while spare ones (idle keep-alive, or still
	// without a whole request header) are closed, longest spare first. The
	// process's open file limit must leave room above it.
	MaxConnections int
	// MaxNotifyAge (webhook.max_notify_age) is how old a signed
	// notification's notifyMs may be; an older one is refused as stale (a
	// replay, or a host clock that runs ahead). Zero means
	// DefaultMaxNotifyAge. Bodies without notifyMs are not checked.
	MaxNotifyAge time.Duration
	// MaxNotifyFuture (webhook.max_notify_future) is how far in the future
	// notifyMs may be; zero means DefaultMaxNotifyFuture.
	MaxNotifyFuture time.Duration
	// PublishTimeout bounds one Publish call; zero means 8 s. It must stay
	// below the server's 9 s write timeout.
	PublishTimeout time.Duration
}

// TLS reports whether the server serves HTTPS.
func (c Config) TLS() bool { return c.TLSCertFile != "" && c.TLSKeyFile != "" }

// withDefaults fills the zero values that have a default.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxNotifyAge == 0 {
		c.MaxNotifyAge = DefaultMaxNotifyAge
	}
	if c.MaxNotifyFuture == 0 {
		c.MaxNotifyFuture = DefaultMaxNotifyFuture
	}
	return c
}
