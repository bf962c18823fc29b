package refresh

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestStaticAllowUnion judges firewall.static_allow as a whole: entries
// each narrow enough may still add up to a large part of the internet, and
// the translation prefixes carry IPv4 inside IPv6.
func TestStaticAllowUnion(t *testing.T) {
	every8 := make([]string, 256)
	for i := range every8 {
		every8[i] = fmt.Sprintf("%d.0.0.0/8", i)
	}
	for _, c := range []struct {
		name  string
		allow []string
		want  string // "" means accepted
	}{
		{"all of ipv4 in /8s", every8, "firewall.static_allow: together the entries allow 4256038912 public IPv4 addresses, more than one /8 (16777216)"},
		{"two public /8s", []string{"11.0.0.0/8", "12.0.0.0/8"}, "firewall.static_allow: together the entries allow 33554432 public IPv4 addresses"},
		{"a public /8 and a host", []string{"11.0.0.0/8", "198.51.100.7"}, "more than one /8"},
		{"two /9s make one /8", []string{"11.0.0.0/9", "11.128.0.0/9"}, ""},
		{"overlaps count once", []string{"11.0.0.0/8", "11.1.0.0/16", "11.1.2.3/32"}, ""},
		{"private ranges do not count", []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "11.0.0.0/8"}, ""},
		{"the shipped check case", []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"}, ""},
		{"two ipv6 /32s", []string{"2001:db8::/32", "2001:db9::/32"}, "firewall.static_allow: together the entries allow 2 IPv6 /32s of public addresses, more than one /32"},
		{"two ipv6 /33s make one /32", []string{"2001:db8::/33", "2001:db8:8000::/33"}, ""},
		{"ula does not count", []string{"fd00::/32", "fd01::/32", "2001:db8::/32"}, ""},
		{"nat64 well-known", []string{"64:ff9b::/96"}, "firewall.static_allow[0]: 64:ff9b::/96 is the NAT64 prefix (RFC 6052)"},
		{"nat64 one embedded host", []string{"198.51.100.1", "64:ff9b::c633:6407/128"}, "firewall.static_allow[1]: 64:ff9b::c633:6407/128 overlaps 64:ff9b::/96"},
		{"nat64 around the prefix", []string{"64:ff9b::/64"}, "firewall.static_allow[0]: 64:ff9b::/64 overlaps 64:ff9b::/96"},
		{"nat64 local-use", []string{"64:ff9b:1::/48"}, "firewall.static_allow[0]: 64:ff9b:1::/48 is the local-use NAT64 prefix (RFC 8215)"},
		{"teredo", []string{"2001::/32"}, "firewall.static_allow[0]: 2001::/32 is the Teredo prefix (RFC 4380)"},
		{"inside teredo", []string{"2001:0:1::/48"}, "firewall.static_allow[0]: 2001:0:1::/48 overlaps 2001::/32"},
		{"6to4", []string{"2002:c633:6400::/40"}, "firewall.static_allow[0]: 2002:c633:6400::/40 overlaps 2002::/16, the 6to4 prefix (RFC 3056)"},
		{"around ipv4-mapped", []string{"::/80"}, "firewall.static_allow[0]: ::/80 overlaps ::ffff:0.0.0.0/96, the IPv4-mapped prefix"},
		{"ipv6 loopback", []string{"::1"}, ""},
	} {
		cfg := Config{MinIPs: DefaultMinIPs, MaxShrink: DefaultMaxShrink, RemoveGrace: DefaultRemoveGrace}
		for _, s := range c.allow {
			if !strings.Contains(s, "/") {
				a := netip.MustParseAddr(s)
				cfg.StaticAllow = append(cfg.StaticAllow, netip.PrefixFrom(a, a.BitLen()))
				continue
			}
			cfg.StaticAllow = append(cfg.StaticAllow, netip.MustParsePrefix(s))
		}
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: got %v, want nil", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
