package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
)

// checkBase is a config -check-config accepts: only loopback, the none
// backend, no Agora endpoint. Each case below changes one thing.
const checkBase = `
state_dir: %STATE%
webhook: {listen: "127.0.0.1:8443"}
nats: {embedded_listen: "127.0.0.1:0"}
ncs: {endpoints: []}
firewall: {backend: none}
`

// testUserNKey is a valid user public nkey.
const testUserNKey = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"

// checkEnv provides the secrets every case needs.
var checkEnv = env(
	"NCS_GATEWAY_WEBHOOK_SECRETS", "s3cret",
	"NCS_GATEWAY_CUSTOMER_ID", "id",
	"NCS_GATEWAY_CUSTOMER_SECRET", "secret",
)

// TestCheckConfigTable feeds -check-config bad and borderline configs. A
// refused config must name its key; an accepted one must build every
// component the daemon builds, so that the unit's ExecStartPre never passes
// a config the daemon then refuses in a restart loop.
func TestCheckConfigTable(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		yaml string // appended to checkBase; later keys win
		want string // "" means accepted, else the pinned message
	}{
		{"base", ``, ""},
		{"path with space", `webhook: {path: "/agora ncs"}`,
			`webhook.path: "/agora ncs" must start with / and hold no : * ? # or space`},
		{"path with colon", `webhook: {path: "/agora:ncs"}`,
			`webhook.path: "/agora:ncs" must start with / and hold no : * ? # or space`},
		{"subject token over 64 bytes", `nats: {subject_prefix: "agora.` + long + `"}`,
			`nats.subject_prefix: "agora.` + long + `" must be dot-separated tokens of 1 to 64 of A-Z a-z 0-9 _ -`},
		{"subject token of 64 bytes", `nats: {subject_prefix: "agora.` + long[:64] + `"}`, ""},
		{"stream with slash", `nats: {stream: "AGORA/NCS"}`,
			`nats.stream: "AGORA/NCS" must not contain spaces, '.', '*', '>', '/' or '\'`},

		// What opens the door (issue 8).
		{"webhook port not guarded", `{webhook: {listen: ":9443"}, firewall: {backend: nftables, ports: [8443]}}`,
			`webhook.listen: ":9443": port 9443 is not in firewall.ports [8443], so the allowlist does not protect it`},
		{"webhook port guarded", `{webhook: {listen: ":8443"}, firewall: {backend: nftables, ports: [8443]}}`, ""},
		{"loopback webhook behind a proxy", `{webhook: {listen: "127.0.0.1:9443"}, firewall: {backend: nftables, ports: [443]}}`, ""},
		{"unguarded port, no firewall", `{webhook: {listen: ":9443"}, firewall: {backend: none}}`, ""},
		{"plain http to Agora", `ncs: {endpoints: ["http://api.agora.io/v1/ncs/ip"]}`,
			`ncs.endpoints[0]: "http://api.agora.io/v1/ncs/ip" is plain http: use https`},
		{"plain http to loopback", `ncs: {endpoints: ["http://127.0.0.1:8081/v1/ncs/ip"]}`, ""},
		{"static allow everyone", `firewall: {static_allow: ["10.1.0.0/16", "0.0.0.0/0"]}`,
			`firewall.static_allow[1]: 0.0.0.0/0 covers everyone or close to it`},
		{"static allow half the internet", `firewall: {static_allow: ["128.0.0.0/1"]}`, `firewall.static_allow[0]: 128.0.0.0/1 covers everyone`},
		{"static allow ipv6 everyone", `firewall: {static_allow: ["::/0"]}`, `firewall.static_allow[0]: ::/0 covers everyone`},
		{"static allow ipv6 /31", `firewall: {static_allow: ["2001:db8::/31"]}`, `firewall.static_allow[0]: 2001:db8::/31 covers everyone`},
		{"static allow ipv4-mapped", `firewall: {static_allow: ["::ffff:0.0.0.0/96"]}`, `firewall.static_allow[0]: ::ffff:0.0.0.0/96 is an IPv4-mapped`},
		{"static allow private /8 and an ipv6 /32", `firewall: {static_allow: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]}`, ""},
		{"embedded nats open to the network", `nats: {embedded_listen: "0.0.0.0:4222"}`,
			`nats.embedded_listen: "0.0.0.0:4222" is reachable from other hosts and lets anyone read every notification`},
		{"embedded nats on all interfaces", `nats: {embedded_listen: ":4222"}`, `nats.embedded_listen: ":4222" is reachable`},
		// Passwords off loopback need TLS (issue 14): they, and every
		// notification, would cross the network in the clear.
		{"embedded nats open with a password user and no tls", `nats: {embedded_listen: "0.0.0.0:0", embedded_users: [{user: reader, password_file: "%PWFILE%"}]}`,
			`nats.embedded_listen: "0.0.0.0:0" is reachable from other hosts and nats.embedded_users has passwords`},
		{"embedded nats open with an nkey", `nats: {embedded_listen: "0.0.0.0:0", embedded_users: [{nkey: ` + testUserNKey + `}]}`, ""},
		{"embedded user with an inline password", `nats: {embedded_users: [{user: reader, password: hunter2}]}`,
			"nats.embedded_users[0].password: unknown key"},
		{"embedded user without password_file", `nats: {embedded_users: [{user: reader}]}`,
			`nats.embedded_users[0]: user "reader" needs password_file`},
		{"embedded user with an empty password_file", `nats: {embedded_users: [{user: reader, password_file: "%EMPTYFILE%"}]}`,
			`nats.embedded_users[0]: user "reader" has no password`},
		{"embedded ca without a server certificate", `nats: {embedded_tls_ca_file: "%PWFILE%"}`, "nats.embedded_tls_ca_file: needs embedded_tls_cert_file"},
		{"reconcile interval over 10m", `firewall: {reconcile_interval: 11m}`, "firewall.reconcile_interval: 11m0s is outside 1s..10m"},
		{"reconcile interval of 10m", `firewall: {reconcile_interval: 10m}`, ""},
		{"freshness window reaches the duplicate window", `{webhook: {max_notify_age: 1h}, nats: {duplicate_window: 1h}}`,
			"webhook.max_notify_age: 1h0m0s plus webhook.max_notify_future 5m0s must stay below nats.duplicate_window 1h0m0s"},
		{"zero freshness is the default 30m", `{webhook: {max_notify_age: 0}, nats: {duplicate_window: 20m}}`,
			"webhook.max_notify_age: 30m0s plus webhook.max_notify_future 5m0s must stay below nats.duplicate_window 20m0s"},
		{"freshness window inside the duplicate window", `{webhook: {max_notify_age: 50m, max_notify_future: 1m}, nats: {duplicate_window: 1h}}`, ""},
		{"missing webhook certificate", `webhook: {tls_cert_file: /nonexistent/c.pem, tls_key_file: /nonexistent/k.pem}`,
			"webhook.tls_cert_file: load the certificate and key: open /nonexistent/c.pem"},
		// admin.listen answers /status and /metrics to anyone (issue 14).
		{"admin on all interfaces", `admin: {listen: "0.0.0.0:9464"}`, `admin.listen: "0.0.0.0:9464" is reachable from other hosts`},
		{"admin on all ipv6 interfaces", `admin: {listen: "[::]:9464"}`, `admin.listen: "[::]:9464" is reachable from other hosts`},
		{"admin with an empty host", `admin: {listen: ":9464"}`, `admin.listen: ":9464" is reachable from other hosts`},
		{"admin on a private address", `admin: {listen: "10.1.2.3:9464"}`, `admin.listen: "10.1.2.3:9464" is reachable from other hosts`},
		{"admin on a public address", `admin: {listen: "192.0.2.10:9464"}`, `set admin.allow_remote: true`},
		{"admin remote, meant", `admin: {listen: "0.0.0.0:9464", allow_remote: true}`, ""},
		{"admin on localhost", `admin: {listen: "localhost:9464"}`, ""},
		// The control socket's path (issue 14).
		{"control socket unset", `admin: {control_socket: ""}`, "admin.control_socket: must be an absolute path"},
		{"control socket too long", `admin: {control_socket: "/run/` + strings.Repeat("x", 110) + `.sock"}`,
			"admin.control_socket: \"/run/" + strings.Repeat("x", 110) + ".sock\" is 120 bytes: a unix socket address holds at most 107"},
		// ncs.schedule's floor (issue 14).
		{"schedule every second", `ncs: {endpoints: ["http://127.0.0.1:1/v1/ncs/ip"], schedule: "@every 1s"}`,
			`ncs.schedule: "@every 1s" refreshes more than once a minute: each refresh calls Agora's REST API with the customer's credentials`},
		{"schedule every 30s", `ncs: {endpoints: ["http://127.0.0.1:1/v1/ncs/ip"], schedule: "@every 30s"}`, "at most every 1m0s"},
		{"too many addresses allowed", `ncs: {endpoints: ["http://127.0.0.1:1/v1/ncs/ip"], max_addresses: 1000000}`, "ncs.max_addresses: 1000000 is outside 1..100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCheckConfig(t, tt.yaml)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-config", path, "-check-config"}, &stdout, &stderr, checkEnv)
			if tt.want != "" {
				if err == nil {
					t.Fatalf("got ok, want a refusal with %q", tt.want)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v\nwant it to contain %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want ok", err)
			}
			buildEverything(t, path)
		})
	}
}

// writeCheckConfig writes checkBase with the case's keys merged in, section
// by section, and returns its path.
func writeCheckConfig(t *testing.T, over string) string {
	t.Helper()
	dir := t.TempDir()
	pw, empty := filepath.Join(dir, "pw"), filepath.Join(dir, "empty")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	over = strings.NewReplacer("%PWFILE%", pw, "%EMPTYFILE%", empty).Replace(over)
	var base, o map[string]any
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(checkBase, "%STATE%", t.TempDir())), &base); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(over), &o); err != nil {
		t.Fatalf("case yaml: %v", err)
	}
	for k, v := range o {
		bm, ok1 := base[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			base[k] = v
			continue
		}
		for kk, vv := range om {
			bm[kk] = vv
		}
	}
	b, err := yaml.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ncs-gateway.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildEverything builds, without starting, every component the daemon
// would build from the config at path, with the daemon's own
// buildComponents: the embedded server's URL is not needed to check it.
func buildEverything(t *testing.T, path string) {
	t.Helper()
	cfg, err := config.Load(path, checkEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	s, err := config.LoadSecrets(cfg, checkEnv)
	if err != nil {
		t.Fatalf("secrets: %v", err)
	}
	c, err := buildComponents(cfg, s, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatalf("buildComponents: %v", err)
	}
	if c.ref == nil || c.fw == nil || c.hook == nil {
		t.Errorf("buildComponents: got refresher %v firewall %v webhook %v, want all built", c.ref, c.fw, c.hook)
	}
}

// TestCheckConfigWarnings: what weakens a trust promise but may be meant is
// printed, and the check still passes.
func TestCheckConfigWarnings(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.txt")
	if err := os.WriteFile(secrets, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secrets, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	path := writeCheckConfig(t, `{admin: {listen: "0.0.0.0:9464", allow_remote: true}, webhook: {secrets_file: "`+secrets+`"}}`)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-config", path, "-check-config"}, &stdout, &stderr, env()); err != nil {
		t.Fatalf("got %v, want ok with warnings", err)
	}
	for _, want := range []string{
		`warning: admin.listen: "0.0.0.0:9464" is reachable from other hosts and /status is unauthenticated`,
		"warning: webhook.secrets_file: " + secrets + " is readable by every user of this host (mode 0644)",
		": ok (",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("got stdout:\n%s\nwant it to contain %q", stdout.String(), want)
		}
	}
	if strings.Contains(stdout.String(), "s3cret") {
		t.Errorf("got the secret in the output:\n%s", stdout.String())
	}
}

// TestEmbeddedUsersPasswordsFromFiles: the passwords come from each user's
// password_file, never from the config or the environment, and are never
// printed.
func TestEmbeddedUsersPasswordsFromFiles(t *testing.T) {
	path := writeCheckConfig(t, `nats: {embedded_users: [{user: reader, password_file: "%PWFILE%"}, {nkey: `+testUserNKey+`}]}`)
	cfg, err := config.Load(path, checkEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := config.LoadSecrets(cfg, checkEnv)
	if err != nil {
		t.Fatal(err)
	}
	users := cfg.EmbeddedServer(s).Users
	if len(users) != 2 || users[0].User != "reader" || users[0].Password != "correct horse" || users[1].NKey != testUserNKey || users[1].Password != "" {
		t.Errorf("got users %+v, want reader with the file's password and the nkey user", users)
	}
	if strings.Contains(s.String(), "correct horse") {
		t.Errorf("got %q, want no password in the secrets' summary", s)
	}
	_, err = config.Load(path, env("NCS_GATEWAY_NATS_EMBEDDED_USERS", "reader"))
	if want := "nats.embedded_users: NCS_GATEWAY_NATS_EMBEDDED_USERS is not read: a list of mappings comes from the config file only"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want a problem containing %q", err, want)
	}
}

// TestEachRuleSpeaksOnce: a rule that cmd and a package both check reaches
// the operator once, in cmd's words (which name the config's fix).
func TestEachRuleSpeaksOnce(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, key string
		env             func(string) (string, bool)
	}{
		{"nats password without a user", `nats: {url: "nats://127.0.0.1:4222", password_file: "%PWFILE%"}`, "nats.user:", checkEnv},
		{"embedded user without password_file", `nats: {embedded_users: [{user: reader}]}`, "nats.embedded_users[0]:", checkEnv},
		{"no Agora credentials", `ncs: {endpoints: ["http://127.0.0.1:1/v1/ncs/ip"]}`, "ncs.customer_id_file:", env("NCS_GATEWAY_WEBHOOK_SECRETS", "s")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-config", writeCheckConfig(t, tt.yaml), "-check-config"}, &stdout, &stderr, tt.env)
			if err == nil {
				t.Fatalf("got ok, want a refusal naming %s", tt.key)
			}
			if n := strings.Count(err.Error(), tt.key); n != 1 {
				t.Errorf("got %d problems on %s, want 1:\n%v", n, tt.key, err)
			}
		})
	}
}
