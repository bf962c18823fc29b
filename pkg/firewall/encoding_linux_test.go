package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
)

// elemString renders elements like "nft --debug=netlink": key, and "end"
// for interval ends.
func elemString(es []nftables.SetElement) []string {
	var out []string
	for _, e := range es {
		a, _ := netip.AddrFromSlice(e.Key)
		s := a.String()
		if e.IntervalEnd {
			s += " end"
		}
		out = append(out, s)
	}
	return out
}

// TestIntervalElements pins the encoding to what nft itself sends for the
// same elements (checked with "nft --debug=netlink").
func TestIntervalElements(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"empty", nil, nil},
		{"one address", []string{"198.51.100.10/32"}, []string{"0.0.0.0 end", "198.51.100.10", "198.51.100.11 end"}},
		{"CIDR", []string{"203.0.113.0/24"}, []string{"0.0.0.0 end", "203.0.113.0", "203.0.114.0 end"}},
		{"adjacent stay two intervals", []string{"10.0.0.1/32", "10.0.0.2/32"}, []string{"0.0.0.0 end", "10.0.0.1", "10.0.0.2 end", "10.0.0.2", "10.0.0.3 end"}},
		{"starts at zero", []string{"0.0.0.0/8"}, []string{"0.0.0.0", "1.0.0.0 end"}},
		{"runs to the top", []string{"255.255.255.255/32"}, []string{"0.0.0.0 end", "255.255.255.255"}},
		{"ipv6", []string{"2001:db8::10/128"}, []string{":: end", "2001:db8::10", "2001:db8::11 end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []netip.Prefix
			for _, s := range tt.in {
				ps = append(ps, netip.MustParsePrefix(s))
			}
			if got := elemString(intervalElements(ps)); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiffElements(t *testing.T) {
	enc := func(ss ...string) []nftables.SetElement {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return intervalElements(ps)
	}
	tests := []struct {
		name            string
		cur, want       []nftables.SetElement
		wantAdd, wantGo []string
	}{
		{"same", enc("10.0.0.1/32"), enc("10.0.0.1/32"), nil, nil},
		{"one more", enc("10.0.0.1/32"), enc("10.0.0.1/32", "10.0.0.9/32"), []string{"10.0.0.9", "10.0.0.10 end"}, nil},
		{"neighbour swapped, shared key kept apart", enc("10.0.0.1/32"), enc("10.0.0.2/32"), []string{"10.0.0.2", "10.0.0.3 end"}, []string{"10.0.0.1", "10.0.0.2 end"}},
		{"to empty", enc("10.0.0.1/32"), nil, nil, []string{"0.0.0.0 end", "10.0.0.1", "10.0.0.2 end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			added, gone := diffElements(tt.cur, tt.want)
			if got := elemString(added); !slices.Equal(got, tt.wantAdd) {
				t.Errorf("added: got %v, want %v", got, tt.wantAdd)
			}
			if got := elemString(gone); !slices.Equal(got, tt.wantGo) {
				t.Errorf("gone: got %v, want %v", got, tt.wantGo)
			}
		})
	}
}

// TestChunkElements encodes chunks through google/nftables (with its test
// dialer, no kernel) and checks that every element-list message stays
// below the 64 KiB a netlink attribute can hold, for both key sizes.
func TestChunkElements(t *testing.T) {
	for _, keyLen := range []uint32{4, 16} {
		t.Run(fmt.Sprintf("key %d bytes", keyLen), func(t *testing.T) {
			elems := make([]nftables.SetElement, 20_001)
			for i := range elems {
				elems[i] = nftables.SetElement{Key: make([]byte, keyLen), IntervalEnd: i%2 == 1}
			}
			var sizes []int
			c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
				for _, m := range req {
					sizes = append(sizes, len(m.Data))
				}
				return req, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			set := &nftables.Set{Name: "s", Table: &nftables.Table{Name: "t", Family: nftables.TableFamilyINet}}
			chunks := chunkElements(elems, keyLen)
			total := 0
			for _, chunk := range chunks {
				total += len(chunk)
				if err := c.SetAddElements(set, chunk); err != nil {
					t.Fatalf("SetAddElements: got %v, want nil", err)
				}
			}
			if err := c.Flush(); err != nil {
				t.Fatalf("Flush: got %v, want nil", err)
			}
			if total != len(elems) {
				t.Errorf("elements over all chunks: got %d, want %d", total, len(elems))
			}
			if len(sizes) != len(chunks)+2 { // + batch begin and end
				t.Errorf("messages: got %d, want %d", len(sizes), len(chunks)+2)
			}
			for i, n := range sizes {
				if n > 65535 {
					t.Errorf("message %d: got %d bytes, want <= 65535", i, n)
				}
			}
		})
	}
}

func TestIPSetScript(t *testing.T) {
	specs := []ipsetSpec{
		{live: "gw-v4", tmp: "gw-v4-tmp", family: "inet"},
		{live: "gw-v6", tmp: "gw-v6-tmp", family: "inet6"},
	}
	want := [][]netip.Prefix{
		{netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("203.0.113.0/24")},
		nil,
	}
	tests := []struct {
		name   string
		exists map[string]bool
		want   string
	}{
		{
			name:   "first apply renames",
			exists: map[string]bool{},
			want: `create gw-v4-tmp hash:net family inet hashsize 1024 maxelem 65536
add gw-v4-tmp 198.51.100.1/32
add gw-v4-tmp 203.0.113.0/24
rename gw-v4-tmp gw-v4
create gw-v6-tmp hash:net family inet6 hashsize 1024 maxelem 65536
rename gw-v6-tmp gw-v6
`,
		},
		{
			name:   "later applies swap, leftover destroyed",
			exists: map[string]bool{"gw-v4": true, "gw-v6": true, "gw-v6-tmp": true},
			want: `create gw-v4-tmp hash:net family inet hashsize 1024 maxelem 65536
add gw-v4-tmp 198.51.100.1/32
add gw-v4-tmp 203.0.113.0/24
swap gw-v4-tmp gw-v4
destroy gw-v4-tmp
destroy gw-v6-tmp
create gw-v6-tmp hash:net family inet6 hashsize 1024 maxelem 65536
swap gw-v6-tmp gw-v6
destroy gw-v6-tmp
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(ipsetScript(specs, want, tt.exists)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestIPSetScriptSizes(t *testing.T) {
	spec := []ipsetSpec{{live: "s", tmp: "t", family: "inet"}}
	list := make([]netip.Prefix, 100_000)
	for i := range list {
		list[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	first, _, _ := strings.Cut(string(ipsetScript(spec, [][]netip.Prefix{list}, nil)), "\n")
	if want := "create t hash:net family inet hashsize 131072 maxelem 100000"; first != want {
		t.Errorf("got %q, want %q", first, want)
	}
}

func TestParseMember(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"198.51.100.1", "198.51.100.1/32", false},
		{"203.0.113.0/24", "203.0.113.0/24", false},
		{"2001:db8::1", "2001:db8::1/128", false},
		{"2001:db8::/32", "2001:db8::/32", false},
		{"bogus", "", true},
	}
	for _, tt := range tests {
		got, err := parseMember(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got.String() != tt.want) {
			t.Errorf("parseMember(%q): got %v, %v, want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRestoreLine(t *testing.T) {
	got := restoreLine([]string{"-m", "comment", "--comment", "gw drop unless in allowlist", "-j", "DROP"})
	if want := `-m comment --comment "gw drop unless in allowlist" -j DROP`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
