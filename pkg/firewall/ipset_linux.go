package firewall

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// ipsetSpec names one family's ipset: the live set the iptables rule
// matches and the temporary set an Apply fills before swapping it in.
type ipsetSpec struct {
	live, tmp string
	family    string // "inet" or "inet6", as ipset spells it
}

// ipsetMinSize is ipset's default maxelem and the floor for our sets.
const ipsetMinSize = 65536

// ipsetNames returns the names of all ipsets in this network namespace.
func ipsetNames(ctx context.Context) (map[string]bool, error) {
	out, err := runTool(ctx, nil, "ipset", "list", "-n")
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool)
	for _, n := range strings.Fields(string(out)) {
		names[n] = true
	}
	return names, nil
}

// ipsetScript writes the "ipset restore" input that replaces the members of
// each live set with want[i] without a moment of a partly filled set: a
// fresh temporary set is filled, then "swap" exchanges it with the live set
// in one kernel operation (rules refer to the set by index, which keeps
// pointing at the live name), and the old members are destroyed with the
// temporary name. A live set that does not exist yet is made by renaming.
// exists says which sets are present now, so that no command fails.
func ipsetScript(specs []ipsetSpec, want [][]netip.Prefix, exists map[string]bool) []byte {
	var b bytes.Buffer
	for i, s := range specs {
		n := len(want[i])
		size := max(ipsetMinSize, n)
		hash := max(1024, 1<<bits.Len(uint(n)))
		if exists[s.tmp] {
			fmt.Fprintf(&b, "destroy %s\n", s.tmp) // left over by an interrupted Apply
		}
		fmt.Fprintf(&b, "create %s hash:net family %s hashsize %d maxelem %d\n", s.tmp, s.family, hash, size)
		for _, p := range want[i] {
			fmt.Fprintf(&b, "add %s %s\n", s.tmp, p)
		}
		if exists[s.live] {
			fmt.Fprintf(&b, "swap %s %s\ndestroy %s\n", s.tmp, s.live, s.tmp)
		} else {
			fmt.Fprintf(&b, "rename %s %s\n", s.tmp, s.live)
		}
	}
	return b.Bytes()
}

// ipsetInfo is one set as "ipset save" shows it.
type ipsetInfo struct {
	kind    string // "hash:net family inet", from the create line
	members []netip.Prefix
	odd     string // first entry with options we never set, if any
}

// ipsetSave reads every set in the network namespace with one "ipset save".
// One process for both of our sets costs less than one per set, and it
// also tells which set names exist.
func ipsetSave(ctx context.Context) (map[string]*ipsetInfo, error) {
	out, err := runTool(ctx, nil, "ipset", "save")
	if err != nil {
		return nil, err
	}
	return parseIPSetSave(out)
}

// parseIPSetSave parses the output of "ipset save".
func parseIPSetSave(out []byte) (map[string]*ipsetInfo, error) {
	sets := make(map[string]*ipsetInfo)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "create":
			info := &ipsetInfo{kind: f[2]}
			if len(f) >= 5 && f[3] == "family" {
				info.kind += " family " + f[4]
			}
			sets[f[1]] = info
		case "add":
			info := sets[f[1]]
			if info == nil {
				return nil, fmt.Errorf("parse ipset save: entry before create line: %q", sc.Text())
			}
			if len(f) > 3 {
				// nomatch, timeout, comment...: these change what the set
				// admits or for how long.
				if info.odd == "" {
					info.odd = sc.Text()
				}
				continue
			}
			p, err := parseMember(f[2])
			if err != nil {
				return nil, fmt.Errorf("parse ipset save: %w", err)
			}
			info.members = append(info.members, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse ipset save: %w", err)
	}
	return sets, nil
}

// compareSet returns nil when the saved sets hold s with exactly want
// (canonical), or how it differs.
func compareSet(sets map[string]*ipsetInfo, s ipsetSpec, want []netip.Prefix) error {
	info := sets[s.live]
	switch {
	case info == nil:
		return fmt.Errorf("ipset %s missing", s.live)
	case info.kind != "hash:net family "+s.family:
		return fmt.Errorf("ipset %s: got %s, want hash:net family %s", s.live, info.kind, s.family)
	case info.odd != "":
		return fmt.Errorf("ipset %s: entry with options %q", s.live, info.odd)
	}
	if got := canonical(slices.Clone(info.members)); !slices.Equal(got, want) {
		return fmt.Errorf("ipset %s: got %d entries, want %d (or different ones)", s.live, len(got), len(want))
	}
	return nil
}

// parseMember parses an ipset entry: a prefix, or an address for a full-length one.
func parseMember(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("parse entry: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse entry: %w", err)
	}
	return hostPrefix(a), nil
}
