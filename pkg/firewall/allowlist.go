package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"
)

// allowlist is an allowlist in canonical form: prefixes masked, IPv4-mapped
// IPv6 turned into IPv4, duplicates and prefixes inside another dropped,
// sorted, split by family. Lists that differ only in order, duplicates,
// host bits or nested entries have the same canonical form, which is what
// the plan and the read-back compare.
type allowlist struct {
	v4 []netip.Prefix
	v6 []netip.Prefix
}

// newAllowlist validates and canonicalizes allow.
func newAllowlist(allow []netip.Prefix) (allowlist, error) {
	var l allowlist
	for _, p := range allow {
		if !p.IsValid() {
			return allowlist{}, fmt.Errorf("check allowlist entry %q: not a valid prefix", p.String())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Addr().Is4() {
			l.v4 = append(l.v4, p)
		} else {
			l.v6 = append(l.v6, p)
		}
	}
	l.v4 = canonical(l.v4)
	l.v6 = canonical(l.v6)
	return l, nil
}

// len returns the number of canonical entries.
func (l allowlist) len() int { return len(l.v4) + len(l.v6) }

// diff counts the entries of next missing from l (added) and the entries of
// l missing from next (removed), for logging the plan.
func (l allowlist) diff(next allowlist) (added, removed int) {
	have := make(map[netip.Prefix]bool, l.len())
	for _, p := range slices.Concat(l.v4, l.v6) {
		have[p] = true
	}
	for _, p := range slices.Concat(next.v4, next.v6) {
		if have[p] {
			delete(have, p)
		} else {
			added++
		}
	}
	return added, len(have)
}

// canonical sorts masked prefixes of one family and drops duplicates and
// prefixes contained in another. CIDR blocks either nest or are disjoint, so
// after sorting by address (shorter prefix first on ties) a prefix inside
// any kept one is inside the last kept one.
func canonical(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return slices.Clip(out)
}

// lastAddr returns the highest address inside p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// hostPrefix returns the single-address prefix of a.
func hostPrefix(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, a.BitLen())
}

// splitZero replaces a /0 by its two /1 halves: hash:net ipsets do not
// accept a zero-length prefix, and the halves admit the same sources.
func splitZero(ps []netip.Prefix) []netip.Prefix {
	if len(ps) != 1 || ps[0].Bits() != 0 {
		return ps
	}
	a := ps[0].Addr().AsSlice()
	low, _ := netip.AddrFromSlice(a)
	a[0] = 0x80
	high, _ := netip.AddrFromSlice(a)
	return []netip.Prefix{netip.PrefixFrom(low, 1), netip.PrefixFrom(high, 1)}
}

// logApplied is each backend's one line per apply: list replaced prev (nil
// on the first apply of this process) in the kernel object named by where,
// in the time since start.
func logApplied(log *zap.Logger, backend string, where zap.Field, ports []uint16, prev *allowlist, list allowlist, start time.Time) {
	added, removed := list.len(), 0
	if prev != nil {
		added, removed = prev.diff(list)
	}
	log.Info("firewall applied",
		zap.String("backend", backend),
		where,
		zap.Uint16s("ports", ports),
		zap.Int("ipv4_count", len(list.v4)),
		zap.Int("ipv6_count", len(list.v6)),
		zap.Int("added_count", added),
		zap.Int("removed_count", removed),
		zap.Duration("duration", time.Since(start)),
	)
}
