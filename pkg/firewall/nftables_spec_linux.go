package firewall

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Objects inside our nftables table. The table name is Config.Name.
const (
	nftChainName = "input"
	nftSetAllow4 = "allow4"
	nftSetAllow6 = "allow6"
	nftSetPorts  = "ports"
	// Set IDs only have to be unique inside one batch; fixing them avoids
	// the library's unsynchronized global ID counter.
	nftSetIDPorts  = 1
	nftSetIDAllow4 = 2
	nftSetIDAllow6 = 3
	// nftMaxElemBytes bounds the encoded elements of one set-element
	// message: they sit in one netlink attribute, whose length is 16 bits,
	// and google/nftables v0.3.0 does not split long lists itself.
	nftMaxElemBytes = 32 << 10
	// nftElemBytes is a generous size of one element in a batch.
	nftElemBytes = 64
)

// nftSpec is everything our table should hold, built once per operation so
// that writing and reading back compare against the same values.
type nftSpec struct {
	table *nftables.Table
	chain *nftables.Chain
	sets  []*nftables.Set         // ports, allow4, allow6
	elems [][]nftables.SetElement // elements of each set, same order
	rules []*nftables.Rule
}

func (b *nftBackend) table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: b.cfg.Name}
}

func (b *nftBackend) spec(list allowlist) nftSpec {
	t := b.table()
	s := nftSpec{
		table: t,
		chain: &nftables.Chain{
			Name:     nftChainName,
			Table:    t,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookInput,
			Priority: nftables.ChainPriorityFilter,
			Policy:   ptr(nftables.ChainPolicyAccept),
		},
		sets: []*nftables.Set{
			{Table: t, Name: nftSetPorts, ID: nftSetIDPorts, KeyType: nftables.TypeInetService},
			{Table: t, Name: nftSetAllow4, ID: nftSetIDAllow4, KeyType: nftables.TypeIPAddr, Interval: true},
			{Table: t, Name: nftSetAllow6, ID: nftSetIDAllow6, KeyType: nftables.TypeIP6Addr, Interval: true},
		},
	}
	ports := make([]nftables.SetElement, 0, len(b.cfg.Ports))
	for _, p := range b.cfg.Ports {
		ports = append(ports, nftables.SetElement{Key: []byte{byte(p >> 8), byte(p)}})
	}
	s.elems = [][]nftables.SetElement{ports, intervalElements(list.v4), intervalElements(list.v6)}
	for _, fam := range []struct {
		tag            string
		proto          byte
		offset, length uint32
		set            *nftables.Set
	}{
		{"ipv4", unix.NFPROTO_IPV4, 12, 4, s.sets[1]},
		{"ipv6", unix.NFPROTO_IPV6, 8, 16, s.sets[2]},
	} {
		s.rules = append(s.rules, &nftables.Rule{
			Table: t,
			Chain: s.chain,
			// Rule handles are not returned by v0.3.0; the comment names
			// the rule for read-back and for people reading "nft list".
			UserData: userdata.AppendString(nil, userdata.TypeComment, b.cfg.Name+" drop "+fam.tag+" not in allowlist"),
			// meta nfproto F meta l4proto tcp tcp dport @ports
			// ip[6] saddr != @allowN drop
			Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.proto}},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, SetName: nftSetPorts, SetID: nftSetIDPorts},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: fam.offset, Len: fam.length},
				&expr.Lookup{SourceRegister: 1, SetName: fam.set.Name, SetID: fam.set.ID, Invert: true},
				&expr.Verdict{Kind: expr.VerdictDrop},
			},
		})
	}
	return s
}

// nftState is what the kernel holds of our table.
type nftState struct {
	// structure is nil when table, chain, rules and set definitions are
	// exactly ours, else how they differ (including "missing").
	structure error
	// elems holds each set's elements, in spec order, when structure is nil.
	elems [][]nftables.SetElement
}

// diff returns nil when the state matches want, else the first difference.
func (st nftState) diff(want nftSpec) error {
	if st.structure != nil {
		return st.structure
	}
	for i, set := range want.sets {
		if sameElements(st.elems[i], want.elems[i]) {
			continue
		}
		added, gone := diffElements(st.elems[i], want.elems[i])
		return fmt.Errorf("set %s: %d elements missing, %d extra", set.Name, len(added), len(gone))
	}
	return nil
}

// read reads our table back over one netlink socket. Any failure to read
// an object counts as that object being wrong: the repair that follows
// either fixes it or fails with the real error.
func (b *nftBackend) read(want nftSpec) nftState {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nftState{structure: fmt.Errorf("open nftables connection: %w", err)}
	}
	defer func() { _ = c.CloseLasting() }()
	name := want.table.Name

	t, err := c.ListTableOfFamily(name, want.table.Family)
	if err != nil {
		return nftState{structure: fmt.Errorf("table inet %s: %w", name, err)}
	}
	if t.Flags != 0 {
		// "dormant" switches every chain of the table off.
		return nftState{structure: fmt.Errorf("table inet %s: got flags %#x, want none", name, t.Flags)}
	}
	chains, err := c.ListChainsOfTableFamily(want.table.Family)
	if err != nil {
		return nftState{structure: fmt.Errorf("list chains: %w", err)}
	}
	var ours []*nftables.Chain
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == name {
			ours = append(ours, ch)
		}
	}
	if len(ours) != 1 || !sameChain(ours[0], want.chain) {
		return nftState{structure: fmt.Errorf("table inet %s: got chains %q, want one base chain %s", name, chainNames(ours), nftChainName)}
	}
	rules, err := c.GetRules(want.table, want.chain)
	if err != nil {
		return nftState{structure: fmt.Errorf("read rules: %w", err)}
	}
	if len(rules) != len(want.rules) {
		return nftState{structure: fmt.Errorf("chain %s: got %d rules, want %d", nftChainName, len(rules), len(want.rules))}
	}
	for i, r := range rules {
		if !slices.Equal(r.UserData, want.rules[i].UserData) || !reflect.DeepEqual(r.Exprs, asReadBack(want.rules[i].Exprs)) {
			return nftState{structure: fmt.Errorf("chain %s: rule %d differs from ours", nftChainName, i)}
		}
	}
	sets, err := c.GetSets(want.table)
	if err != nil {
		return nftState{structure: fmt.Errorf("list sets: %w", err)}
	}
	if len(sets) != len(want.sets) {
		return nftState{structure: fmt.Errorf("table inet %s: got %d sets, want %d", name, len(sets), len(want.sets))}
	}
	st := nftState{elems: make([][]nftables.SetElement, len(want.sets))}
	for i, ws := range want.sets {
		got := findSet(sets, ws.Name)
		if got == nil || got.KeyType.Name != ws.KeyType.Name || got.Interval != ws.Interval ||
			got.Constant || got.IsMap || got.HasTimeout {
			return nftState{structure: fmt.Errorf("set %s: missing or not of our type", ws.Name)}
		}
		if st.elems[i], err = c.GetSetElements(got); err != nil {
			return nftState{structure: fmt.Errorf("read set %s: %w", ws.Name, err)}
		}
	}
	return st
}

// asReadBack returns exprs as the kernel reports them: set lookups come back
// by name only, without the batch-local set ID.
func asReadBack(exprs []expr.Any) []expr.Any {
	out := make([]expr.Any, len(exprs))
	for i, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			c := *l
			c.SetID = 0
			e = &c
		}
		out[i] = e
	}
	return out
}

func sameChain(got, want *nftables.Chain) bool {
	return got.Name == want.Name && got.Type == want.Type &&
		got.Hooknum != nil && *got.Hooknum == *want.Hooknum &&
		got.Priority != nil && *got.Priority == *want.Priority &&
		got.Policy != nil && *got.Policy == *want.Policy
}

func chainNames(cs []*nftables.Chain) []string {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func findSet(sets []*nftables.Set, name string) *nftables.Set {
	for _, s := range sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// intervalElements encodes prefixes the way nft does for an interval set:
// each prefix is its first address plus, flagged as interval end, the
// address after its last (omitted when it runs to the top of the address
// space), after a leading "0 interval end" element when the first prefix
// does not start at 0. Prefixes are disjoint but may be adjacent; the
// kernel keeps the end of one and the start of the next as two elements,
// so each prefix owns its two elements and a list change only touches the
// elements of prefixes that come or go.
func intervalElements(ps []netip.Prefix) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(ps)+1)
	if len(ps) > 0 && !ps[0].Addr().IsUnspecified() {
		out = append(out, nftables.SetElement{Key: make([]byte, ps[0].Addr().BitLen()/8), IntervalEnd: true})
	}
	for _, p := range ps {
		out = append(out, nftables.SetElement{Key: p.Addr().AsSlice()})
		if next := lastAddr(p).Next(); next.IsValid() {
			out = append(out, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// elemRef is a set element reduced to what identifies it (key, and
// whether it ends an interval) plus its index, small enough to sort tens of
// thousands cheaply.
type elemRef struct {
	key [16]byte
	end bool
	i   int32
}

func elemRefs(es []nftables.SetElement) []elemRef {
	refs := make([]elemRef, len(es))
	for i, e := range es {
		refs[i].end = e.IntervalEnd
		refs[i].i = int32(i)
		// Keys of one set have one length, so zero padding keeps order.
		copy(refs[i].key[:], e.Key)
	}
	slices.SortFunc(refs, compareRefs)
	return refs
}

// compareRefs orders by key, interval ends before interval starts: the
// order intervalElements produces, so sorting a wanted list costs one pass.
func compareRefs(a, b elemRef) int {
	if c := bytes.Compare(a.key[:], b.key[:]); c != 0 {
		return c
	}
	switch {
	case a.end == b.end:
		return 0
	case a.end:
		return -1
	default:
		return 1
	}
}

// sameElements reports whether both lists hold the same elements.
func sameElements(a, b []nftables.SetElement) bool {
	if len(a) != len(b) {
		return false
	}
	ra, rb := elemRefs(a), elemRefs(b)
	for i := range ra {
		if compareRefs(ra[i], rb[i]) != 0 {
			return false
		}
	}
	return true
}

// diffElements returns the elements of want missing from cur (added) and
// those of cur missing from want (gone), by merging sorted references.
func diffElements(cur, want []nftables.SetElement) (added, gone []nftables.SetElement) {
	c, w := elemRefs(cur), elemRefs(want)
	added = make([]nftables.SetElement, 0, len(want))
	gone = make([]nftables.SetElement, 0, len(cur))
	for len(c) > 0 || len(w) > 0 {
		var d int
		switch {
		case len(w) == 0:
			d = -1
		case len(c) == 0:
			d = 1
		default:
			d = compareRefs(c[0], w[0])
		}
		switch {
		case d < 0:
			// Only key and flag identify an element for deletion.
			e := cur[c[0].i]
			gone = append(gone, nftables.SetElement{Key: e.Key, IntervalEnd: e.IntervalEnd})
			c = c[1:]
		case d > 0:
			added = append(added, want[w[0].i])
			w = w[1:]
		default:
			c, w = c[1:], w[1:]
		}
	}
	return added, gone
}

// chunkElements splits elements so that one message stays under
// nftMaxElemBytes. Several messages in one batch are still one transaction.
func chunkElements(elems []nftables.SetElement, keyLen uint32) [][]nftables.SetElement {
	// nested element (4) + key attr (4) + value attr (4) + key + flags (8)
	per := nftMaxElemBytes / (20 + int(keyLen))
	var out [][]nftables.SetElement
	for len(elems) > per {
		out = append(out, elems[:per])
		elems = elems[per:]
	}
	if len(elems) > 0 {
		out = append(out, elems)
	}
	return out
}

// sendBuffer returns a socket option that lets one batch of about n bytes
// go out in a single sendmsg: a netlink message larger than the socket's
// send buffer fails with EMSGSIZE, and the default (about 200 KiB) holds only
// a few thousand addresses. SO_SNDBUFFORCE ignores net.core.wmem_max; it
// needs CAP_NET_ADMIN, which changing nftables needs anyway.
func sendBuffer(n int) nftables.SockOption {
	size := max(n*2, 1<<20)
	return func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return fmt.Errorf("set netlink send buffer: %w", err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		}); err != nil {
			return fmt.Errorf("set netlink send buffer: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("set netlink send buffer: %w", serr)
		}
		return nil
	}
}

func ptr[T any](v T) *T { return &v }
