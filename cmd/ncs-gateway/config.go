package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
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
}

// AdminConfig is the listener for health, readiness, metrics and status.
type AdminConfig struct {
	Listen string `yaml:"listen"`
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
	CustomerIDFile     string        `yaml:"customer_id_file"`
	CustomerSecretFile string        `yaml:"customer_secret_file"`
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

// envPrefix starts every environment variable the daemon reads.
const envPrefix = "NCS_GATEWAY_"

// defaultConfig is what the daemon runs with before the file and the
// environment are applied: the production values of the operator contract.
func defaultConfig() Config {
	return Config{
		StateDir: "/var/lib/ncs-gateway",
		Log:      LogConfig{Level: "info", Format: "json"},
		Webhook: WebhookConfig{
			Listen:         ":8443",
			Path:           "/agora/ncs",
			MaxBodyBytes:   1 << 20,
			MaxConnections: 512,
		},
		Admin: AdminConfig{Listen: "127.0.0.1:9464", ControlSocket: "/run/ncs-gateway/control.sock"},
		NATS: NATSConfig{
			EmbeddedListen:       "127.0.0.1:4222",
			EmbeddedSyncInterval: "always",
			Stream:               "AGORA_NCS",
			SubjectPrefix:        "agora.ncs",
			DuplicateWindow:      2 * time.Hour,
			StreamMaxAge:         7 * 24 * time.Hour,
			StreamReplicas:       1,
			PublishTimeout:       3 * time.Second,
		},
		Spool: SpoolConfig{MaxBytes: 1 << 30},
		NCS: NCSConfig{
			Endpoints: []string{"https://api.sd-rtn.com/v1/ncs/ip", "https://api.agora.io/v1/ncs/ip"},
			Schedule:  "@every 1h",
			Timeout:   10 * time.Second,
		},
		Firewall: FirewallConfig{
			Backend:           "nftables",
			Ports:             []uint16{8443},
			StaticAllow:       []string{},
			RemoveGrace:       24 * time.Hour,
			MinIPs:            1,
			MaxShrink:         0.5,
			ReconcileInterval: time.Minute,
		},
	}
}

// loadConfig reads the file at path over the defaults, then applies the
// environment (lookup), and validates the result. Every problem is reported
// at once, each naming its key.
func loadConfig(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := defaultConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	var problems problemList
	if err := decodeStrict(raw, &cfg, &problems); err != nil {
		return cfg, err
	}
	applyEnv(reflect.ValueOf(&cfg).Elem(), envPrefix, "", lookup, &problems)
	// Relative paths in the file are relative to the file, so a config can
	// point at its neighbours whatever the working directory.
	cfg.resolvePaths(filepath.Dir(path))
	cfg.validate(&problems)
	return cfg, problems.err(path)
}

// decodeStrict decodes YAML into cfg, recording every key the Config does not
// know (with its dotted path and line) and every value of the wrong type.
func decodeStrict(raw []byte, cfg *Config, problems *problemList) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file means all defaults
		}
		return fmt.Errorf("parse config: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("parse config: line %d: the top level must be a mapping of keys", root.Line)
	}
	findUnknownKeys(root, reflect.TypeOf(*cfg), "", problems)
	if err := root.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return fmt.Errorf("parse config: %w", err)
		}
		for _, msg := range te.Errors {
			problems.add("", msg)
		}
	}
	return nil
}

// findUnknownKeys walks a mapping node alongside the struct type it decodes
// into and records every key the struct has no field for.
func findUnknownKeys(n *yaml.Node, t reflect.Type, path string, problems *problemList) {
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name := yamlName(f); name != "" {
			fields[name] = f.Type
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		keyPath := joinKey(path, key.Value)
		ft, ok := fields[key.Value]
		if !ok {
			problems.add(keyPath, fmt.Sprintf("unknown key (line %d)", key.Line))
			continue
		}
		findUnknownKeys(val, ft, keyPath, problems)
	}
}

// applyEnv overrides any scalar or list key from the environment:
// NCS_GATEWAY_<SECTION>_<KEY>, for example NCS_GATEWAY_NATS_URL or
// NCS_GATEWAY_FIREWALL_PORTS="8443,9443". Lists are comma-separated.
func applyEnv(v reflect.Value, prefix, path string, lookup func(string) (string, bool), problems *problemList) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		key := joinKey(path, name)
		env := prefix + strings.ToUpper(name)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			applyEnv(fv, env+"_", key, lookup, problems)
			continue
		}
		s, ok := lookup(env)
		if !ok {
			continue
		}
		if err := setFromString(fv, s); err != nil {
			problems.add(key, fmt.Sprintf("from %s: %v", env, err))
		}
	}
}

// setFromString parses s into the kinds of field a Config holds.
func setFromString(v reflect.Value, s string) error {
	s = strings.TrimSpace(s)
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		out := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setFromString(out.Index(i), p); err != nil {
				return err
			}
		}
		v.Set(out)
	case v.Kind() == reflect.Uint16:
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return err
		}
		v.SetUint(n)
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// effective returns the config keyed by its YAML names, for the start-up log
// line (the config holds no secret: those live in Secrets).
func (c Config) effective() map[string]any {
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
	for _, p := range []*string{
		&c.StateDir, &c.Admin.ControlSocket, &c.Webhook.TLSCertFile, &c.Webhook.TLSKeyFile, &c.Webhook.SecretsFile,
		&c.NATS.CredsFile, &c.NATS.PasswordFile, &c.NATS.TokenFile, &c.NATS.NKeySeedFile,
		&c.NATS.TLSCAFile, &c.NATS.TLSCertFile, &c.NATS.TLSKeyFile,
		&c.NCS.CustomerIDFile, &c.NCS.CustomerSecretFile,
	} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// validate records every problem in the config, naming the key and the fix.
func (c *Config) validate(p *problemList) {
	if c.StateDir == "" {
		p.add("state_dir", "must be set: everything durable (spool, allowlist, JetStream store) lives there")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", fmt.Sprintf("%q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		p.add("log.format", fmt.Sprintf("%q is not one of json, console", c.Log.Format))
	}

	checkListen(p, "webhook.listen", c.Webhook.Listen)
	if !strings.HasPrefix(c.Webhook.Path, "/") {
		p.add("webhook.path", fmt.Sprintf("%q must start with /", c.Webhook.Path))
	}
	if (c.Webhook.TLSCertFile == "") != (c.Webhook.TLSKeyFile == "") {
		p.add("webhook.tls_cert_file", "set both tls_cert_file and tls_key_file to serve HTTPS, or neither")
	}
	if c.Webhook.MaxBodyBytes < 1024 || c.Webhook.MaxBodyBytes > 64<<20 {
		p.add("webhook.max_body_bytes", fmt.Sprintf("%d is outside 1024..67108864", c.Webhook.MaxBodyBytes))
	}
	if c.Webhook.MaxConnections < 16 || c.Webhook.MaxConnections > 60000 {
		p.add("webhook.max_connections", fmt.Sprintf("%d is outside 16..60000 (keep it below the open file limit, 65536 in the systemd unit)", c.Webhook.MaxConnections))
	}
	checkListen(p, "admin.listen", c.Admin.Listen)
	if c.Admin.ControlSocket == "" {
		p.add("admin.control_socket", "must be set: -refresh, -status and -remove-firewall reach the running daemon through it")
	}

	if c.NATS.URL == "" {
		checkListen(p, "nats.embedded_listen", c.NATS.EmbeddedListen)
		if _, err := publish.ParseSyncInterval(c.NATS.EmbeddedSyncInterval); err != nil {
			p.add("nats.embedded_sync_interval", fmt.Sprintf("%q is neither \"always\" nor a positive duration like 2m", c.NATS.EmbeddedSyncInterval))
		}
	} else {
		for _, u := range strings.Split(c.NATS.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" {
				p.add("nats.url", fmt.Sprintf("%q is not a URL like nats://host:4222", strings.TrimSpace(u)))
			} else if pu.User != nil {
				p.add("nats.url", "must not carry credentials: use nats.user with NCS_GATEWAY_NATS_PASSWORD, creds_file or nkey_seed_file")
			}
		}
	}
	if (c.NATS.TLSCertFile == "") != (c.NATS.TLSKeyFile == "") {
		p.add("nats.tls_cert_file", "set both tls_cert_file and tls_key_file for a client certificate, or neither")
	}
	if !validSubjectPrefix(c.NATS.SubjectPrefix) {
		p.add("nats.subject_prefix", fmt.Sprintf("%q must be dot-separated tokens of letters, digits, - and _", c.NATS.SubjectPrefix))
	}
	if c.NATS.Stream == "" || strings.ContainsAny(c.NATS.Stream, ". *>\t") {
		p.add("nats.stream", fmt.Sprintf("%q must be a name without spaces, dots or wildcards", c.NATS.Stream))
	}
	if c.NATS.DuplicateWindow < time.Minute {
		p.add("nats.duplicate_window", fmt.Sprintf("%s is too short to catch Agora's retries; use at least 1m (default 2h)", c.NATS.DuplicateWindow))
	}
	if c.NATS.StreamMaxAge != 0 && c.NATS.StreamMaxAge < c.NATS.DuplicateWindow {
		p.add("nats.stream_max_age", "must be 0 (keep forever) or at least nats.duplicate_window")
	}
	if c.NATS.StreamReplicas < 1 || c.NATS.StreamReplicas > 5 {
		p.add("nats.stream_replicas", fmt.Sprintf("%d is outside 1..5", c.NATS.StreamReplicas))
	}
	if c.NATS.PublishTimeout < 100*time.Millisecond || c.NATS.PublishTimeout > 7*time.Second {
		p.add("nats.publish_timeout", fmt.Sprintf("%s is outside 100ms..7s: Agora waits 10 s for the answer and the spool needs the rest", c.NATS.PublishTimeout))
	}
	if c.Spool.MaxBytes < 1<<20 {
		p.add("spool.max_bytes", fmt.Sprintf("%d is below 1 MiB", c.Spool.MaxBytes))
	}

	for i, e := range c.NCS.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.add(fmt.Sprintf("ncs.endpoints[%d]", i), fmt.Sprintf("%q is not an http(s) URL", e))
		}
	}
	if len(c.NCS.Endpoints) > 0 {
		if err := checkSchedule(c.NCS.Schedule, maxRefreshGap); err != nil {
			p.add("ncs.schedule", err.Error())
		}
	}
	if c.NCS.Timeout < time.Second || c.NCS.Timeout > time.Minute {
		p.add("ncs.timeout", fmt.Sprintf("%s is outside 1s..1m", c.NCS.Timeout))
	}

	switch c.Firewall.Backend {
	case "nftables", "iptables", "none":
	default:
		p.add("firewall.backend", fmt.Sprintf("%q is not one of nftables, iptables, none", c.Firewall.Backend))
	}
	if c.Firewall.Backend != "none" && len(c.Firewall.Ports) == 0 {
		p.add("firewall.ports", "list at least one TCP port to protect (the webhook's)")
	}
	for i, port := range c.Firewall.Ports {
		if port == 0 {
			p.add(fmt.Sprintf("firewall.ports[%d]", i), "0 is not a port")
		}
	}
	if _, err := parseStaticAllow(c.Firewall.StaticAllow); err != nil {
		p.add("firewall.static_allow", err.Error())
	}
	if c.Firewall.RemoveGrace < 0 || c.Firewall.RemoveGrace > 7*24*time.Hour {
		p.add("firewall.remove_grace", fmt.Sprintf("%s is outside 0..168h", c.Firewall.RemoveGrace))
	}
	if c.Firewall.MinIPs < 1 {
		p.add("firewall.min_ips", "must be at least 1: an empty list is never applied")
	}
	if c.Firewall.MaxShrink <= 0 || c.Firewall.MaxShrink > 1 {
		p.add("firewall.max_shrink", fmt.Sprintf("%g is outside (0, 1]", c.Firewall.MaxShrink))
	}
	if c.Firewall.ReconcileInterval < time.Second {
		p.add("firewall.reconcile_interval", fmt.Sprintf("%s is below 1s", c.Firewall.ReconcileInterval))
	}
}

func checkListen(p *problemList, key, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.add(key, fmt.Sprintf("%q is not host:port (%v)", addr, err))
	}
}

func validSubjectPrefix(s string) bool {
	if s == "" {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return false
		}
		for _, r := range tok {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// parseStaticAllow turns firewall.static_allow entries (addresses or CIDRs)
// into prefixes.
func parseStaticAllow(entries []string) ([]netip.Prefix, error) {
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

// problem is one thing wrong with the config.
type problem struct{ key, msg string }

// problemList collects config problems so they are all reported at once.
type problemList []problem

func (p *problemList) add(key, msg string) { *p = append(*p, problem{key, msg}) }

func (p problemList) err(path string) error {
	if len(p) == 0 {
		return nil
	}
	return &configError{path: path, problems: p}
}

// configError is a config with problems; -check-config adds the secrets'
// problems to it so an operator sees everything at once.
type configError struct {
	path     string
	problems problemList
}

func (e *configError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problem(s):", e.path, len(e.problems))
	for _, pr := range e.problems {
		if pr.key == "" {
			fmt.Fprintf(&b, "\n  %s", pr.msg)
		} else {
			fmt.Fprintf(&b, "\n  %s: %s", pr.key, pr.msg)
		}
	}
	return b.String()
}
