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
		{"negative notify age", func(c *Config) { c.MaxNotifyAge = -time.Second }, []string{"webhook.max_notify_age"}},
		{"negative notify future", func(c *Config) { c.MaxNotifyFuture = -time.Second }, []string{"webhook.max_notify_future"}},
		{"no secrets", func(c *Config) { c.Secrets = nil }, []string{"webhook.secrets"}},
		{"empty secret", func(c *Config) { c.Secrets = append(c.Secrets, "") }, []string{"webhook.secrets", "secret 1"}},
		{"publish timeout too long", func(c *Config) { c.PublishTimeout = 9 * time.Second }, []string{"publish timeout"}},
		{"missing cert file", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "/nonexistent/c.pem", "/nonexistent/k.pem" },
			[]string{"load webhook tls certificate"}},
		{"every problem at once", func(c *Config) { c.Listen, c.Path, c.Secrets, c.MaxNotifyAge = "", "", nil, -1 },
			[]string{"webhook.listen", "webhook.path", "webhook.secrets", "webhook.max_notify_age"}},
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
	cfg.MaxBodyBytes, cfg.MaxNotifyAge, cfg.MaxNotifyFuture = 0, 0, 0
	s, err := NewServer(cfg, &fakePublisher{}, nil, nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if s.cfg.MaxBodyBytes != DefaultMaxBodyBytes || s.cfg.PublishTimeout != defaultPublishTimeout {
		t.Errorf("got max body %d, publish timeout %v, want %d, %v",
			s.cfg.MaxBodyBytes, s.cfg.PublishTimeout, DefaultMaxBodyBytes, defaultPublishTimeout)
	}
	if s.cfg.MaxNotifyAge != DefaultMaxNotifyAge || s.cfg.MaxNotifyFuture != DefaultMaxNotifyFuture {
		t.Errorf("got max notify age %v, future %v, want %v, %v",
			s.cfg.MaxNotifyAge, s.cfg.MaxNotifyFuture, DefaultMaxNotifyAge, DefaultMaxNotifyFuture)
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

// TestMetricsSeriesAtStart scrapes a fresh registry: every reason and
// outcome series exists at 0 before any request, so that the first
// failure of each kind counts in increase().
func TestMetricsSeriesAtStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatalf("new metrics: %v", err)
	}
	want := map[string][]string{
		"ncs_gateway_webhook_rejected_total": {"missing_signature", "bad_signature", "body_too_large",
			"method_not_allowed", "read_error", "unavailable", "stale", "future"},
		"ncs_gateway_webhook_accepted_total":     {"published", "spooled"},
		"ncs_gateway_webhook_deadlettered_total": {"not_json", "no_id"},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 {
				continue
			}
			if got[mf.GetName()] == nil {
				got[mf.GetName()] = map[string]float64{}
			}
			got[mf.GetName()][m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	for name, labels := range want {
		for _, l := range labels {
			v, ok := got[name][l]
			if !ok || v != 0 {
				t.Errorf("got %s{%q} present=%v value=%v, want present at 0", name, l, ok, v)
			}
		}
		if len(got[name]) != len(labels) {
			t.Errorf("got %d series of %s, want %d: %v", len(got[name]), name, len(labels), got[name])
		}
	}
}
