package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// testReapplyWithoutGap alternates between two lists that both hold the
// allowed clients, 500 times, while those clients connect in a tight loop,
// unlisted clients keep sending SYNs, and Reconcile runs alongside (it must
// find nothing to repair).
//
// The verdict comes from a witness table in the server namespace: it counts
// the test clients' SYNs to the guarded port in a chain before ours
// (priority -300) and in one after ours (priority 300). For allowed
// clients both counts must be equal (we dropped none); for unlisted ones
// the later count must be zero (we let none through). Counting at the hook
// measures the firewall alone: a SYN resent for an unrelated TCP reason
// shows up in both counts. Every allowed connect must also succeed.
func (h *harness) testReapplyWithoutGap(t *testing.T) {
	const applies = 500
	allowed := []netip.Addr{h.tp.ClientV4[0], h.tp.ClientV6[0]}
	unlisted := []netip.Addr{h.tp.ClientV4[1], h.tp.ClientV6[1]}
	var lists [2][]netip.Prefix
	for i := range lists {
		for _, a := range allowed {
			lists[i] = append(lists[i], hostPrefix(a))
		}
		for j := range 200 {
			lists[i] = append(lists[i], netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), byte(j), 1}), 32))
		}
	}
	lists[1] = append(lists[1], netip.MustParsePrefix("203.0.113.0/25"), netip.MustParsePrefix("2001:db8:1::/48"))

	h.apply(t, lists[0])
	srcs := slices.Concat(allowed, unlisted)
	w := newWitness(t, h.tp.Server, portGuarded, srcs)

	var stop atomic.Bool
	type tally struct {
		connects, failures int64
		firstErr           error
	}
	results := make([]tally, len(allowed)+len(unlisted))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wantOpen := i < len(allowed)
		dst := testenv.ServerV4
		if src.Is6() {
			dst = testenv.ServerV6
		}
		to := netip.AddrPortFrom(dst, portGuarded)
		wg.Go(func() {
			err := h.tp.Client.Run(func() error {
				// Bounded in count and time whatever happens to stop.
				deadline := time.Now().Add(2 * time.Minute)
				for n := 0; n < 1_000_000 && !stop.Load() && time.Now().Before(deadline); n++ {
					timeout := 5 * time.Second
					if !wantOpen {
						timeout = 10 * time.Millisecond
					}
					err := testenv.DialFrom(src, to, timeout)
					results[i].connects++
					if wantOpen && err != nil {
						results[i].failures++
						if results[i].firstErr == nil {
							results[i].firstErr = err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("client loop from %s: %v", src, err)
			}
		})
	}

	var reconciles, repairs atomic.Int64
	reconcileDone := make(chan error, 1)
	go func() {
		reconcileDone <- h.inServer(func() error {
			for !stop.Load() {
				repaired, err := h.fw.Reconcile(context.Background())
				if err != nil {
					return err
				}
				reconciles.Add(1)
				if repaired {
					repairs.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
			return nil
		})
	}()

	start := time.Now()
	err := h.inServer(func() error {
		for i := range applies {
			if err := h.fw.Apply(context.Background(), lists[i%2]); err != nil {
				return fmt.Errorf("apply %d: %w", i, err)
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if rerr := <-reconcileDone; rerr != nil {
		t.Errorf("concurrent Reconcile: got %v, want nil", rerr)
	}
	if err != nil {
		t.Fatalf("Apply loop: got %v, want nil", err)
	}

	counts := w.read(t)
	var parts []string
	for i, r := range results {
		src := srcs[i]
		c := counts[src]
		if i < len(allowed) {
			parts = append(parts, fmt.Sprintf("%s: %d connects, %d failed, %d SYNs dropped", src, r.connects, r.failures, c.before-c.after))
			if r.failures != 0 || r.connects == 0 {
				t.Errorf("allowed client %s: got %d failed connects of %d (first: %v), want 0 of > 0", src, r.failures, r.connects, r.firstErr)
			}
			if c.before != c.after || c.before == 0 {
				t.Errorf("allowed client %s: got %d SYNs before our hook and %d after, want equal and > 0", src, c.before, c.after)
			}
		} else {
			parts = append(parts, fmt.Sprintf("%s: %d SYNs, %d let through", src, c.before, c.after))
			if c.after != 0 || c.before == 0 {
				t.Errorf("unlisted client %s: got %d SYNs before our hook and %d after, want > 0 and 0", src, c.before, c.after)
			}
		}
	}
	if n := repairs.Load(); n != 0 {
		t.Errorf("concurrent Reconcile: got %d repairs in %d calls, want 0", n, reconciles.Load())
	}
	t.Logf("%s: %d applies in %s (%s/apply), %d concurrent reconciles; %s",
		h.fw.Backend(), applies, elapsed.Round(time.Millisecond), (elapsed / applies).Round(10*time.Microsecond), reconciles.Load(), strings.Join(parts, "; "))
}

// witness is a foreign nftables table that counts SYNs from given sources
// to a port before (priority -300) and after (priority 300) our hook.
type witness struct {
	ns   *testenv.NetNS
	srcs []netip.Addr
}

// synCount is one source's SYN count on either side of our hook.
type synCount struct{ before, after int64 }

func newWitness(t *testing.T, ns *testenv.NetNS, port uint16, srcs []netip.Addr) *witness {
	t.Helper()
	ns.MustExec(t, "nft", "add table inet witness")
	for _, c := range []struct{ name, prio string }{{"before", "-300"}, {"after", "300"}} {
		ns.MustExec(t, "nft", fmt.Sprintf("add chain inet witness %s { type filter hook input priority %s; policy accept; }", c.name, c.prio))
		for i, src := range srcs {
			fam := "ip"
			if src.Is6() {
				fam = "ip6"
			}
			ns.MustExec(t, "nft", fmt.Sprintf(`add rule inet witness %s %s saddr %s tcp dport %d tcp flags syn counter comment "%s %d"`, c.name, fam, src, port, c.name, i))
		}
	}
	t.Cleanup(func() { _, _ = ns.Exec("nft", "delete", "table", "inet", "witness") })
	return &witness{ns: ns, srcs: srcs}
}

var witnessRule = regexp.MustCompile(`counter packets (\d+) bytes \d+ comment "(before|after) (\d+)"`)

// read returns the counts per source.
func (w *witness) read(t *testing.T) map[netip.Addr]synCount {
	t.Helper()
	out := w.ns.MustExec(t, "nft", "list", "table", "inet", "witness")
	counts := make(map[netip.Addr]synCount)
	found := 0
	for _, m := range witnessRule.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		i, _ := strconv.Atoi(m[3])
		if i >= len(w.srcs) {
			continue
		}
		c := counts[w.srcs[i]]
		if m[2] == "before" {
			c.before = n
		} else {
			c.after = n
		}
		counts[w.srcs[i]] = c
		found++
	}
	if found != 2*len(w.srcs) {
		t.Fatalf("witness counters: got %d, want %d in\n%s", found, 2*len(w.srcs), out)
	}
	return counts
}
