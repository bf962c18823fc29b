package refresh

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
)

// Plan is what a refresh changes: printed by -refresh, sent over the
// control socket, logged.
type Plan struct {
	Source  string         `json:"source"`
	Fetched int            `json:"fetched"` // addresses in Agora's answer
	Added   []netip.Addr   `json:"added"`   // newly allowed
	Removed []netip.Addr   `json:"removed"` // no longer allowed (gone for longer than remove_grace)
	Kept    []netip.Addr   `json:"kept"`    // in the answer and already allowed
	Grace   []netip.Addr   `json:"grace"`   // gone from the answer, still allowed during remove_grace
	Static  []netip.Prefix `json:"static"`
	// Entries is the size of the full allowlist the plan applies.
	Entries int `json:"entries"`
	next    *State
}

// Allowed is the full set the plan applies: NCS addresses plus static_allow.
func (p *Plan) Allowed() []netip.Prefix { return allowlist(p.next, p.Static) }

// merge computes the next state from the previous one and Agora's answer.
func (r *Refresher) merge(prev *State, res ncsip.Result, now time.Time) *Plan {
	p := &Plan{Source: res.Endpoint, Fetched: len(res.Addrs), Static: r.static}
	next := &State{FetchedAt: now, Source: res.Endpoint}
	fresh := make(map[netip.Addr]bool, len(res.Addrs))
	for _, a := range res.Addrs {
		fresh[a] = true
		next.Entries = append(next.Entries, Entry{Addr: a, LastSeen: now})
	}
	old := map[netip.Addr]bool{}
	if prev != nil {
		for _, e := range prev.Entries {
			old[e.Addr] = true
			switch {
			case fresh[e.Addr]:
				p.Kept = append(p.Kept, e.Addr)
			case now.Sub(e.LastSeen) < r.grace:
				p.Grace = append(p.Grace, e.Addr)
				next.Entries = append(next.Entries, e)
			default:
				p.Removed = append(p.Removed, e.Addr)
			}
		}
	}
	for _, a := range res.Addrs {
		if !old[a] {
			p.Added = append(p.Added, a)
		}
	}
	slices.SortFunc(next.Entries, func(a, b Entry) int { return a.Addr.Compare(b.Addr) })
	for _, s := range [][]netip.Addr{p.Kept, p.Grace, p.Removed} {
		slices.SortFunc(s, netip.Addr.Compare)
	}
	p.next = next
	p.Entries = len(p.Allowed())
	return p
}

// allowlist is the set the firewall enforces: the state's NCS addresses and
// static_allow, sorted and deduplicated so equal lists compare equal.
func allowlist(st *State, static []netip.Prefix) []netip.Prefix {
	out := slices.Clone(static)
	if st != nil {
		for _, e := range st.Entries {
			out = append(out, netip.PrefixFrom(e.Addr, e.Addr.BitLen()))
		}
	}
	return sortedPrefixes(out)
}

func sortedPrefixes(in []netip.Prefix) []netip.Prefix {
	out := slices.Clone(in)
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Print writes the plan for an operator at the terminal.
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "agora answered %d address(es) from %s\n", p.Fetched, p.Source)
	line := func(label string, addrs []netip.Addr) {
		fmt.Fprintf(w, "%-8s %4d", label, len(addrs))
		for _, a := range addrs {
			fmt.Fprintf(w, " %s", a)
		}
		fmt.Fprintln(w)
	}
	line("added", p.Added)
	line("removed", p.Removed)
	line("kept", p.Kept)
	line("grace", p.Grace)
	fmt.Fprintf(w, "%-8s %4d", "static", len(p.Static))
	for _, s := range p.Static {
		fmt.Fprintf(w, " %s", s)
	}
	fmt.Fprintln(w)
}
