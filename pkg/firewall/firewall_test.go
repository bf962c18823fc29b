package firewall

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings, all of which the error must hold
	}{
		{"nftables", Config{Backend: "nftables", Ports: []uint16{8443}}, nil},
		{"iptables with custom name", Config{Backend: "iptables", Ports: []uint16{8443, 9443}, Name: "gw2"}, nil},
		{"none needs no ports", Config{Backend: "none"}, nil},
		{"unknown backend", Config{Backend: "pf", Ports: []uint16{8443}}, []string{`firewall.backend: "pf"`}},
		{"empty backend", Config{Ports: []uint16{8443}}, []string{`firewall.backend: ""`}},
		{"no ports", Config{Backend: "nftables"}, []string{"firewall.ports: list at least one"}},
		{"port 0", Config{Backend: "iptables", Ports: []uint16{0, 8443}}, []string{"firewall.ports[0]: 0 is not a port"}},
		{"name with a dash", Config{Backend: "none", Name: "ncs-gateway"}, []string{`firewall.name: "ncs-gateway"`}},
		{"name too long", Config{Backend: "none", Name: "abcdefghijklmnopqrstu"}, []string{"firewall.name"}},
		{"every problem at once", Config{Backend: "x", Name: "Bad"}, []string{"firewall.backend", "firewall.name", "firewall.ports"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS != "linux" && tt.cfg.Backend != BackendNone && tt.wantErr == nil {
				t.Skip("kernel backends are Linux-only")
			}
			fw, err := New(tt.cfg, zap.NewNop())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: got %v, want nil", err)
				}
				if got := fw.Backend(); got != tt.cfg.Backend {
					t.Errorf("Backend: got %q, want %q", got, tt.cfg.Backend)
				}
				return
			}
			if err == nil {
				t.Fatalf("New: got nil error, want one mentioning %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New: got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

// TestNewRunsNothing shows New works without any tool on PATH: it must be
// usable on configuration-check paths that never touch the kernel.
func TestNewRunsNothing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("kernel backends are Linux-only")
	}
	t.Setenv("PATH", "")
	for _, backend := range []string{BackendNFTables, BackendIPTables, BackendNone} {
		if _, err := New(Config{Backend: backend, Ports: []uint16{8443}}, nil); err != nil {
			t.Errorf("New(%s) with empty PATH: got %v, want nil", backend, err)
		}
	}
}

func TestDerivedNames(t *testing.T) {
	tests := []struct {
		name                          string
		wantChain, wantSet4, wantSet6 string
	}{
		{DefaultName, "NCS-GATEWAY", "ncs-gateway-v4", "ncs-gateway-v6"},
		{"gw_test_1", "GW-TEST-1", "gw-test-1-v4", "gw-test-1-v6"},
	}
	for _, tt := range tests {
		c := Config{Name: tt.name}
		if got := c.iptablesChain(); got != tt.wantChain {
			t.Errorf("iptablesChain(%q): got %q, want %q", tt.name, got, tt.wantChain)
		}
		if got := c.ipsetName("v4"); got != tt.wantSet4 {
			t.Errorf("ipsetName(%q, v4): got %q, want %q", tt.name, got, tt.wantSet4)
		}
		if got := c.ipsetName("v6"); got != tt.wantSet6 {
			t.Errorf("ipsetName(%q, v6): got %q, want %q", tt.name, got, tt.wantSet6)
		}
	}
	// The longest allowed name must still fit ipset (31) and iptables (28).
	long := Config{Name: strings.Repeat("a", 20)}
	if n := len(long.ipsetName("v6") + "-tmp"); n > 31 {
		t.Errorf("longest temporary ipset name: got %d bytes, want <= 31", n)
	}
	if n := len(long.iptablesChain()); n > 28 {
		t.Errorf("longest chain name: got %d bytes, want <= 28", n)
	}
}

func TestNewAllowlist(t *testing.T) {
	tests := []struct {
		name   string
		in     []string
		wantV4 []string
		wantV6 []string
	}{
		{"empty", nil, nil, nil},
		{"sorted and deduplicated", []string{"203.0.113.9/32", "198.51.100.1/32", "203.0.113.9/32"}, []string{"198.51.100.1/32", "203.0.113.9/32"}, nil},
		{"host bits masked", []string{"198.51.100.77/24"}, []string{"198.51.100.0/24"}, nil},
		{"entries inside a CIDR dropped", []string{"198.51.100.7/32", "198.51.100.0/24", "198.51.100.128/25"}, []string{"198.51.100.0/24"}, nil},
		{"adjacent entries kept apart", []string{"198.51.100.1/32", "198.51.100.0/32"}, []string{"198.51.100.0/32", "198.51.100.1/32"}, nil},
		{"IPv4-mapped IPv6 is IPv4", []string{"::ffff:198.51.100.1/128", "::ffff:203.0.113.0/120"}, []string{"198.51.100.1/32", "203.0.113.0/24"}, nil},
		{"families split", []string{"2001:db8::1/128", "198.51.100.1/32", "2001:db8::/64"}, []string{"198.51.100.1/32"}, []string{"2001:db8::/64"}},
		{"everything", []string{"0.0.0.0/0", "198.51.100.1/32"}, []string{"0.0.0.0/0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []netip.Prefix
			for _, s := range tt.in {
				in = append(in, netip.MustParsePrefix(s))
			}
			l, err := newAllowlist(in)
			if err != nil {
				t.Fatalf("newAllowlist: got %v, want nil", err)
			}
			if got := strs(l.v4); !slices.Equal(got, tt.wantV4) {
				t.Errorf("v4: got %v, want %v", got, tt.wantV4)
			}
			if got := strs(l.v6); !slices.Equal(got, tt.wantV6) {
				t.Errorf("v6: got %v, want %v", got, tt.wantV6)
			}
		})
	}
	if _, err := newAllowlist([]netip.Prefix{{}}); err == nil {
		t.Errorf("newAllowlist(zero prefix): got nil error, want one")
	}
}

func TestAllowlistDiff(t *testing.T) {
	a, _ := newAllowlist([]netip.Prefix{netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8::1/128")})
	b, _ := newAllowlist([]netip.Prefix{netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("198.51.100.2/32"), netip.MustParsePrefix("203.0.113.0/24")})
	if added, removed := a.diff(b); added != 2 || removed != 1 {
		t.Errorf("diff: got added %d removed %d, want added 2 removed 1", added, removed)
	}
	if added, removed := a.diff(a); added != 0 || removed != 0 {
		t.Errorf("diff with itself: got added %d removed %d, want 0 and 0", added, removed)
	}
}

func TestSplitZero(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"0.0.0.0/0", []string{"0.0.0.0/1", "128.0.0.0/1"}},
		{"::/0", []string{"::/1", "8000::/1"}},
		{"198.51.100.0/24", []string{"198.51.100.0/24"}},
	}
	for _, tt := range tests {
		if got := strs(splitZero([]netip.Prefix{netip.MustParsePrefix(tt.in)})); !slices.Equal(got, tt.want) {
			t.Errorf("splitZero(%s): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNoneBackendLogsPlan(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	fw, err := New(Config{Backend: BackendNone, Ports: []uint16{8443}}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		allow                    []string
		wantV4, wantAdd, wantDel int64
	}{
		{[]string{"198.51.100.1/32", "198.51.100.2/32"}, 2, 2, 0},
		{[]string{"198.51.100.2/32", "203.0.113.0/24", "2001:db8::1/128"}, 2, 2, 1},
	}
	for i, st := range steps {
		var allow []netip.Prefix
		for _, s := range st.allow {
			allow = append(allow, netip.MustParsePrefix(s))
		}
		if err := fw.Apply(ctx, allow); err != nil {
			t.Fatalf("Apply %d: got %v, want nil", i, err)
		}
		entries := logs.TakeAll()
		if len(entries) != 1 {
			t.Fatalf("Apply %d: got %d log entries, want 1", i, len(entries))
		}
		// New names the logger; callers pass theirs unnamed, so the name
		// appears once.
		if got := entries[0].LoggerName; got != "firewall" {
			t.Errorf("Apply %d: logger name got %q, want %q", i, got, "firewall")
		}
		f := entries[0].ContextMap()
		for key, want := range map[string]int64{"ipv4_count": st.wantV4, "added_count": st.wantAdd, "removed_count": st.wantDel} {
			if got := f[key]; got != want {
				t.Errorf("Apply %d: %s got %v, want %d", i, key, got, want)
			}
		}
	}
	if repaired, err := fw.Reconcile(ctx); repaired || err != nil {
		t.Errorf("Reconcile: got %v, %v, want false, nil", repaired, err)
	}
	if err := fw.Remove(ctx); err != nil {
		t.Errorf("Remove: got %v, want nil", err)
	}
}

func strs(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
