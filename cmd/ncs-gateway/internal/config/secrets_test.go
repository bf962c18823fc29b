package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadSecretsSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	creds := filepath.Join(dir, "creds")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"webhook-secrets": "from-credential\n", "customer-id": "cred-id\n"} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := write("secrets.txt", "# rotation: new first\nnew,with-comma\n\n  old  \n")

	tests := []struct {
		name     string
		mutate   func(*Config)
		env      []string
		wantHook []string
		wantID   string
	}{
		{"file, one per line", func(c *Config) { c.Webhook.SecretsFile = file }, nil, []string{"new,with-comma", "old"}, ""},
		{"environment wins, comma-separated", func(c *Config) { c.Webhook.SecretsFile = file },
			[]string{"NCS_GATEWAY_WEBHOOK_SECRETS", "a, b", "NCS_GATEWAY_CUSTOMER_ID", "env-id"}, []string{"a", "b"}, "env-id"},
		{"systemd credentials last", nil, []string{"CREDENTIALS_DIRECTORY", creds}, []string{"from-credential"}, "cred-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			s, err := LoadSecrets(cfg, env(tt.env...))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.WebhookSecrets, tt.wantHook) || s.CustomerID != tt.wantID {
				t.Errorf("got hooks %q id %q, want %q %q", s.WebhookSecrets, s.CustomerID, tt.wantHook, tt.wantID)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	s := Secrets{WebhookSecrets: []string{"hook-s3cret"}, CustomerID: "id-s3cret", CustomerSecret: "cs-s3cret", NATSPassword: "pw-s3cret"}
	if got := s.String(); strings.Contains(got, "s3cret") {
		t.Errorf("Secrets.String() = %q, leaks a secret", got)
	}
}

func TestMissingSecretsAreProblems(t *testing.T) {
	cfg := Default()
	var p Problems
	Secrets{}.Check(cfg, &p)
	err := p.Err("x.yaml")
	if err == nil {
		t.Fatal("got no problem, want missing webhook secret and Agora credentials")
	}
	for _, want := range []string{"webhook.secrets_file: no webhook secret", "ncs.customer_id_file: no Agora REST credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to mention %q", err, want)
		}
	}
}

func TestMissingSecretFileIsAnError(t *testing.T) {
	cfg := Default()
	cfg.Webhook.SecretsFile = filepath.Join(t.TempDir(), "absent")
	if _, err := LoadSecrets(cfg, env()); err == nil || !strings.Contains(err.Error(), "read secret file") {
		t.Errorf("got %v, want a read error naming the secret file", err)
	}
}
