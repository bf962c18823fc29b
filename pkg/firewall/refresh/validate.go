package refresh

import (
	"errors"
	"fmt"
	"time"
)

// Defaults and bounds of the operator's firewall.* keys the refresher reads.
const (
	// DefaultMinIPs is firewall.min_ips's default: an empty list is never applied.
	DefaultMinIPs = 1
	// DefaultMaxShrink is firewall.max_shrink's default: a list that drops
	// more than half of the previous answer at once needs -refresh -force.
	DefaultMaxShrink = 0.5
	// DefaultRemoveGrace is firewall.remove_grace's default: an address gone
	// from Agora's list stays allowed this long, for notifications in flight
	// from it and for an answer that missed it by mistake.
	DefaultRemoveGrace = 24 * time.Hour
	// MaxRemoveGrace bounds firewall.remove_grace.
	MaxRemoveGrace = 7 * 24 * time.Hour
	// MinStaticAllowBits4 and MinStaticAllowBits6 are the broadest
	// firewall.static_allow entries accepted. An IPv4 /8 (one 256th of the
	// address space) still fits a private network such as 10.0.0.0/8; an
	// IPv6 /32 is a whole ISP's allocation, broader than any one site. Any
	// wider entry opens the port to a large part of the internet while the
	// allowlist seems to be on.
	MinStaticAllowBits4 = 8
	MinStaticAllowBits6 = 32
)

// Validate reports every problem of the refresher's settings at once, each
// error starting with the operator's key. It does no I/O; New calls it.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for i, pfx := range c.StaticAllow {
		key := fmt.Sprintf("firewall.static_allow[%d]", i)
		switch {
		case pfx.Addr().Is4In6():
			bad(key, "%s is an IPv4-mapped IPv6 prefix, which never matches IPv4 traffic: write it as IPv4", pfx)
		case pfx.Addr().Is4() && pfx.Bits() < MinStaticAllowBits4,
			pfx.Addr().Is6() && pfx.Bits() < MinStaticAllowBits6:
			bad(key, "%s covers everyone or close to it and would turn the allowlist off: list the hosts that need the port (IPv4 /%d or longer, IPv6 /%d or longer)",
				pfx, MinStaticAllowBits4, MinStaticAllowBits6)
		default:
			if t, ok := translationOverlap(pfx); ok {
				if pfx.Masked() == t.prefix {
					bad(key, "%s is %s", pfx, t.name)
				} else {
					bad(key, "%s overlaps %s, %s", pfx, t.prefix, t.name)
				}
			}
		}
	}
	for _, msg := range staticAllowBreadth(c.StaticAllow) {
		bad("firewall.static_allow", "%s", msg)
	}
	if c.RemoveGrace < 0 || c.RemoveGrace > MaxRemoveGrace {
		bad("firewall.remove_grace", "%s is outside 0..%s", c.RemoveGrace, MaxRemoveGrace)
	}
	if c.MinIPs < 1 {
		bad("firewall.min_ips", "must be at least 1: an empty list is never applied")
	}
	if c.MaxShrink <= 0 || c.MaxShrink > 1 {
		bad("firewall.max_shrink", "%g is outside (0, 1]", c.MaxShrink)
	}
	return errors.Join(errs...)
}
