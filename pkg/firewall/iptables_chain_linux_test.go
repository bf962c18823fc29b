package firewall

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// Unit tests of the iptables rule logic against fakeIPTables: no root, no
// tools. The namespace tests in kernel_linux_test.go run the same logic
// against the real thing.

const fakeOurs = "-p tcp -m multiport --dports 8443,8444 -m set ! --match-set ncs-gateway-v4 src -m comment --comment \"ncs_gateway drop unless in allowlist\" -j DROP"

func newFakeFamily(t *testing.T) (*iptFamily, *fakeIPTables) {
	t.Helper()
	fake := newFakeIPTables()
	f := newIPTFamily(Config{Name: DefaultName, Ports: []uint16{8443, 8444}}, "ipv4", "v4", "inet", fake)
	return f, fake
}

// installed returns chains holding exactly our chain and jump, plus more
// INPUT rules after the jump.
func installed(after ...string) map[string][]string {
	return map[string][]string{
		"INPUT":       append([]string{"-j NCS-GATEWAY"}, after...),
		"FORWARD":     nil,
		"OUTPUT":      nil,
		"NCS-GATEWAY": {fakeOurs},
	}
}

func TestIPTablesRuleSpec(t *testing.T) {
	f, _ := newFakeFamily(t)
	if got := "-A NCS-GATEWAY " + restoreLine(f.rules[0]); got != "-A NCS-GATEWAY "+fakeOurs {
		t.Errorf("rule: got %q, want %q", got, "-A NCS-GATEWAY "+fakeOurs)
	}
	if got, want := f.jumpLine(), "-A INPUT -j NCS-GATEWAY"; got != want {
		t.Errorf("jump: got %q, want %q", got, want)
	}
}

func TestIPTablesCheckAndRepair(t *testing.T) {
	operator := "-p tcp -m tcp --dport 8443 -j ACCEPT"
	tests := []struct {
		name      string
		chains    map[string][]string
		wantDrift string // substring of the drift; "" for none
		wantInput []string
	}{
		{"in place", installed("-p tcp -m tcp --dport 22 -j ACCEPT"), "", []string{"-j NCS-GATEWAY", "-p tcp -m tcp --dport 22 -j ACCEPT"}},
		{"first install", map[string][]string{"INPUT": {operator}}, "chain NCS-GATEWAY missing", []string{"-j NCS-GATEWAY", operator}},
		{"jump missing", map[string][]string{"INPUT": {operator}, "NCS-GATEWAY": {fakeOurs}}, "jump to NCS-GATEWAY missing", []string{"-j NCS-GATEWAY", operator}},
		{"rule above the jump", map[string][]string{"INPUT": {operator, "-j NCS-GATEWAY"}, "NCS-GATEWAY": {fakeOurs}}, "not the first rule of INPUT", []string{"-j NCS-GATEWAY", operator}},
		{"two jumps, neither first", map[string][]string{"INPUT": {operator, "-j NCS-GATEWAY", "-j NCS-GATEWAY"}, "NCS-GATEWAY": {fakeOurs}}, "not the first rule", []string{"-j NCS-GATEWAY", operator}},
		{"chain flushed", map[string][]string{"INPUT": {"-j NCS-GATEWAY"}, "NCS-GATEWAY": nil}, "got 0 rules, want 1", []string{"-j NCS-GATEWAY"}},
		{"rule added to our chain", map[string][]string{"INPUT": {"-j NCS-GATEWAY"}, "NCS-GATEWAY": {fakeOurs, "-j ACCEPT"}}, "got 2 rules, want 1", []string{"-j NCS-GATEWAY"}},
		{"our rule changed", map[string][]string{"INPUT": {"-j NCS-GATEWAY"}, "NCS-GATEWAY": {"-j ACCEPT"}}, "missing", []string{"-j NCS-GATEWAY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fake := newFakeFamily(t)
			for _, c := range []string{"FORWARD", "OUTPUT"} {
				if _, ok := tt.chains[c]; !ok {
					tt.chains[c] = nil
				}
			}
			fake.chains = tt.chains
			wantQuick := tt.wantDrift == ""
			if got := f.quickCheck(fake.save()); got != wantQuick {
				t.Errorf("quickCheck: got %v, want %v", got, wantQuick)
			}
			drift, err := f.repair(context.Background())
			if err != nil {
				t.Fatalf("repair: got %v, want nil", err)
			}
			switch {
			case tt.wantDrift == "" && drift != nil:
				t.Errorf("repair: got drift %v, want none", drift)
			case tt.wantDrift != "" && (drift == nil || !strings.Contains(drift.Error(), tt.wantDrift)):
				t.Errorf("repair: got drift %v, want one containing %q", drift, tt.wantDrift)
			}
			if tt.wantDrift == "" && len(fake.restores) != 0 {
				t.Errorf("repair with nothing to do: got %d restores, want 0", len(fake.restores))
			}
			if got := fake.chains["INPUT"]; !slices.Equal(got, tt.wantInput) {
				t.Errorf("INPUT after repair: got %q, want %q", got, tt.wantInput)
			}
			if got := fake.chains["NCS-GATEWAY"]; !slices.Equal(got, []string{fakeOurs}) {
				t.Errorf("our chain after repair: got %q, want %q", got, []string{fakeOurs})
			}
			if !f.quickCheck(fake.save()) {
				t.Errorf("quickCheck after repair: got false, want true:\n%s", fake.save())
			}
		})
	}
}

func TestIPTablesRepairFailures(t *testing.T) {
	t.Run("restore fails", func(t *testing.T) {
		f, fake := newFakeFamily(t)
		fake.restoreErr = errors.New("xtables lock held")
		_, err := f.repair(context.Background())
		if err == nil || !strings.Contains(err.Error(), "xtables lock held") {
			t.Errorf("repair: got %v, want the restore error", err)
		}
	})
	t.Run("restore changes nothing", func(t *testing.T) {
		f, fake := newFakeFamily(t)
		fake.restoreIgnored = true
		_, err := f.repair(context.Background())
		if err == nil || !strings.Contains(err.Error(), "verify ipv4 chain") {
			t.Errorf("repair: got %v, want a verify error", err)
		}
	})
}

func TestQuickCheckText(t *testing.T) {
	f, _ := newFakeFamily(t)
	good := "*filter\n:INPUT ACCEPT [0:0]\n:NCS-GATEWAY - [0:0]\n-A INPUT -j NCS-GATEWAY\n-A INPUT -j ACCEPT\n-A NCS-GATEWAY " + fakeOurs + "\nCOMMIT\n"
	tests := []struct {
		name, save string
		want       bool
	}{
		{"ours", good, true},
		{"empty", "", false},
		{"chain not declared", strings.Replace(good, ":NCS-GATEWAY - [0:0]\n", "", 1), false},
		{"jump second", strings.Replace(good, "-A INPUT -j NCS-GATEWAY\n-A INPUT -j ACCEPT\n", "-A INPUT -j ACCEPT\n-A INPUT -j NCS-GATEWAY\n", 1), false},
		{"comment differs", strings.Replace(good, "drop unless", "drop if", 1), false},
		{"other ports", strings.Replace(good, "8443,8444", "8443", 1), false},
	}
	for _, tt := range tests {
		if got := f.quickCheck([]byte(tt.save)); got != tt.want {
			t.Errorf("%s: quickCheck got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseIPSetSave(t *testing.T) {
	out := `create ncs-gateway-v4 hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1
add ncs-gateway-v4 198.51.100.10
add ncs-gateway-v4 203.0.113.0/24
create ncs-gateway-v6 hash:net family inet6 hashsize 1024 maxelem 65536
add ncs-gateway-v6 2001:db8::/64
create other hash:ip family inet hashsize 1024 maxelem 65536
add other 192.0.2.1 timeout 30
`
	sets, err := parseIPSetSave([]byte(out))
	if err != nil {
		t.Fatalf("parse: got %v, want nil", err)
	}
	if got, want := strs(sets["ncs-gateway-v4"].members), []string{"198.51.100.10/32", "203.0.113.0/24"}; !slices.Equal(got, want) {
		t.Errorf("v4 members: got %v, want %v", got, want)
	}
	if got, want := sets["ncs-gateway-v6"].kind, "hash:net family inet6"; got != want {
		t.Errorf("v6 kind: got %q, want %q", got, want)
	}
	if got := sets["other"].odd; got != "add other 192.0.2.1 timeout 30" {
		t.Errorf("other odd: got %q, want the timeout entry", got)
	}
	if _, err := parseIPSetSave([]byte("add lost 192.0.2.1\n")); err == nil {
		t.Error("entry before create: got nil, want an error")
	}
	if _, err := parseIPSetSave([]byte("create s hash:net family inet\nadd s not-an-address\n")); err == nil {
		t.Error("bad entry: got nil, want an error")
	}
}

func TestCompareSet(t *testing.T) {
	spec := ipsetSpec{live: "s4", tmp: "s4-tmp", family: "inet"}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.10/32")}
	set := func(kind, odd string, members ...string) map[string]*ipsetInfo {
		info := &ipsetInfo{kind: kind, odd: odd}
		for _, m := range members {
			p, err := parseMember(m)
			if err != nil {
				t.Fatal(err)
			}
			info.members = append(info.members, p)
		}
		return map[string]*ipsetInfo{"s4": info}
	}
	tests := []struct {
		name    string
		sets    map[string]*ipsetInfo
		wantErr string
	}{
		{"same", set("hash:net family inet", "", "198.51.100.10", "192.0.2.0/24"), ""},
		{"same, nested entry extra", set("hash:net family inet", "", "198.51.100.10", "192.0.2.0/24", "192.0.2.7"), ""},
		{"missing", map[string]*ipsetInfo{}, "ipset s4 missing"},
		{"wrong type", set("hash:ip family inet", "", "198.51.100.10", "192.0.2.0/24"), "got hash:ip family inet"},
		{"entry with options", set("hash:net family inet", "add s4 192.0.2.9 nomatch", "198.51.100.10", "192.0.2.0/24"), "entry with options"},
		{"entry missing", set("hash:net family inet", "", "192.0.2.0/24"), "got 1 entries, want 2"},
		{"entry extra", set("hash:net family inet", "", "198.51.100.10", "192.0.2.0/24", "203.0.113.1"), "got 3 entries, want 2"},
	}
	for _, tt := range tests {
		err := compareSet(tt.sets, spec, want)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: got %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
}
