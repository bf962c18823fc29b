package firewall

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
	"go.uber.org/zap"
)

// benchSizes are the allowlist sizes BenchmarkApply measures.
var benchSizes = []int{10, 100, 1_000, 10_000}

// benchLists returns two disjoint lists of n IPv4 addresses, so that
// alternating between them replaces every entry on each apply.
func benchLists(n int) [2][]netip.Prefix {
	var lists [2][]netip.Prefix
	for k := range lists {
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, byte(k), byte(i >> 8), byte(i)})
			lists[k] = append(lists[k], netip.PrefixFrom(a, 32))
		}
	}
	return lists
}

// BenchmarkApply measures one Apply per backend (replacing all n entries
// by n others, read-back included) beside the kernel tool loading the same
// lists the way it would on its own:
//
//	nftables       this package's nftables backend
//	nft-f          "nft -f" of the same table (add; delete; table {...})
//	iptables       this package's iptables backend
//	ipset-restore  "ipset restore" of the same sets (fill tmp, swap, destroy)
//
// Each runs inside its own network namespace. Run it with:
//
//	go test -run '^$' -bench BenchmarkApply ./pkg/firewall/
func BenchmarkApply(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireTools(b, toolsFor(BackendIPTables)...)
	testenv.RequireTools(b, "nft")
	for _, bench := range []struct {
		name string
		// prep returns the step that applies lists[i%2].
		prep func(lists [2][]netip.Prefix) (func(i int) error, error)
	}{
		{"nftables", prepBackend(BackendNFTables)},
		{"nft-f", prepNFT},
		{"iptables", prepBackend(BackendIPTables)},
		{"ipset-restore", prepIPSet},
	} {
		b.Run(bench.name, func(b *testing.B) {
			for _, n := range benchSizes {
				b.Run(strconv.Itoa(n), func(b *testing.B) {
					ns := testenv.NewNetNS(b)
					lists := benchLists(n)
					err := ns.Run(func() error {
						if err := testenv.CheckNotHostNetNS(); err != nil {
							return err
						}
						step, err := bench.prep(lists)
						if err != nil {
							return err
						}
						if err := step(0); err != nil { // install, untimed
							return err
						}
						i := 1
						for b.Loop() {
							if err := step(i); err != nil {
								return err
							}
							i++
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				})
			}
		})
	}
}

func prepBackend(backend string) func([2][]netip.Prefix) (func(int) error, error) {
	return func(lists [2][]netip.Prefix) (func(int) error, error) {
		fw, err := New(Config{Backend: backend, Ports: []uint16{8443}, Name: "bench"}, zap.NewNop())
		if err != nil {
			return nil, err
		}
		return func(i int) error { return fw.Apply(context.Background(), lists[i%2]) }, nil
	}
}

// prepNFT renders both lists as complete nft scripts, the way an operator
// would reload a table of their own with "nft -f".
func prepNFT(lists [2][]netip.Prefix) (func(int) error, error) {
	var scripts [2][]byte
	for k, list := range lists {
		var elems []string
		for _, p := range list {
			elems = append(elems, p.Addr().String())
		}
		scripts[k] = fmt.Appendf(nil, `table inet bench
delete table inet bench
table inet bench {
	set ports { type inet_service; elements = { 8443 } }
	set allow4 { type ipv4_addr; flags interval; elements = { %s } }
	set allow6 { type ipv6_addr; flags interval; }
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport @ports ip saddr != @allow4 drop
		tcp dport @ports ip6 saddr != @allow6 drop
	}
}
`, strings.Join(elems, ", "))
	}
	return func(i int) error { return execTool(scripts[i%2], "nft", "-f", "-") }, nil
}

// prepIPSet renders both lists as the ipset restore input the iptables
// backend itself sends (fill a temporary set, swap, destroy).
func prepIPSet(lists [2][]netip.Prefix) (func(int) error, error) {
	specs := []ipsetSpec{{live: "bench-v4", tmp: "bench-v4-tmp", family: "inet"}}
	var scripts [2][]byte
	for k, list := range lists {
		scripts[k] = ipsetScript(specs, [][]netip.Prefix{list}, map[string]bool{"bench-v4": true})
	}
	first := ipsetScript(specs, [][]netip.Prefix{lists[0]}, nil)
	return func(i int) error {
		if i == 0 {
			return execTool(first, "ipset", "restore")
		}
		return execTool(scripts[i%2], "ipset", "restore")
	}, nil
}

// execTool runs a kernel tool with stdin from the calling thread.
func execTool(stdin []byte, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("run %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}
