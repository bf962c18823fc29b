// Package config is ncs-gateway's operator contract: the YAML file and
// environment decoded strictly over the defaults, the secrets, every rule of
// cmd's own keys and those that span packages, and each package's config as
// the daemon builds it. It does no I/O beyond reading the files it names.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ledger"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// Config is the operator contract: one YAML file plus environment variables.
// Secrets are not part of it (see Secrets): they never come from the file's
// values or from flags, only from files it names, the environment or systemd
// credentials.
type Config struct {
	StateDir string         `yaml:"state_dir"`
	Log      LogConfig      `yaml:"log"`
	Webhook  WebhookConfig  `yaml:"webhook"`
	Admin    AdminConfig    `yaml:"admin"`
	NATS     NATSConfig     `yaml:"nats"`
	Spool    SpoolConfig    `yaml:"spool"`
	NCS      NCSConfig      `yaml:"ncs"`
	Firewall FirewallConfig `yaml:"firewall"`
	Ledger   LedgerConfig   `yaml:"ledger"`
}

// LogConfig selects the zap logger's level and encoding.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// WebhookConfig is the listener that takes Agora's notifications.
type WebhookConfig struct {
	Listen       string `yaml:"listen"`
	Path         string `yaml:"path"`
	TLSCertFile  string `yaml:"tls_cert_file"`
	TLSKeyFile   string `yaml:"tls_key_file"`
	SecretsFile  string `yaml:"secrets_file"`
	AcceptSHA1   bool   `yaml:"accept_sha1"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
	// MaxConnections caps open webhook connections; at the cap, spare ones
	// (idle keep-alive, slow headers) are closed first.
	MaxConnections int `yaml:"max_connections"`
	// MaxNotifyAge and MaxNotifyFuture bound how far a notification's
	// notifyMs may be from this host's clock; their sum stays below
	// nats.duplicate_window so that every replay accepted is a duplicate.
	MaxNotifyAge    time.Duration `yaml:"max_notify_age"`
	MaxNotifyFuture time.Duration `yaml:"max_notify_future"`
}

// AdminConfig is the listener for health, readiness, metrics and status.
type AdminConfig struct {
	Listen string `yaml:"listen"`
	// AllowRemote accepts a Listen that other hosts reach: /status and
	// /metrics answer anyone, so the operator says so.
	AllowRemote bool `yaml:"allow_remote"`
	// ControlSocket is the unix socket through which -refresh, -status and
	// -remove-firewall reach the running daemon.
	ControlSocket string `yaml:"control_socket"`
}

// NATSConfig says where notifications are published and how.
type NATSConfig struct {
	URL                  string        `yaml:"url"`
	EmbeddedListen       string        `yaml:"embedded_listen"`
	EmbeddedSyncInterval string        `yaml:"embedded_sync_interval"`
	CredsFile            string        `yaml:"creds_file"`
	User                 string        `yaml:"user"`
	PasswordFile         string        `yaml:"password_file"`
	TokenFile            string        `yaml:"token_file"`
	NKeySeedFile         string        `yaml:"nkey_seed_file"`
	TLSCAFile            string        `yaml:"tls_ca_file"`
	TLSCertFile          string        `yaml:"tls_cert_file"`
	TLSKeyFile           string        `yaml:"tls_key_file"`
	Stream               string        `yaml:"stream"`
	SubjectPrefix        string        `yaml:"subject_prefix"`
	DuplicateWindow      time.Duration `yaml:"duplicate_window"`
	StreamMaxAge         time.Duration `yaml:"stream_max_age"`
	StreamReplicas       int           `yaml:"stream_replicas"`
	PublishTimeout       time.Duration `yaml:"publish_timeout"`
	// The embedded server's consumer users and TLS (see EmbeddedUserConfig).
	EmbeddedUsers       []EmbeddedUserConfig `yaml:"embedded_users"`
	EmbeddedTLSCertFile string               `yaml:"embedded_tls_cert_file"`
	EmbeddedTLSKeyFile  string               `yaml:"embedded_tls_key_file"`
	EmbeddedTLSCAFile   string               `yaml:"embedded_tls_ca_file"`
	// EmbeddedAnonymous lets clients without credentials read the embedded
	// server on a loopback listener (the quickstart's nats CLI); off, every
	// client must name a declared user.
	EmbeddedAnonymous bool `yaml:"embedded_anonymous"`
}

// EmbeddedUserConfig is one read-only consumer of the embedded server: a
// user whose password (plaintext or a bcrypt hash) is read from
// password_file, never written inline, or a user public nkey.
type EmbeddedUserConfig struct {
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	NKey         string `yaml:"nkey"`
}

// SpoolConfig bounds the local spool that holds notifications while NATS is away.
type SpoolConfig struct {
	MaxBytes int64 `yaml:"max_bytes"`
}

// NCSConfig says where and how often Agora's NCS IP list is fetched.
type NCSConfig struct {
	Endpoints          []string      `yaml:"endpoints"`
	Schedule           string        `yaml:"schedule"`
	Timeout            time.Duration `yaml:"timeout"`
	MaxAddresses       int           `yaml:"max_addresses"`
	CustomerIDFile     string        `yaml:"customer_id_file"`
	CustomerSecretFile string        `yaml:"customer_secret_file"`
}

// LedgerConfig is the recording-session ledger: one record per Cloud
// Recording sid in a KV bucket, and the session.completed and
// session.flagged notifications derived from them (pkg/publish/ledger).
type LedgerConfig struct {
	Enabled     bool          `yaml:"enabled"`
	Bucket      string        `yaml:"bucket"`
	UploadGrace time.Duration `yaml:"upload_grace"`
	StallAfter  time.Duration `yaml:"stall_after"`
}

// FirewallConfig says how the allowlist is enforced on the host.
type FirewallConfig struct {
	Backend           string        `yaml:"backend"`
	Ports             []uint16      `yaml:"ports"`
	StaticAllow       []string      `yaml:"static_allow"`
	AllowPrivate      bool          `yaml:"allow_private"`
	RemoveGrace       time.Duration `yaml:"remove_grace"`
	MinIPs            int           `yaml:"min_ips"`
	MaxShrink         float64       `yaml:"max_shrink"`
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
}

// EnvPrefix starts every environment variable the daemon reads.
const EnvPrefix = "NCS_GATEWAY_"

// Default is what the daemon runs with before the file and the
// environment are applied: the production values of the operator contract.
// Each default is the package's own constant; the refresher's keys
// (remove_grace ... reconcile_interval) and schedule are cmd's.
func Default() Config {
	return Config{
		StateDir: "/var/lib/ncs-gateway",
		Log:      LogConfig{Level: "info", Format: "json"},
		Webhook: WebhookConfig{
			Listen:          webhook.DefaultListen,
			Path:            webhook.DefaultPath,
			MaxBodyBytes:    webhook.DefaultMaxBodyBytes,
			MaxConnections:  webhook.DefaultMaxConnections,
			MaxNotifyAge:    webhook.DefaultMaxNotifyAge,
			MaxNotifyFuture: webhook.DefaultMaxNotifyFuture,
		},
		Admin: AdminConfig{Listen: "127.0.0.1:9464", ControlSocket: "/run/ncs-gateway/control.sock"},
		NATS: NATSConfig{
			EmbeddedListen:       publish.DefaultEmbeddedListen,
			EmbeddedSyncInterval: publish.DefaultEmbeddedSyncInterval,
			Stream:               publish.DefaultStream,
			SubjectPrefix:        publish.DefaultSubjectPrefix,
			DuplicateWindow:      publish.DefaultDuplicateWindow,
			StreamMaxAge:         publish.DefaultStreamMaxAge,
			StreamReplicas:       publish.DefaultStreamReplicas,
			PublishTimeout:       publish.DefaultPublishTimeout,
			EmbeddedUsers:        []EmbeddedUserConfig{},
			EmbeddedAnonymous:    true,
		},
		Spool: SpoolConfig{MaxBytes: publish.DefaultSpoolMaxBytes},
		NCS: NCSConfig{
			Endpoints:    slices.Clone(ncsip.DefaultEndpoints),
			Schedule:     "@every 1h",
			Timeout:      ncsip.DefaultTimeout,
			MaxAddresses: ncsip.DefaultMaxAddresses,
		},
		Firewall: FirewallConfig{
			Backend:           firewall.DefaultBackend,
			Ports:             []uint16{firewall.DefaultPort},
			StaticAllow:       []string{},
			RemoveGrace:       refresh.DefaultRemoveGrace,
			MinIPs:            refresh.DefaultMinIPs,
			MaxShrink:         refresh.DefaultMaxShrink,
			ReconcileInterval: time.Minute,
		},
		Ledger: LedgerConfig{
			Enabled:     true,
			Bucket:      ledger.DefaultBucket,
			UploadGrace: ledger.DefaultUploadGrace,
			StallAfter:  ledger.DefaultStallAfter,
		},
	}
}

// Load reads the file at path over the defaults, then applies the
// environment (lookup), and validates the result. Every problem is reported
// at once, each naming its key.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := Default()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	var problems Problems
	if err := decodeStrict(raw, &cfg, &problems); err != nil {
		return cfg, err
	}
	applyEnv(reflect.ValueOf(&cfg).Elem(), EnvPrefix, "", lookup, &problems)
	// Relative paths in the file are relative to the file, so a config can
	// point at its neighbours whatever the working directory.
	cfg.resolvePaths(filepath.Dir(path))
	cfg.validate(&problems)
	return cfg, problems.Err(path)
}

// Effective returns the config keyed by its YAML names, for the start-up log
// line (the config holds no secret: those live in Secrets).
func (c Config) Effective() map[string]any {
	out := map[string]any{}
	b, err := yaml.Marshal(c)
	if err == nil {
		err = yaml.Unmarshal(b, &out)
	}
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return out
}

// resolvePaths makes every relative file path in the config relative to dir.
func (c *Config) resolvePaths(dir string) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	paths := []*string{
		&c.StateDir, &c.Admin.ControlSocket, &c.Webhook.TLSCertFile, &c.Webhook.TLSKeyFile, &c.Webhook.SecretsFile,
		&c.NATS.CredsFile, &c.NATS.PasswordFile, &c.NATS.TokenFile, &c.NATS.NKeySeedFile,
		&c.NATS.TLSCAFile, &c.NATS.TLSCertFile, &c.NATS.TLSKeyFile,
		&c.NCS.CustomerIDFile, &c.NCS.CustomerSecretFile,
		&c.NATS.EmbeddedTLSCertFile, &c.NATS.EmbeddedTLSKeyFile, &c.NATS.EmbeddedTLSCAFile,
	}
	for i := range c.NATS.EmbeddedUsers {
		paths = append(paths, &c.NATS.EmbeddedUsers[i].PasswordFile)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// ParseStaticAllow turns firewall.static_allow entries (addresses or CIDRs)
// into prefixes.
func ParseStaticAllow(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	var bad []string
	for _, e := range entries {
		if pfx, err := netip.ParsePrefix(e); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		bad = append(bad, e)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%q: not an address or CIDR", bad)
	}
	return out, nil
}

// problem is one thing wrong with the config. own marks cmd's own rules,
// which name the config key's fix.
type problem struct {
	key, msg string
	own      bool
}

// Problems collects config problems so they are all reported at once, each
// under its key.
type Problems []problem

// Add records a problem of cmd's own rules, once: the same rule may meet
// the same key twice (a stream name checked for the publisher and the
// embedded server).
func (p *Problems) Add(key, msg string) {
	for _, pr := range *p {
		if pr.key == key && pr.msg == msg {
			return
		}
	}
	*p = append(*p, problem{key: key, msg: msg, own: true})
}

// AddErr records each error joined in err (errors.Join), a package's
// Validate whose text starts with its key. A key one of cmd's own rules
// already reported keeps that one message: a rule checked in two places
// reaches the operator once, in the words that name the config's fix.
func (p *Problems) AddErr(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			p.AddErr(e)
		}
		return
	}
	key, msg, ok := strings.Cut(err.Error(), ": ")
	if !ok || strings.ContainsAny(key, " \t") {
		key, msg = "", err.Error()
	}
	for _, pr := range *p {
		if pr.key == key && (pr.msg == msg || pr.own && key != "") {
			return
		}
	}
	*p = append(*p, problem{key: key, msg: msg})
}

// Err is nil without problems, else an *Error naming the file at path.
func (p Problems) Err(path string) error {
	if len(p) == 0 {
		return nil
	}
	return &Error{path: path, Problems: p}
}

// Error is a config with problems; -check-config adds the secrets'
// problems to it so an operator sees everything at once.
type Error struct {
	path string
	// Problems are every problem found, in the order found.
	Problems Problems
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problem(s):", e.path, len(e.Problems))
	for _, pr := range e.Problems {
		if pr.key == "" {
			fmt.Fprintf(&b, "\n  %s", pr.msg)
		} else {
			fmt.Fprintf(&b, "\n  %s: %s", pr.key, pr.msg)
		}
	}
	return b.String()
}
