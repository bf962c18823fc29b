package ncsip

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ncs-gateway/ncs-gateway/internal/loopback"
)

// MaxMaxAddresses bounds ncs.max_addresses: far above any real list, and
// within what one firewall apply handles comfortably.
const MaxMaxAddresses = 100000

// MaxTimeout bounds ncs.timeout, one attempt.
const MaxTimeout = time.Minute

// Validate reports every problem of the configuration at once, each error
// starting with the operator's key (ncs.*). It does no I/O and does not
// check the credentials' presence, which New does; New calls it.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(cfg.Endpoints) == 0 {
		bad("ncs.endpoints", "no endpoint: give at least one URL of GET /v1/ncs/ip")
	}
	for i, e := range cfg.Endpoints {
		if err := checkEndpoint(e); err != nil {
			bad(fmt.Sprintf("ncs.endpoints[%d]", i), "%v", err)
		}
	}
	if strings.Contains(cfg.CustomerID, ":") {
		bad("ncs.customer_id_file", "the customer id contains a colon, which HTTP Basic auth cannot carry")
	}
	if cfg.Timeout < 0 {
		bad("ncs.timeout", "%s is negative", cfg.Timeout)
	} else if cfg.Timeout > MaxTimeout {
		bad("ncs.timeout", "%s is over 1m: one attempt must not hold a refresh for longer", cfg.Timeout)
	}
	// The fields below have no operator key.
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
	if cfg.MaxAddresses < 0 || cfg.MaxAddresses > MaxMaxAddresses {
		bad("ncs.max_addresses", "%d is outside 1..%d (0: %d)", cfg.MaxAddresses, MaxMaxAddresses, DefaultMaxAddresses)
	}
	return errors.Join(errs...)
}

// checkCredentials reports missing credentials; New needs them, Validate
// does not (the daemon reads them after the config).
func (cfg Config) checkCredentials() error {
	var errs []error
	if cfg.CustomerID == "" {
		errs = append(errs, errors.New("ncs.customer_id_file: customer id is empty"))
	}
	if cfg.CustomerSecret == "" {
		errs = append(errs, errors.New("ncs.customer_secret_file: customer secret is empty"))
	}
	return errors.Join(errs...)
}

// checkEndpoint accepts absolute https URLs without user info, and http
// only to a loopback host: the request carries Agora's REST credentials,
// which control recording for the whole project, and user info in a URL
// would end up in error messages and logs.
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
	if u.Scheme == "http" && !loopback.Host(u.Hostname()) {
		return fmt.Errorf("%q is plain http: use https, which carries the credentials encrypted (http is only for a loopback host)", u.Redacted())
	}
	return nil
}
