package ncsip

import (
	"net/http"
	"slices"
	"time"
)

// Defaults used for the zero values of Config.
const (
	// DefaultTimeout bounds one attempt.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBodyBytes bounds an answer (4 MiB, far above a real list).
	DefaultMaxBodyBytes = 4 << 20
	// DefaultMaxRetryAfter caps a server's Retry-After.
	DefaultMaxRetryAfter = 10 * time.Second
	// DefaultUserAgent is sent when Config.UserAgent is empty.
	DefaultUserAgent = "ncs-gateway/dev"
	// DefaultMaxAddresses is ncs.max_addresses' default: Agora lists tens
	// of addresses, so a list in the thousands is not Agora's.
	DefaultMaxAddresses = 2000
)

// DefaultEndpoints are Agora's two endpoints of GET /v1/ncs/ip, the
// default of ncs.endpoints.
var DefaultEndpoints = []string{"https://api.sd-rtn.com/v1/ncs/ip", "https://api.agora.io/v1/ncs/ip"}

// DefaultBackoff is Agora's recommended wait between attempts.
var DefaultBackoff = []time.Duration{1 * time.Second, 3 * time.Second, 6 * time.Second}

// Config is what a Client needs; zero values take the defaults above.
type Config struct {
	// Endpoints are absolute https URLs of GET /v1/ncs/ip, tried in
	// order; http only to a loopback host. They must not carry credentials.
	Endpoints []string
	// CustomerID and CustomerSecret are Agora's REST credentials (HTTP
	// Basic auth), not the webhook secret.
	CustomerID, CustomerSecret string
	// Timeout bounds one attempt, headers and body together.
	Timeout time.Duration
	// Backoff is the wait after each failed attempt; there are at most
	// 1+len(Backoff) attempts. nil means DefaultBackoff; a non-nil empty
	// slice means a single attempt.
	Backoff []time.Duration
	// MaxRetryAfter caps a server's Retry-After on 429 and 503.
	MaxRetryAfter time.Duration
	// AllowPrivate accepts RFC 1918, fc00::/7 and 100.64.0.0/10 addresses.
	AllowPrivate bool
	// MaxBodyBytes bounds an answer; a longer one is a bad response.
	MaxBodyBytes int64
	// MaxAddresses is the most addresses an answer may list
	// (ncs.max_addresses); a longer list is refused. Zero means
	// DefaultMaxAddresses.
	MaxAddresses int
	// UserAgent is sent on every request, e.g. "ncs-gateway/1.2.3".
	UserAgent string
	// HTTPClient sends the requests; nil means a client on
	// http.DefaultTransport (which honours HTTPS_PROXY). The client uses a
	// copy of it that follows no redirect.
	HTTPClient *http.Client
}

// withDefaults fills the zero values and copies the slices, so the caller
// can reuse its Config.
func (cfg Config) withDefaults() Config {
	cfg.Endpoints = slices.Clone(cfg.Endpoints)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	cfg.Backoff = slices.Clone(cfg.Backoff)
	if cfg.MaxRetryAfter == 0 {
		cfg.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxAddresses == 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	return cfg
}
