package publish

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/ncs-gateway/ncs-gateway/internal/loopback"
)

// Limits of the operator configuration. The publish timeout must leave room
// inside Agora's 10 s wait for the spool write and the answer; the duplicate
// window must outlast Agora's retries.
const (
	MinDuplicateWindow = time.Minute
	MinPublishTimeout  = 100 * time.Millisecond
	MaxPublishTimeout  = 7 * time.Second
	MinSpoolMaxBytes   = 1 << 20
	MaxStreamReplicas  = 5
	// maxStreamNameLen is nats-server's JSMaxNameLen.
	maxStreamNameLen = 255
	// maxSubjectTokenLen bounds each token of the subject prefix, as the
	// webhook bounds the tokens it takes from a notification.
	maxSubjectTokenLen = 64
)

// Validate reports every problem of the configuration at once, each error
// starting with the operator's key. Zero values are valid: they take the
// defaults. It does no I/O; New calls it too.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.URL != "" {
		for u := range strings.SplitSeq(c.URL, ",") {
			u = strings.TrimSpace(u)
			pu, err := url.Parse(u)
			switch {
			case err != nil || pu.Host == "":
				bad("nats.url", "%q is not a URL like nats://host:4222", redactURL(u))
			case pu.User != nil:
				bad("nats.url", "must not carry credentials: use nats.user with NCS_GATEWAY_NATS_PASSWORD, creds_file or nkey_seed_file")
			case c.hasCredentials() && !c.usesTLS(pu) && !loopbackHost(pu.Hostname()):
				bad("nats.url", "%q is not on this host and credentials would cross the network in the clear: "+
					"use tls:// or set nats.tls_ca_file (or a client certificate)", u)
			}
		}
	}
	errs = append(errs, validateStream(c.Stream), validateSubjectPrefix(c.SubjectPrefix))
	if c.DuplicateWindow < MinDuplicateWindow {
		bad("nats.duplicate_window", "%s is too short to catch Agora's retries; use at least 1m (default 2h)", c.DuplicateWindow)
	}
	if c.StreamMaxAge < 0 {
		bad("nats.stream_max_age", "%s must be positive", c.StreamMaxAge)
	} else if c.StreamMaxAge < c.DuplicateWindow {
		bad("nats.stream_max_age", "%s must be at least nats.duplicate_window (%s)", c.StreamMaxAge, c.DuplicateWindow)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > MaxStreamReplicas {
		bad("nats.stream_replicas", "%d is outside 1..%d", c.StreamReplicas, MaxStreamReplicas)
	}
	if c.PublishTimeout < MinPublishTimeout || c.PublishTimeout > MaxPublishTimeout {
		bad("nats.publish_timeout", "%s is outside 100ms..7s: Agora waits 10 s for the answer and the spool needs the rest", c.PublishTimeout)
	}
	if c.SpoolPath == "" {
		bad("state_dir", "set a directory for the spool")
	}
	if c.SpoolMaxBytes < MinSpoolMaxBytes {
		bad("spool.max_bytes", "%d is below 1 MiB", c.SpoolMaxBytes)
	}
	if c.User == "" && c.Password != "" {
		bad("nats.user", "set a user to go with the password")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("nats.tls_cert_file", "set both tls_cert_file and tls_key_file for a client certificate, or neither")
	}
	return errors.Join(errs...)
}

// Validate reports every problem of the embedded server's configuration at
// once, each error starting with the operator's key. It does no I/O;
// StartEmbedded calls it too.
func (c EmbeddedConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("nats.embedded_listen", "%q is not host:port (%v)", c.Listen, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("nats.embedded_listen", "%q: port %q is not a port number", c.Listen, port)
	}
	if c.StoreDir == "" {
		bad("state_dir", "must be set: the embedded server keeps its JetStream store there")
	}
	if c.SyncInterval < 0 {
		bad("nats.embedded_sync_interval", "%s must be positive (0 is \"always\")", c.SyncInterval)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("nats.embedded_tls_cert_file", "set both embedded_tls_cert_file and embedded_tls_key_file, or neither")
	}
	if c.TLSCAFile != "" && c.TLSCertFile == "" {
		bad("nats.embedded_tls_ca_file", "needs embedded_tls_cert_file and embedded_tls_key_file: clients check the server's certificate before they show theirs")
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		key := fmt.Sprintf("nats.embedded_users[%d]", i)
		switch {
		case u.NKey != "" && (u.User != "" || u.Password != ""):
			bad(key, "set either user with password_file, or nkey, not both")
		case u.NKey != "":
			if !nkeys.IsValidPublicUserKey(u.NKey) {
				bad(key, "nkey %q is not a user public key (56 characters starting with U)", u.NKey)
			}
		case u.User == "":
			bad(key, "set user with password_file, or nkey")
		case u.Password == "":
			bad(key, "user %q has no password: password_file is empty", u.User)
		}
		id := u.User + u.NKey
		if id != "" && seen[id] {
			bad(key, "%q is listed twice", id)
		}
		seen[id] = true
	}
	if err == nil && !loopbackHost(host) && len(c.Users) == 0 && c.TLSCAFile == "" {
		bad("nats.embedded_listen", "%q is reachable from other hosts and lets anyone read every notification: "+
			"set nats.embedded_users or nats.embedded_tls_ca_file, or listen on 127.0.0.1", c.Listen)
	}
	if err == nil && !loopbackHost(host) && c.TLSCertFile == "" && c.hasPasswordUsers() {
		bad("nats.embedded_listen", "%q is reachable from other hosts and nats.embedded_users has passwords: "+
			"they and every notification would cross the network in the clear; set nats.embedded_tls_cert_file "+
			"and nats.embedded_tls_key_file, or listen on 127.0.0.1", c.Listen)
	}
	if c.Stream != "" {
		errs = append(errs, validateStream(c.Stream))
	}
	if c.SubjectPrefix != "" {
		errs = append(errs, validateSubjectPrefix(c.SubjectPrefix))
	}
	return errors.Join(errs...)
}

// validateSubjectPrefix is the one rule for nats.subject_prefix: one or more
// dot-separated tokens of 1 to 64 of A-Z a-z 0-9 _ -, so that every subject
// built from it is a literal subject that nats-server and every consumer's
// filter read the same way.
func validateSubjectPrefix(p string) error {
	ok := p != ""
	for tok := range strings.SplitSeq(p, ".") {
		if !ok {
			break
		}
		ok = len(tok) >= 1 && len(tok) <= maxSubjectTokenLen
		for i := 0; ok && i < len(tok); i++ {
			c := tok[i]
			ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
		}
	}
	if !ok {
		return fmt.Errorf("nats.subject_prefix: %q must be dot-separated tokens of 1 to 64 of A-Z a-z 0-9 _ -", p)
	}
	return nil
}

// validateStream is nats-server's rule for a stream name on a file store:
// no whitespace, '.', '*', '>' or path separator, at most 255 bytes.
func validateStream(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n\f.*>/\\") {
		return fmt.Errorf("nats.stream: %q must not contain spaces, '.', '*', '>', '/' or '\\'", s)
	}
	if len(s) > maxStreamNameLen {
		return fmt.Errorf("nats.stream: %d bytes is longer than nats-server's limit of %d", len(s), maxStreamNameLen)
	}
	return nil
}

// loopbackHost is the module's one rule for a listen host that reaches
// this host only.
var loopbackHost = loopback.Host

// redactURL drops the user info of a URL that does not parse cleanly, so a
// password never reaches an error message.
func redactURL(u string) string {
	if i := strings.LastIndex(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "xxxxx" + u[i:]
		}
		return "xxxxx" + u[i:]
	}
	return u
}

// hasCredentials reports whether the gateway authenticates to nats.url.
func (c Config) hasCredentials() bool {
	return c.User != "" || c.Password != "" || c.Token != "" || c.CredsFile != "" || c.NkeySeedFile != ""
}

// usesTLS reports whether the connection to u is TLS: a tls:// URL, or a
// CA or client certificate configured, which makes nats.go require TLS.
func (c Config) usesTLS(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, "tls") || c.TLSCAFile != "" || c.TLSCertFile != ""
}

// hasPasswordUsers reports whether a declared reader logs in with a password.
func (c EmbeddedConfig) hasPasswordUsers() bool {
	for _, u := range c.Users {
		if u.NKey == "" {
			return true
		}
	}
	return false
}

// Warnings lists what -check-config reports without refusing: settings
// that work but give readers more than the operator may mean. Each starts
// with the operator's key; none carries a secret.
func (c EmbeddedConfig) Warnings() []string {
	host, _, err := net.SplitHostPort(c.Listen)
	remote := err == nil && !loopbackHost(host)
	var out []string
	if c.Anonymous && remote {
		how := "anonymous clients are refused there anyway (no client CA)"
		if c.TLSCAFile != "" {
			how = "any client with a certificate of nats.embedded_tls_ca_file reads without a user, " +
				"and can create durable consumers up to the account's limit"
		}
		out = append(out, fmt.Sprintf("nats.embedded_anonymous: on with nats.embedded_listen %q, which other hosts reach: "+
			"%s; set embedded_anonymous: false", c.Listen, how))
	}
	if c.Anonymous && len(c.Users) > 0 && (!remote || c.TLSCAFile != "") {
		out = append(out, "nats.embedded_anonymous: on while nats.embedded_users are declared: clients without "+
			"a user read every notification all the same, and can create durable consumers up to the account's "+
			"limit that survive restarts and lock real consumers out; set embedded_anonymous: false")
	}
	if !c.Anonymous && len(c.Users) == 0 {
		out = append(out, "nats.embedded_anonymous: off and no nats.embedded_users: no client can read the stream "+
			"(the gateway still stores notifications)")
	}
	if remote && c.TLSCertFile == "" && len(c.Users) > 0 && !c.hasPasswordUsers() {
		out = append(out, fmt.Sprintf("nats.embedded_listen: %q without TLS: nkey users log in safely, but every "+
			"notification crosses the network in the clear; set nats.embedded_tls_cert_file", c.Listen))
	}
	return out
}
