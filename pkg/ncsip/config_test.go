package ncsip

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewDefaults(t *testing.T) {
	endpoints := []string{"https://api.sd-rtn.com/v1/ncs/ip", "https://api.agora.io/v1/ncs/ip"}
	c, err := New(Config{Endpoints: endpoints, CustomerID: "id", CustomerSecret: "secret"}, nil)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	endpoints[0] = "changed by the caller"
	got := c.cfg
	if got.Endpoints[0] != "https://api.sd-rtn.com/v1/ncs/ip" {
		t.Errorf("got endpoint %q, want the client's own copy", got.Endpoints[0])
	}
	if got.Timeout != 10*time.Second || got.MaxBodyBytes != 4<<20 || got.MaxRetryAfter != 10*time.Second || got.UserAgent != "ncs-gateway/dev" {
		t.Errorf("got timeout %s, max body %d, max retry-after %s, user agent %q; want 10s, 4 MiB, 10s, ncs-gateway/dev",
			got.Timeout, got.MaxBodyBytes, got.MaxRetryAfter, got.UserAgent)
	}
	if want := []time.Duration{time.Second, 3 * time.Second, 6 * time.Second}; !slices.Equal(got.Backoff, want) {
		t.Errorf("got backoff %v, want %v", got.Backoff, want)
	}
	if c.http == nil || c.log == nil {
		t.Error("got a nil http client or logger, want defaults")
	}
}

func TestNewRejects(t *testing.T) {
	// Plain http is fine to loopback (the simulated Agora, a local proxy).
	for _, e := range []string{"http://127.0.0.1:8080/x", "http://[::1]:8080/x", "http://localhost:8080/x", "https://api.agora.io/v1/ncs/ip"} {
		if err := (Config{Endpoints: []string{e}}).Validate(); err != nil {
			t.Errorf("Validate(%s): got %v, want nil", e, err)
		}
	}
	ok := Config{Endpoints: []string{"http://127.0.0.1:8080/v1/ncs/ip"}, CustomerID: "id", CustomerSecret: "s3cr3t-value"}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // each must appear in the error
	}{
		{"no endpoint", func(c *Config) { c.Endpoints = nil }, []string{"no endpoint"}},
		{"relative URL", func(c *Config) { c.Endpoints = []string{"/v1/ncs/ip"} }, []string{`ncs.endpoints[0]: "/v1/ncs/ip" is not an http or https URL`}},
		{"ftp URL", func(c *Config) { c.Endpoints = []string{"ftp://x/v1/ncs/ip"} }, []string{"not an http or https URL"}},
		{"no host", func(c *Config) { c.Endpoints = []string{"https:///v1/ncs/ip"} }, []string{"has no host"}},
		{"unparsable", func(c *Config) { c.Endpoints = []string{"https://u:pw@h/%zz"} }, []string{"ncs.endpoints[0]: parse url: invalid URL escape"}},
		{"user info", func(c *Config) { c.Endpoints = []string{"https://id:hunter2@api.agora.io/v1/ncs/ip"} },
			[]string{`"https://id:xxxxx@api.agora.io/v1/ncs/ip" carries user info`}},
		{"empty id", func(c *Config) { c.CustomerID = "" }, []string{"customer id is empty"}},
		{"colon in id", func(c *Config) { c.CustomerID = "a:b" }, []string{"customer id contains a colon"}},
		{"empty secret", func(c *Config) { c.CustomerSecret = "" }, []string{"customer secret is empty"}},
		{"negative values", func(c *Config) {
			c.Timeout, c.Backoff, c.MaxRetryAfter, c.MaxBodyBytes = -1, []time.Duration{1, -1}, -1, -1
		}, []string{"ncs.timeout: -1ns is negative", "backoff 1: -1ns is negative", "max retry-after -1ns is negative", "max body bytes -1 is negative"}},
		{"plain http to another host", func(c *Config) { c.Endpoints = []string{"http://api.agora.io/v1/ncs/ip"} },
			[]string{`ncs.endpoints[0]: "http://api.agora.io/v1/ncs/ip" is plain http: use https`}},
		{"max addresses", func(c *Config) { c.MaxAddresses = -1 }, []string{"ncs.max_addresses: -1 is outside"}},
		{"every problem at once", func(c *Config) { c.Endpoints = []string{"x", "https://ok/"}; c.CustomerID = "" },
			[]string{"ncs.endpoints[0]:", "customer id is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.modify(&cfg)
			_, err := New(cfg, nil)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			for _, secret := range []string{"s3cr3t-value", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("got %q, want no secret in it", err)
				}
			}
		})
	}
}
