package firewall

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestKernelBackends drives each real backend inside network namespaces
// with real TCP connects over a veth pair. Subtests of one backend share
// its topology and run in order; the two backends run in parallel.
func TestKernelBackends(t *testing.T) {
	for _, backend := range []string{BackendNFTables, BackendIPTables} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, backend)
			t.Run("reconcile before apply", h.testReconcileBeforeApply)
			t.Run("traffic", h.testTraffic)
			t.Run("drift", func(t *testing.T) { h.testDrift(t, driftCases(backend, h.name)) })
			t.Run("reapply without gap", h.testReapplyWithoutGap)
			t.Run("remove", h.testRemove)
		})
	}
}

func (h *harness) testReconcileBeforeApply(t *testing.T) {
	if h.reconcile(t) {
		t.Errorf("Reconcile before any Apply: got repaired, want nothing done")
	}
	h.remove(t) // nothing to remove yet: must succeed
	if out := h.tp.Server.MustExec(t, "nft", "list", "ruleset"); strings.Contains(out, h.name) {
		t.Errorf("ruleset before any Apply: got\n%s\nwant nothing of %s", out, h.name)
	}
	c4, c6 := h.tp.ClientV4, h.tp.ClientV6
	h.expect(t, []probe{
		{"v4 before apply", c4[1], portGuarded, true},
		{"v6 before apply", c6[1], portGuarded, true},
	})
}

func (h *harness) testTraffic(t *testing.T) {
	c4, c6 := h.tp.ClientV4, h.tp.ClientV6 // c4[0..3] 198.51.100.10-13, c4[4..7] 203.0.113.10-13
	steps := []struct {
		name   string
		allow  []netip.Prefix
		probes []probe
	}{
		{
			name:  "first list",
			allow: prefixes(t, "198.51.100.10", "2001:db8::10", "203.0.113.0/24"),
			probes: []probe{
				{"listed v4", c4[0], portGuarded, true},
				{"listed v4, second port", c4[0], portGuarded2, true},
				{"unlisted v4", c4[1], portGuarded, false},
				{"unlisted v4, second port", c4[1], portGuarded2, false},
				{"v4 inside a CIDR entry", c4[6], portGuarded, true},
				{"listed v6", c6[0], portGuarded, true},
				{"unlisted v6", c6[1], portGuarded, false},
				{"unlisted v6, second port", c6[1], portGuarded2, false},
				{"unguarded port, unlisted v4", c4[1], portOpen, true},
				{"unguarded port, unlisted v6", c6[1], portOpen, true},
			},
		},
		{
			name:  "list changed",
			allow: prefixes(t, "198.51.100.11", "2001:db8::11", "2001:db8::12/127"),
			probes: []probe{
				{"dropped from list v4", c4[0], portGuarded, false},
				{"added to list v4", c4[1], portGuarded, true},
				{"CIDR entry gone", c4[6], portGuarded, false},
				{"dropped from list v6", c6[0], portGuarded, false},
				{"added to list v6", c6[1], portGuarded, true},
				{"v6 inside a CIDR entry", c6[3], portGuarded2, true},
				{"unguarded port, unlisted v4", c4[0], portOpen, true},
			},
		},
		{
			name:  "same list again",
			allow: prefixes(t, "2001:db8::12/127", "198.51.100.11", "2001:db8::11", "198.51.100.11"),
			probes: []probe{
				{"still listed v4", c4[1], portGuarded, true},
				{"still unlisted v4", c4[0], portGuarded, false},
				{"still listed v6", c6[2], portGuarded, true},
			},
		},
		{
			name:  "empty list closes the ports",
			allow: nil,
			probes: []probe{
				{"formerly listed v4", c4[1], portGuarded, false},
				{"formerly listed v6", c6[1], portGuarded, false},
				{"unguarded port", c4[1], portOpen, true},
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			h.apply(t, st.allow)
			if h.reconcile(t) {
				t.Errorf("Reconcile right after Apply: got repaired, want nothing to repair")
			}
			h.expect(t, st.probes)
		})
	}
}

// driftCase is a change someone else makes to what we own, or beside it.
type driftCase struct {
	name string
	cmds [][]string
	// keep are lines of someone else's that the repair must leave in place:
	// tool, then the text its output must still contain.
	keep [][2]string
}

func driftCases(backend, name string) []driftCase {
	if backend == BackendNFTables {
		return []driftCase{
			{name: "nft flush ruleset", cmds: [][]string{{"nft", "flush", "ruleset"}}},
			{name: "table deleted", cmds: [][]string{{"nft", "delete", "table", "inet", name}}},
			{name: "set flushed", cmds: [][]string{{"nft", "flush", "set", "inet", name, nftSetAllow4}}},
			{name: "unlisted element added", cmds: [][]string{{"nft", "add", "element", "inet", name, nftSetAllow6, "{ 2001:db8::11 }"}}},
			{name: "rules flushed", cmds: [][]string{{"nft", "flush", "chain", "inet", name, nftChainName}}},
			{name: "table made dormant", cmds: [][]string{{"nft", "add table inet " + name + " { flags dormant; }"}}},
			{name: "chain policy changed", cmds: [][]string{{"nft", "add chain inet " + name + " " + nftChainName + " { policy drop; }"}}},
		}
	}
	cfg := Config{Name: name}
	chain := cfg.iptablesChain()
	return []driftCase{
		{name: "our chain flushed", cmds: [][]string{{"iptables", "-F", chain}}},
		{name: "jump deleted", cmds: [][]string{{"ip6tables", "-D", "INPUT", "-j", chain}}},
		{name: "iptables -F", cmds: [][]string{{"iptables", "-F"}, {"ip6tables", "-F"}}},
		{name: "chain deleted", cmds: [][]string{{"iptables", "-D", "INPUT", "-j", chain}, {"iptables", "-F", chain}, {"iptables", "-X", chain}}},
		{name: "ipset flushed", cmds: [][]string{{"ipset", "flush", cfg.ipsetName("v4")}}},
		{name: "unlisted entry added", cmds: [][]string{{"ipset", "add", cfg.ipsetName("v6"), "2001:db8::11"}}},
		{
			// What config management does to "open the port": it lands
			// above our jump and would admit every source.
			name: "accept inserted above the jump",
			cmds: [][]string{
				{"iptables", "-I", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(portGuarded), "-j", "ACCEPT"},
				{"ip6tables", "-I", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(portGuarded), "-j", "ACCEPT"},
			},
			keep: [][2]string{
				{"iptables-save", "-A INPUT -p tcp -m tcp --dport " + strconv.Itoa(portGuarded) + " -j ACCEPT"},
				{"ip6tables-save", "-A INPUT -p tcp -m tcp --dport " + strconv.Itoa(portGuarded) + " -j ACCEPT"},
			},
		},
	}
}

func (h *harness) testDrift(t *testing.T, cases []driftCase) {
	c4, c6 := h.tp.ClientV4, h.tp.ClientV6
	h.apply(t, prefixes(t, "198.51.100.10", "2001:db8::10"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range tc.cmds {
				h.tp.Server.MustExec(t, cmd[0], cmd[1:]...)
			}
			if !h.reconcile(t) {
				t.Errorf("Reconcile after drift: got not repaired, want repaired")
			}
			if h.reconcile(t) {
				t.Errorf("second Reconcile: got repaired, want nothing to repair")
			}
			h.expect(t, []probe{
				{"listed v4", c4[0], portGuarded, true},
				{"unlisted v4", c4[1], portGuarded, false},
				{"listed v6", c6[0], portGuarded, true},
				{"unlisted v6", c6[1], portGuarded, false},
			})
			for _, k := range tc.keep {
				if out := h.tp.Server.MustExec(t, k[0], "-t", "filter"); !strings.Contains(out, k[1]) {
					t.Errorf("%s after repair: got\n%s\nwant the operator's %q kept", k[0], out, k[1])
				}
			}
			if h.fw.Backend() == BackendIPTables {
				h.expectJumpFirst(t)
			}
		})
	}
}

// expectJumpFirst checks that our jump is the first rule of INPUT in both
// families: any rule above it could accept what our chain would drop.
func (h *harness) expectJumpFirst(t *testing.T) {
	t.Helper()
	want := "-A INPUT -j " + Config{Name: h.name}.iptablesChain()
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out := h.tp.Server.MustExec(t, tool, "-t", "filter")
		first := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "-A INPUT ") {
				first = l
				break
			}
		}
		if first != want {
			t.Errorf("%s: first INPUT rule: got %q, want %q", tool, first, want)
		}
	}
}

// testRemove checks that Remove takes out everything of ours, leaves
// foreign tables, chains and sets alone, and can be repeated.
func (h *harness) testRemove(t *testing.T) {
	srv := h.tp.Server
	h.apply(t, prefixes(t, "198.51.100.10", "2001:db8::10"))
	srv.MustExec(t, "nft", "add table inet foreign")
	srv.MustExec(t, "nft", "add chain inet foreign input { type filter hook input priority 10; policy accept; }")
	srv.MustExec(t, "nft", "add rule inet foreign input tcp dport 22 accept")
	if h.fw.Backend() == BackendIPTables {
		for _, ipt := range []string{"iptables", "ip6tables"} {
			srv.MustExec(t, ipt, "-N", "FOREIGN")
			srv.MustExec(t, ipt, "-A", "FOREIGN", "-p", "tcp", "--dport", "22", "-j", "RETURN")
			srv.MustExec(t, ipt, "-A", "INPUT", "-j", "FOREIGN")
		}
		srv.MustExec(t, "ipset", "create", "foreign", "hash:ip")
		srv.MustExec(t, "ipset", "add", "foreign", "192.0.2.1")
	}
	foreign := func() string {
		var b strings.Builder
		b.WriteString(srv.MustExec(t, "nft", "list", "table", "inet", "foreign"))
		if h.fw.Backend() == BackendIPTables {
			for _, tool := range []string{"iptables", "ip6tables"} {
				for _, l := range strings.Split(srv.MustExec(t, tool+"-save", "-t", "filter"), "\n") {
					if strings.Contains(l, "FOREIGN") {
						b.WriteString(l + "\n")
					}
				}
			}
			b.WriteString(srv.MustExec(t, "ipset", "save", "foreign"))
		}
		return b.String()
	}
	before := foreign()

	h.remove(t)
	h.remove(t) // idempotent

	if after := foreign(); after != before {
		t.Errorf("foreign objects after Remove:\ngot\n%s\nwant\n%s", after, before)
	}
	cfg := Config{Name: h.name}
	ours := []struct {
		tool string
		args []string
		mark string
	}{
		{"nft", []string{"list", "tables"}, "inet " + h.name + "\n"},
		{"ipset", []string{"list", "-n"}, cfg.ipsetName("v")},
		{"iptables-save", []string{"-t", "filter"}, cfg.iptablesChain()},
		{"ip6tables-save", []string{"-t", "filter"}, cfg.iptablesChain()},
	}
	for _, o := range ours {
		if out := srv.MustExec(t, o.tool, o.args...); strings.Contains(out+"\n", o.mark) {
			t.Errorf("after Remove, %s %s: got %q in\n%s\nwant none", o.tool, strings.Join(o.args, " "), o.mark, out)
		}
	}
	if h.reconcile(t) {
		t.Errorf("Reconcile after Remove: got repaired, want nothing done")
	}
	h.expect(t, []probe{
		{"unlisted v4 after Remove", h.tp.ClientV4[1], portGuarded, true},
		{"unlisted v6 after Remove", h.tp.ClientV6[1], portGuarded, true},
	})
}
