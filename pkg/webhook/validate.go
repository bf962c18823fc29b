package webhook

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Limits of the operator's webhook.* keys.
const (
	MinMaxBodyBytes    = 1 << 10
	MaxMaxBodyBytes    = 64 << 20
	MaxMaxConnections  = 60000
	MinMaxNotifyAge    = time.Minute
	MinMaxNotifyFuture = time.Second
	MaxMaxNotifyFuture = time.Hour
)

// Validate reports every problem of the configuration at once, each error
// starting with the operator's key. Zero values take their defaults first.
// It does no I/O (the certificate is loaded by NewServer) and does not
// check the secrets' presence, which NewServer does; NewServer calls it.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("webhook.listen", "%q is not host:port (%v)", c.Listen, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("webhook.listen", "%q: port %q is not a port number", c.Listen, port)
	}
	// The path becomes an echo route: ':' and '*' would make it a pattern.
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, ":*?# \t\r\n") {
		bad("webhook.path", "%q must start with / and hold no : * ? # or space", c.Path)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("webhook.tls_cert_file", "set both tls_cert_file and tls_key_file to serve HTTPS, or neither")
	}
	if c.MaxBodyBytes < MinMaxBodyBytes || c.MaxBodyBytes > MaxMaxBodyBytes {
		bad("webhook.max_body_bytes", "%d is outside %d..%d", c.MaxBodyBytes, MinMaxBodyBytes, MaxMaxBodyBytes)
	}
	if c.MaxConnections < 1 || c.MaxConnections > MaxMaxConnections {
		bad("webhook.max_connections", "%d is outside 1..%d (keep it below the open file limit, 65536 in the systemd unit)",
			c.MaxConnections, MaxMaxConnections)
	}
	// The upper bound is the daemon's: max_notify_age + max_notify_future
	// must stay below nats.duplicate_window, so every replay fresh enough to
	// pass is still caught as a duplicate.
	if c.MaxNotifyAge < MinMaxNotifyAge {
		bad("webhook.max_notify_age", "%s is below 1m", c.MaxNotifyAge)
	}
	if c.MaxNotifyFuture < MinMaxNotifyFuture || c.MaxNotifyFuture > MaxMaxNotifyFuture {
		bad("webhook.max_notify_future", "%s is outside 1s..1h", c.MaxNotifyFuture)
	}
	if c.PublishTimeout < 0 || c.PublishTimeout >= writeTimeout {
		errs = append(errs, fmt.Errorf("webhook publish timeout: %s must be between 0 and %s", c.PublishTimeout, writeTimeout))
	}
	return errors.Join(errs...)
}
