package refresh

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
)

// Breadth limits of firewall.static_allow as a whole: at most one IPv4 /8
// and one IPv6 /32 of addresses the internet can reach, in all, however the
// entries split them. Each entry alone is held to the same limits
// (MinStaticAllowBits4/6); without the total, 256 entries of N.0.0.0/8
// would still allow all of IPv4.
const (
	maxStaticAllow4Log2 = 32 - MinStaticAllowBits4  // 2^24 addresses
	maxStaticAllow6Log2 = 128 - MinStaticAllowBits6 // 2^96 addresses
)

// nonPublic are the ranges not counted in the total: their sources reach
// the host only from a network it is attached to (private use, shared
// address space, loopback, link-local, unique local), never from the
// internet at large, since the answer to a forged source would not come
// back. They are disjoint from one another, which the count relies on.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// translation is an IPv6 prefix that carries IPv4 addresses: a host (or its
// network) that translates or tunnels it delivers IPv4 peers' packets with
// a source inside it, so allowing it allows IPv4 addresses unlisted.
type translation struct {
	prefix netip.Prefix
	name   string // what it is and why it is refused, for the operator
}

// carriesIPv4 is the refusal's reason for the prefixes that deliver IPv4 peers.
const carriesIPv4 = ": a host or network that translates it lets in IPv4 peers the allowlist does not list; list the IPv4 hosts instead"

var translations = []translation{
	{netip.MustParsePrefix("64:ff9b::/96"), "the NAT64 prefix (RFC 6052), which carries all of IPv4" + carriesIPv4},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "the local-use NAT64 prefix (RFC 8215), which carries all of IPv4" + carriesIPv4},
	{netip.MustParsePrefix("2001::/32"), "the Teredo prefix (RFC 4380), which tunnels IPv4 clients" + carriesIPv4},
	{netip.MustParsePrefix("2002::/16"), "the 6to4 prefix (RFC 3056), which embeds IPv4 addresses" + carriesIPv4},
	{netip.MustParsePrefix("::ffff:0:0/96"), "the IPv4-mapped prefix, which never matches IPv4 traffic: write IPv4 hosts as IPv4"},
}

// translationOverlap returns the first translation prefix pfx overlaps.
func translationOverlap(pfx netip.Prefix) (translation, bool) {
	if !pfx.Addr().Is6() {
		return translation{}, false
	}
	for _, t := range translations {
		if pfx.Overlaps(t.prefix) {
			return t, true
		}
	}
	return translation{}, false
}

// staticAllowBreadth returns why the entries together allow too much, one
// reason per family, or nothing when they do not. Overlapping entries count once; non-public ranges
// not at all. Entries refused on their own (IPv4-mapped) are left to that
// check.
func staticAllowBreadth(allow []netip.Prefix) []string {
	var out []string
	var v4, v6 []netip.Prefix
	for _, p := range allow {
		if !p.IsValid() || p.Addr().Is4In6() {
			continue
		}
		p = p.Masked()
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	if n := publicAddresses(v4); n.Cmp(pow2(maxStaticAllow4Log2)) > 0 {
		out = append(out, fmt.Sprintf("together the entries allow %s public IPv4 addresses, more than one /%d (%s): list the hosts that need the port",
			n, MinStaticAllowBits4, pow2(maxStaticAllow4Log2)))
	}
	if n := publicAddresses(v6); n.Cmp(pow2(maxStaticAllow6Log2)) > 0 {
		// In /32s: a 29-digit count of addresses says nothing to a reader.
		per := pow2(maxStaticAllow6Log2)
		q, r := new(big.Int).QuoRem(n, per, new(big.Int))
		size := q.String()
		if r.Sign() != 0 {
			size = "over " + size
		}
		out = append(out, fmt.Sprintf("together the entries allow %s IPv6 /%ds of public addresses, more than one /%d: list the networks that need the port",
			size, MinStaticAllowBits6, MinStaticAllowBits6))
	}
	return out
}

// publicAddresses counts the addresses of one family's prefixes, overlaps
// once, non-public ranges not at all.
func publicAddresses(ps []netip.Prefix) *big.Int {
	ps = canonicalPrefixes(ps)
	total := new(big.Int)
	for _, p := range ps {
		n := pow2(p.Addr().BitLen() - p.Bits())
		for _, np := range nonPublic {
			// CIDR blocks nest or are disjoint.
			switch {
			case np.Bits() <= p.Bits() && np.Contains(p.Addr()):
				n.SetInt64(0)
			case p.Bits() < np.Bits() && p.Contains(np.Addr()):
				n.Sub(n, pow2(np.Addr().BitLen()-np.Bits()))
			}
		}
		total.Add(total, n)
	}
	return total
}

// canonicalPrefixes sorts masked prefixes of one family and drops those
// inside another: CIDR blocks nest or are disjoint, so after sorting by
// address (shorter first on ties) a prefix inside a kept one is inside the
// last kept one.
func canonicalPrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
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
	return out
}

func pow2(n int) *big.Int { return new(big.Int).Lsh(big.NewInt(1), uint(n)) }
