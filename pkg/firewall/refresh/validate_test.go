package refresh

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{MinIPs: DefaultMinIPs, MaxShrink: DefaultMaxShrink, RemoveGrace: DefaultRemoveGrace,
		StaticAllow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a /8 and a /32: got %v, want nil", err)
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"everyone v4", func(c *Config) { c.StaticAllow = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }, "firewall.static_allow[0]: 0.0.0.0/0 covers everyone"},
		{"close to everyone v4", func(c *Config) {
			c.StaticAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("0.0.0.0/1")}
		}, "firewall.static_allow[1]: 0.0.0.0/1 covers everyone"},
		{"everyone v6", func(c *Config) { c.StaticAllow = []netip.Prefix{netip.MustParsePrefix("::/0")} }, "firewall.static_allow[0]: ::/0 covers everyone"},
		{"mapped", func(c *Config) { c.StaticAllow = []netip.Prefix{netip.MustParsePrefix("::ffff:198.51.100.0/120")} }, "IPv4-mapped"},
		{"min_ips", func(c *Config) { c.MinIPs = 0 }, "firewall.min_ips: must be at least 1"},
		{"max_shrink", func(c *Config) { c.MaxShrink = 1.5 }, "firewall.max_shrink: 1.5 is outside (0, 1]"},
		{"remove_grace", func(c *Config) { c.RemoveGrace = -1 }, "firewall.remove_grace:"},
	} {
		cfg := ok
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
		cfg.Firewall, cfg.Store = &fakeFirewall{}, &fakeStore{}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted what Validate refuses", c.name)
		}
	}
}
