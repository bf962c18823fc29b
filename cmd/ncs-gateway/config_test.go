package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// TestInvalidConfigs pins the exact operator-facing messages of
// -check-config: every problem of a file is reported at once, each with its
// key, whichever package's Validate found it.
func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid-unknown-keys.yaml", []string{
			"3 problem(s)",
			"webhok: unknown key (line 2)",
			"nats.urll: unknown key (line 5)",
			"firewall.port: unknown key (line 8)",
		}},
		{"invalid-values.yaml", []string{
			"state_dir: must be set",
			`log.level: "loud" is not one of debug, info, warn, error`,
			`log.format: "xml" is not one of json, console`,
			`webhook.listen: "8443" is not host:port`,
			`webhook.path: "agora" must start with /`,
			"webhook.tls_cert_file: set both tls_cert_file and tls_key_file to serve HTTPS, or neither",
			"webhook.max_body_bytes: 10 is outside 1024..67108864",
			"nats.url: must not carry credentials",
			`nats.subject_prefix: "agora.>" must be dot-separated tokens`,
			"nats.duplicate_window: 1s is too short",
			"nats.publish_timeout: 30s is outside 100ms..7s",
			`ncs.schedule: "@every 25h" leaves 25h0m0s between refreshes`,
			`firewall.backend: "pf" is not one of nftables, iptables, none`,
			`firewall.static_allow: ["not-an-ip"]: not an address or CIDR`,
			"firewall.min_ips: must be at least 1",
			"firewall.max_shrink: 1.5 is outside (0, 1]",
		}},
		{"invalid-types.yaml", []string{
			"cannot unmarshal !!str `lots` into int64",
			"cannot unmarshal !!str `http` into uint16",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), []string{"-config", filepath.Join("testdata", tt.file), "-check-config"}, &out, &out, checkEnv)
			if err == nil {
				t.Fatal("got no error, want problems")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q; got:\n%v", w, err)
				}
			}
		})
	}
}

// TestCheckConfigReportsFileAndSecretsTogether: -check-config names every
// problem at once, those of the file and the missing secrets alike.
func TestCheckConfigReportsFileAndSecretsTogether(t *testing.T) {
	path := writeConfig(t, "state_dir: /tmp/x\nfirewall: {max_shrink: 2}\n")
	var out, errOut strings.Builder
	err := run(context.Background(), []string{"-config", path, "-check-config"}, &out, &errOut, env())
	if err == nil {
		t.Fatal("got no error, want the config's and the secrets' problems")
	}
	for _, want := range []string{"3 problem(s)", "firewall.max_shrink: 2 is outside", "webhook.secrets_file: no webhook secret", "ncs.customer_id_file: no Agora REST credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant it to contain %q", err, want)
		}
	}
	err = run(context.Background(), []string{"-config", path, "-check-config"}, &out, &errOut,
		env("NCS_GATEWAY_FIREWALL_MAX_SHRINK", "0.5", "NCS_GATEWAY_WEBHOOK_SECRETS", "s", "NCS_GATEWAY_NCS_ENDPOINTS", ""))
	if err != nil || !strings.Contains(out.String(), "ok") {
		t.Errorf("fixed config: got %v, stdout %q; want ok", err, out.String())
	}
}
