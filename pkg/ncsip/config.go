package ncsip

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
)

// DefaultBackoff is Agora's recommended wait between attempts.
var DefaultBackoff = []time.Duration{1 * time.Second, 3 * time.Second, 6 * time.Second}

// Config is what a Client needs; zero values take the defaults above.
type Config struct {
	// Endpoints are absolute http(s) URLs of GET /v1/ncs/ip, tried in
	// order. They must not carry credentials.
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
	// UserAgent is sent on every request, e.g. "ncs-gateway/1.2.3".
	UserAgent string
	// HTTPClient sends the requests; nil means a client on
	// http.DefaultTransport (which honours HTTPS_PROXY).
	HTTPClient *http.Client
}

// check reports every problem of cfg at once.
func (cfg Config) check() error {
	var errs []error
	if len(cfg.Endpoints) == 0 {
		errs = append(errs, errors.New("no endpoint: give at least one URL of GET /v1/ncs/ip"))
	}
	for i, e := range cfg.Endpoints {
		if err := checkEndpoint(e); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %d: %w", i, err))
		}
	}
	if cfg.CustomerID == "" {
		errs = append(errs, errors.New("customer id is empty"))
	} else if strings.Contains(cfg.CustomerID, ":") {
		errs = append(errs, errors.New("customer id contains a colon, which HTTP Basic auth cannot carry"))
	}
	if cfg.CustomerSecret == "" {
		errs = append(errs, errors.New("customer secret is empty"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", cfg.Timeout))
	}
	for i, b := range cfg.Backoff {
		if b < 0 {
			errs = append(errs, fmt.Errorf("backoff %d: %s is negative", i, b))
		}
	}
	if cfg.MaxRetryAfter < 0 {
		errs = append(errs, fmt.Errorf("max retry-after %s is negative", cfg.MaxRetryAfter))
	}
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max body bytes %d is negative", cfg.MaxBodyBytes))
	}
	return errors.Join(errs...)
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
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	return cfg
}

// checkEndpoint accepts absolute http(s) URLs without user info: credentials
// in a URL would end up in error messages and logs.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// Only the cause: url.Error repeats the raw URL, user info included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", u.Redacted())
	}
	if u.User != nil {
		return fmt.Errorf("%q carries user info: pass the credentials separately", u.Redacted())
	}
	return nil
}
