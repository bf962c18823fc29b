package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Secrets are the credentials the daemon needs. They come, in this order of
// preference, from the environment, from the files the config names, or
// from systemd credentials ($CREDENTIALS_DIRECTORY, LoadCredential=), and
// never from flags or the config's own values, so they stay out of process
// listings and out of version control.
type Secrets struct {
	WebhookSecrets []string // any of them verifies a notification (rotation)
	CustomerID     string   // Agora REST API credentials for GET /v1/ncs/ip
	CustomerSecret string
	NATSPassword   string
	NATSToken      string
	// EmbeddedPasswords are the passwords of nats.embedded_users, in the
	// same order ("" for an nkey user), read from each user's password_file.
	EmbeddedPasswords []string
}

// String never prints a secret, so a Secrets value is safe in any log line.
func (s Secrets) String() string {
	return fmt.Sprintf("webhook_secrets=%d customer_id=%t customer_secret=%t nats_password=%t nats_token=%t embedded_passwords=%d",
		len(s.WebhookSecrets), s.CustomerID != "", s.CustomerSecret != "", s.NATSPassword != "", s.NATSToken != "", len(s.EmbeddedPasswords))
}

// secretSource names where one secret may come from.
type secretSource struct {
	env        string // environment variable
	file       string // path from the config (may be empty)
	credential string // file name under $CREDENTIALS_DIRECTORY
}

// LoadSecrets reads every secret from its sources.
func LoadSecrets(cfg Config, lookup func(string) (string, bool)) (Secrets, error) {
	var s Secrets
	var errs []error
	read := func(src secretSource) string {
		v, _, err := readSecret(src, lookup)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	hooks, fromEnv, err := readSecret(secretSource{EnvPrefix + "WEBHOOK_SECRETS", cfg.Webhook.SecretsFile, "webhook-secrets"}, lookup)
	if err != nil {
		errs = append(errs, err)
	}
	s.WebhookSecrets = splitSecrets(hooks, fromEnv)
	s.CustomerID = strings.TrimSpace(read(secretSource{EnvPrefix + "CUSTOMER_ID", cfg.NCS.CustomerIDFile, "customer-id"}))
	s.CustomerSecret = strings.TrimSpace(read(secretSource{EnvPrefix + "CUSTOMER_SECRET", cfg.NCS.CustomerSecretFile, "customer-secret"}))
	s.NATSPassword = strings.TrimSpace(read(secretSource{EnvPrefix + "NATS_PASSWORD", cfg.NATS.PasswordFile, "nats-password"}))
	s.NATSToken = strings.TrimSpace(read(secretSource{EnvPrefix + "NATS_TOKEN", cfg.NATS.TokenFile, "nats-token"}))
	for _, u := range cfg.NATS.EmbeddedUsers {
		var pw string
		if u.PasswordFile != "" {
			b, err := os.ReadFile(u.PasswordFile)
			if err != nil {
				// The error names the path, never the content.
				errs = append(errs, fmt.Errorf("read embedded user password file: %w", err))
			}
			pw = strings.TrimSpace(string(b))
		}
		s.EmbeddedPasswords = append(s.EmbeddedPasswords, pw)
	}
	return s, errors.Join(errs...)
}

// Check reports the secrets that the config needs but nobody provided.
func (s Secrets) Check(cfg Config, p *Problems) {
	if len(s.WebhookSecrets) == 0 {
		p.Add("webhook.secrets_file", "no webhook secret: set webhook.secrets_file (one per line), "+EnvPrefix+"WEBHOOK_SECRETS=\"s1,s2\", or the systemd credential webhook-secrets")
	}
	s.CheckAgora(cfg, p)
}

// CheckAgora reports missing Agora REST credentials: all a -refresh needs.
func (s Secrets) CheckAgora(cfg Config, p *Problems) {
	if len(cfg.NCS.Endpoints) > 0 && (s.CustomerID == "" || s.CustomerSecret == "") {
		p.Add("ncs.customer_id_file", "no Agora REST credentials: set "+EnvPrefix+"CUSTOMER_ID and "+EnvPrefix+"CUSTOMER_SECRET, ncs.customer_id_file and ncs.customer_secret_file, or the systemd credentials customer-id and customer-secret (or set ncs.endpoints: [] to manage no allowlist)")
	}
}

// readSecret returns the first source that has a value. A file named in the
// config must exist; the environment wins over it so an operator can
// override without editing files.
func readSecret(src secretSource, lookup func(string) (string, bool)) (value string, fromEnv bool, err error) {
	if v, ok := lookup(src.env); ok && strings.TrimSpace(v) != "" {
		return v, true, nil
	}
	if src.file != "" {
		b, err := os.ReadFile(src.file)
		if err != nil {
			// The error names the path, never the content.
			return "", false, fmt.Errorf("read secret file: %w", err)
		}
		return string(b), false, nil
	}
	if dir, ok := lookup("CREDENTIALS_DIRECTORY"); ok && dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, src.credential))
		if err == nil {
			return string(b), false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", false, fmt.Errorf("read systemd credential %s: %w", src.credential, err)
		}
	}
	return "", false, nil
}

// splitSecrets reads a list of secrets: comma-separated from the
// environment, one per line from a file (so a secret may hold a comma);
// blank lines and lines starting with # are ignored.
func splitSecrets(s string, commaSeparated bool) []string {
	sep := func(r rune) bool { return r == '\n' || r == '\r' }
	if commaSeparated {
		sep = func(r rune) bool { return r == ',' }
	}
	var out []string
	for _, line := range strings.FieldsFunc(s, sep) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}
