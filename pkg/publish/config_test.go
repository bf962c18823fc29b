package publish

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := func() Config {
		c := defaultConfig()
		c.URL = "nats://127.0.0.1:4222"
		c.SpoolPath = "/var/lib/ncs-gateway/spool.db"
		return c
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"zero values take defaults", func(c *Config) { *c = Config{URL: c.URL, SpoolPath: c.SpoolPath} }, nil},
		{"embedded without url", func(c *Config) { c.URL = ""; c.Embedded = &Embedded{} }, nil},
		{"no url: New's concern, not the operator's", func(c *Config) { c.URL = "" }, nil},
		{"url with credentials", func(c *Config) { c.URL = "nats://u:pw@host:4222" }, []string{"nats.url: must not carry credentials"}},
		{"stream with slash", func(c *Config) { c.Stream = "AGORA/NCS" }, []string{"nats.stream"}},
		{"prefix token over 64 bytes", func(c *Config) { c.SubjectPrefix = "agora." + strings.Repeat("n", 65) }, []string{"nats.subject_prefix"}},
		{"short window", func(c *Config) { c.DuplicateWindow = time.Second }, []string{"nats.duplicate_window"}},
		{"small spool", func(c *Config) { c.SpoolMaxBytes = 1000 }, []string{"spool.max_bytes"}},
		{"stream with dot", func(c *Config) { c.Stream = "AGORA.NCS" }, []string{"nats.stream"}},
		{"wildcard prefix", func(c *Config) { c.SubjectPrefix = "agora.*" }, []string{"nats.subject_prefix"}},
		{"empty prefix token", func(c *Config) { c.SubjectPrefix = "agora..ncs" }, []string{"nats.subject_prefix"}},
		{"window over max age", func(c *Config) { c.DuplicateWindow = 200 * time.Hour }, []string{"nats.stream_max_age"}},
		{"negative timeout", func(c *Config) { c.PublishTimeout = -time.Second }, []string{"nats.publish_timeout"}},
		{"replicas", func(c *Config) { c.StreamReplicas = 7 }, []string{"nats.stream_replicas"}},
		{"password without user", func(c *Config) { c.Password = "secret" }, []string{"nats.user"}},
		{"cert without key", func(c *Config) { c.TLSCertFile = "/etc/cert.pem" }, []string{"nats.tls_cert_file"}},
		{"remote url, user, no tls", func(c *Config) { c.URL, c.User, c.Password = "nats://nats.example.net:4222", "gw", "secret" },
			[]string{`nats.url: "nats://nats.example.net:4222" is not on this host and credentials would cross the network in the clear`}},
		{"remote url, token, no tls", func(c *Config) { c.URL, c.Token = "nats://10.0.0.5:4222", "secret" }, []string{"nats.url"}},
		{"remote url, creds, no tls", func(c *Config) { c.URL, c.CredsFile = "nats://10.0.0.5:4222", "/etc/gw.creds" }, []string{"nats.url"}},
		{"remote url, nkey, no tls", func(c *Config) { c.URL, c.NkeySeedFile = "nats://10.0.0.5:4222", "/etc/gw.nk" }, []string{"nats.url"}},
		{"one remote url of two, no tls", func(c *Config) { c.URL, c.User, c.Password = "nats://127.0.0.1:4222,nats://b:4222", "gw", "secret" },
			[]string{`nats.url: "nats://b:4222"`}},
		{"remote url, user, tls scheme", func(c *Config) { c.URL, c.User, c.Password = "tls://nats.example.net:4222", "gw", "secret" }, nil},
		{"remote url, user, tls ca", func(c *Config) {
			c.URL, c.User, c.Password, c.TLSCAFile = "nats://nats.example.net:4222", "gw", "secret", "/etc/ca.pem"
		}, nil},
		{"remote url, client certificate", func(c *Config) {
			c.URL, c.TLSCertFile, c.TLSKeyFile = "nats://nats.example.net:4222", "/etc/c.pem", "/etc/k.pem"
		}, nil},
		{"remote url, no credentials", func(c *Config) { c.URL = "nats://nats.example.net:4222" }, nil},
		{"loopback url, user, no tls", func(c *Config) { c.URL, c.User, c.Password = "nats://127.0.0.1:4222", "gw", "secret" }, nil},
		{"localhost url, token, no tls", func(c *Config) { c.URL, c.Token = "nats://localhost:4222", "secret" }, nil},
		{"ipv6 loopback url, user, no tls", func(c *Config) { c.URL, c.User, c.Password = "nats://[::1]:4222", "gw", "secret" }, nil},
		{"every problem at once", func(c *Config) {
			c.URL, c.SpoolPath, c.SpoolMaxBytes = "nats://", "", -1
		}, []string{"nats.url", "state_dir", "spool.max_bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			checkProblems(t, c.Validate(), tt.want, "secret")
		})
	}
}

// checkProblems fails unless err names every key in want (nil when want is
// empty) and carries none of the secrets.
func checkProblems(t *testing.T, err error, want []string, secrets ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("validate: got %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("validate: got nil, want errors naming %v", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("validate: got %q, want it to name %q", err, w)
		}
	}
	for _, sec := range secrets {
		if strings.Contains(err.Error(), sec) {
			t.Errorf("validate: got %q, want no secret (%q) in the message", err, sec)
		}
	}
}

func TestParseSyncInterval(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"always", 0, false},
		{"ALWAYS", 0, false},
		{"2m", 2 * time.Minute, false},
		{"500ms", 500 * time.Millisecond, false},
		{"0s", 0, true},
		{"-1m", 0, true},
		{"sometimes", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSyncInterval(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSyncInterval(%q): got %s, %v; want %s, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	tests := []struct {
		o    Outcome
		want string
	}{
		{Published, "published"},
		{Spooled, "spooled"},
		{0, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("Outcome(%d).String(): got %q, want %q", int(tt.o), got, tt.want)
		}
	}
}
