package ncsip

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Client fetches the NCS address list; it is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *zap.Logger
}

// New checks cfg, reporting every problem at once, and fills its defaults.
// A nil log discards the client's logs.
func New(cfg Config, log *zap.Logger) (*Client, error) {
	if err := errors.Join(cfg.Validate(), cfg.checkCredentials()); err != nil {
		return nil, fmt.Errorf("check ncs ip client config: %w", err)
	}
	cfg = cfg.withDefaults()
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		hc = new(*cfg.HTTPClient) // a copy: the caller's client keeps its own policy
	}
	// Never follow a redirect: the request carries the Basic credentials,
	// and Go re-sends them to the same host on another port or scheme. The
	// 3xx answer itself is then refused as a bad response.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if log == nil {
		log = zap.NewNop()
	}
	return &Client{cfg: cfg, http: hc, log: log.Named("ncsip")}, nil
}

// Fetch asks the endpoints for the NCS address list as the package comment
// describes. On failure the error names each attempt's endpoint and fault,
// and Reason labels it; intermediate failures are logged at warn, the final
// one is only returned.
func (c *Client) Fetch(ctx context.Context) (Result, error) {
	maxAttempts := 1 + len(c.cfg.Backoff)
	skipped := make([]bool, len(c.cfg.Endpoints))
	var failures []error
	ep := 0
	for n := 0; ; n++ {
		endpoint := c.cfg.Endpoints[ep]
		res, retryAfter, err := c.attempt(ctx, endpoint)
		if err == nil {
			res.Endpoint = endpoint
			res.Attempts = n + 1
			c.log.Debug("ncs ip list fetched",
				zap.String("endpoint", endpoint),
				zap.Int("attempt", n+1),
				zap.Int("ip_count", len(res.Addrs)),
				zap.Int("rejected_count", res.RejectedCount))
			return res, nil
		}
		failures = append(failures, err)
		if n+1 >= maxAttempts || ctx.Err() != nil || errors.Is(err.kind, ErrUnauthorized) {
			return Result{}, &fetchError{attempts: failures}
		}

		var wait time.Duration
		switch err.kind {
		case errTimeout, errNetwork, errRateLimited, errServer:
			wait = c.cfg.Backoff[n]
			if retryAfter >= 0 {
				wait = min(retryAfter, c.cfg.MaxRetryAfter)
			}
		default:
			skipped[ep] = true
		}
		next, ok := nextEndpoint(skipped, ep)
		if !ok {
			return Result{}, &fetchError{attempts: failures}
		}
		c.log.Warn("ncs ip fetch attempt failed",
			zap.String("endpoint", endpoint),
			zap.Int("attempt", n+1),
			zap.Int("status", err.status),
			zap.String("reason", Reason(err)),
			zap.Duration("next_wait", wait),
			zap.String("next_endpoint", c.cfg.Endpoints[next]),
			zap.Error(err))
		if werr := sleep(ctx, wait); werr != nil {
			failures = append(failures, fmt.Errorf("wait %s before attempt %d: %w", wait, n+2, werr))
			return Result{}, &fetchError{attempts: failures}
		}
		ep = next
	}
}

// nextEndpoint returns the index after cur, wrapping around, that is not
// skipped; cur itself comes last, so a single endpoint is retried.
func nextEndpoint(skipped []bool, cur int) (int, bool) {
	for i := 1; i <= len(skipped); i++ {
		j := (cur + i) % len(skipped)
		if !skipped[j] {
			return j, true
		}
	}
	return 0, false
}

// sleep waits d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
