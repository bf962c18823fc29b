package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// env returns a lookup function over a fixed environment.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ncs-gateway.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestShippedConfigsLoad(t *testing.T) {
	for _, path := range []string{"../../../../configs/quickstart.yaml", "../../../../configs/ncs-gateway.yaml"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, err := Load(path, env()); err != nil {
				t.Fatalf("got %v, want no error", err)
			}
		})
	}
}

func TestShippedProductionConfigIsTheDefaults(t *testing.T) {
	cfg, err := Load("../../../../configs/ncs-gateway.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	// The package ships with anonymous readers off and one reader user
	// whose password the package's postinst writes.
	want := Default()
	want.NATS.EmbeddedAnonymous = false
	want.NATS.EmbeddedUsers = []EmbeddedUserConfig{{User: "reader", PasswordFile: "/etc/ncs-gateway/nats-reader-password"}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("configs/ncs-gateway.yaml drifted from the defaults:\ngot  %+v\nwant %+v", cfg, want)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	path := writeConfig(t, "state_dir: /tmp/a\nnats: {url: nats://file:4222}\nfirewall: {ports: [1]}\n")
	cfg, err := Load(path, env(
		"NCS_GATEWAY_NATS_URL", "nats://env:4222",
		"NCS_GATEWAY_FIREWALL_PORTS", "8443, 9443",
		"NCS_GATEWAY_FIREWALL_MAX_SHRINK", "0.25",
		"NCS_GATEWAY_NATS_PUBLISH_TIMEOUT", "2s",
		"NCS_GATEWAY_WEBHOOK_ACCEPT_SHA1", "true",
		"NCS_GATEWAY_NCS_ENDPOINTS", "http://127.0.0.1:1/v1/ncs/ip",
	))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://env:4222" {
		t.Errorf("nats.url: got %q, want the environment's", cfg.NATS.URL)
	}
	if !slices.Equal(cfg.Firewall.Ports, []uint16{8443, 9443}) {
		t.Errorf("firewall.ports: got %v, want [8443 9443]", cfg.Firewall.Ports)
	}
	if cfg.Firewall.MaxShrink != 0.25 || cfg.NATS.PublishTimeout != 2*time.Second || !cfg.Webhook.AcceptSHA1 {
		t.Errorf("got max_shrink %v publish_timeout %v accept_sha1 %v, want 0.25 2s true",
			cfg.Firewall.MaxShrink, cfg.NATS.PublishTimeout, cfg.Webhook.AcceptSHA1)
	}
	if !slices.Equal(cfg.NCS.Endpoints, []string{"http://127.0.0.1:1/v1/ncs/ip"}) {
		t.Errorf("ncs.endpoints: got %v", cfg.NCS.Endpoints)
	}
	if cfg.StateDir != "/tmp/a" {
		t.Errorf("state_dir: got %q, want the file's /tmp/a", cfg.StateDir)
	}
}

func TestEnvironmentBadValueNamesKeyAndVariable(t *testing.T) {
	path := writeConfig(t, "state_dir: /tmp/a\n")
	_, err := Load(path, env("NCS_GATEWAY_NATS_PUBLISH_TIMEOUT", "soon"))
	if err == nil || !strings.Contains(err.Error(), "nats.publish_timeout: from NCS_GATEWAY_NATS_PUBLISH_TIMEOUT") {
		t.Fatalf("got %v, want a problem naming nats.publish_timeout and its variable", err)
	}
}

func TestRelativePathsAreRelativeToTheFile(t *testing.T) {
	path := writeConfig(t, "state_dir: state\nwebhook: {secrets_file: secrets.txt}\n")
	cfg, err := Load(path, env())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if cfg.StateDir != filepath.Join(dir, "state") || cfg.Webhook.SecretsFile != filepath.Join(dir, "secrets.txt") {
		t.Errorf("got state_dir %q secrets_file %q, want them under %s", cfg.StateDir, cfg.Webhook.SecretsFile, dir)
	}
}
