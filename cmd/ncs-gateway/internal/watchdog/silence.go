package watchdog

import (
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
)

// MaxFetchTime is the longest one ncsip fetch may take while Agora is slow
// or failing, and so the longest a loop that waits on it may stay silent:
// every attempt runs to cfg.Timeout, and each wait between two attempts is
// its backoff or a Retry-After capped at cfg.MaxRetryAfter, whichever the
// client picks. Zero fields count as the client's defaults. With the
// defaults (10 s, backoff 1 s 3 s 6 s, Retry-After cap 10 s) it is 70 s.
func MaxFetchTime(cfg ncsip.Config) time.Duration {
	timeout, capRA, backoff := cfg.Timeout, cfg.MaxRetryAfter, cfg.Backoff
	if timeout == 0 {
		timeout = ncsip.DefaultTimeout
	}
	if capRA == 0 {
		capRA = ncsip.DefaultMaxRetryAfter
	}
	if backoff == nil {
		backoff = ncsip.DefaultBackoff
	}
	d := time.Duration(1+len(backoff)) * timeout
	for _, b := range backoff {
		d += max(b, capRA)
	}
	return d
}
