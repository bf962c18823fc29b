package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewServerRejectsConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // every one must appear in the error
	}{
		{"no listen", func(c *Config) { c.Listen = "" }, []string{"webhook.listen"}},
		{"relative path", func(c *Config) { c.Path = "agora" }, []string{"webhook.path"}},
		{"param path", func(c *Config) { c.Path = "/agora/:id" }, []string{"webhook.path"}},
		{"cert without key", func(c *Config) { c.TLSCertFile = "/x.pem" }, []string{"webhook.tls_cert_file"}},
		{"negative body", func(c *Config) { c.MaxBodyBytes = -1 }, []string{"webhook.max_body_bytes"}},
		{"path with space", func(c *Config) { c.Path = "/agora ncs" }, []string{"webhook.path"}},
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, []string{"webhook.listen"}},
		{"tiny body", func(c *Config) { c.MaxBodyBytes = 10 }, []string{"webhook.max_body_bytes: 10 is outside 1024..67108864"}},
		{"notify age too short", func(c *Config) { c.MaxNotifyAge = time.Second }, []string{"webhook.max_notify_age"}},
		{"notify future too long", func(c *Config) { c.MaxNotifyFuture = 2 * time.Hour }, []string{"webhook.max_notify_future"}},
		{"no secrets", func(c *Config) { c.Secrets = nil }, []string{"webhook.secrets"}},
		{"empty secret", func(c *Config) { c.Secrets = append(c.Secrets, "") }, []string{"webhook.secrets", "secret 1"}},
		{"publish timeout too long", func(c *Config) { c.PublishTimeout = 9 * time.Second }, []string{"publish timeout"}},
		{"missing cert file", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "/nonexistent/c.pem", "/nonexistent/k.pem" },
			[]string{"load webhook tls certificate"}},
		{"every problem at once", func(c *Config) { c.Listen, c.Path, c.Secrets = "", "", nil },
			[]string{"webhook.listen", "webhook.path", "webhook.secrets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Secrets = []string{"hunter2-value"}
			tt.modify(&cfg)
			_, err := NewServer(cfg, &fakePublisher{}, nil, nil)
			if err == nil {
				t.Fatalf("got nil error, want one naming %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got %q, want no secret in it", err)
			}
		})
	}
}

func TestNewServerDefaults(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 0
	s, err := NewServer(cfg, &fakePublisher{}, nil, nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if s.cfg.MaxBodyBytes != DefaultMaxBodyBytes || s.cfg.PublishTimeout != defaultPublishTimeout {
		t.Errorf("got max body %d, publish timeout %v, want %d, %v",
			s.cfg.MaxBodyBytes, s.cfg.PublishTimeout, DefaultMaxBodyBytes, defaultPublishTimeout)
	}
}

func TestNewMetricsTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatalf("first: %v", err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Errorf("second registration: got nil error, want one")
	}
}
