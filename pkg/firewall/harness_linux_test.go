package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
	"go.uber.org/zap/zaptest"
)

// Ports of the kernel tests: two guarded by the firewall, one left alone.
const (
	portGuarded  = 8443
	portGuarded2 = 8444
	portOpen     = 9000
)

// Timeouts of a probe. An allowed connect over the veth pair completes in
// well under a millisecond; a dropped SYN is only retransmitted after 1 s,
// so a blocked probe waiting half a second has seen its SYN go unanswered.
const (
	openTimeout    = 2 * time.Second
	blockedTimeout = 500 * time.Millisecond
)

// harness is one backend under test in the server namespace of a topology,
// with listeners on every test port.
//
// How the backend reaches the namespace: every call runs through
// NetNS.Run, on a goroutine locked to a thread that joined the server
// namespace (and is discarded afterwards). The nftables backend opens its
// netlink sockets on that thread, and the iptables backend forks iptables,
// ipset and their restore/save tools from it, so both act in the namespace
// exactly as the daemon does under "ip netns exec". The premise is checked
// three ways: testenv's own test reads the namespace of a forked child,
// every call first refuses to run in the namespace the test started in,
// and after the test that namespace is checked for any trace of our names.
type harness struct {
	tp   *testenv.Topology
	fw   Firewall
	name string
}

func newHarness(t *testing.T, backend string) *harness {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTools(t, toolsFor(backend)...)
	name := fmt.Sprintf("ncsgw_test%d", os.Getpid())
	fw, err := New(Config{Backend: backend, Ports: []uint16{portGuarded, portGuarded2}, Name: name}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: got %v, want nil", err)
	}
	h := &harness{tp: testenv.NewTopology(t), fw: fw, name: name}
	for _, p := range []uint16{portGuarded, portGuarded2, portOpen} {
		h.tp.Server.ListenTCP(t, p)
	}
	t.Cleanup(func() { assertHostClean(t, name) })
	return h
}

// toolsFor lists the binaries a backend's kernel tests need.
func toolsFor(backend string) []string {
	if backend == BackendIPTables {
		return []string{"ip", "iptables", "ip6tables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save", "ipset"}
	}
	return []string{"ip", "nft"}
}

// inServer runs fn in the server namespace after checking it really is not
// the namespace the test started in.
func (h *harness) inServer(fn func() error) error {
	return h.tp.Server.Run(func() error {
		if err := testenv.CheckNotHostNetNS(); err != nil {
			return err
		}
		return fn()
	})
}

func (h *harness) apply(t *testing.T, allow []netip.Prefix) {
	t.Helper()
	if err := h.inServer(func() error { return h.fw.Apply(context.Background(), allow) }); err != nil {
		t.Fatalf("Apply: got %v, want nil", err)
	}
}

func (h *harness) reconcile(t *testing.T) bool {
	t.Helper()
	var repaired bool
	err := h.inServer(func() error {
		var err error
		repaired, err = h.fw.Reconcile(context.Background())
		return err
	})
	if err != nil {
		t.Fatalf("Reconcile: got %v, want nil", err)
	}
	return repaired
}

func (h *harness) remove(t *testing.T) {
	t.Helper()
	if err := h.inServer(func() error { return h.fw.Remove(context.Background()) }); err != nil {
		t.Fatalf("Remove: got %v, want nil", err)
	}
}

// probe is one TCP connect from the client namespace and its expected fate.
type probe struct {
	name string
	src  netip.Addr
	port uint16
	open bool
}

// expect runs all probes at once (each on its own thread in the client
// namespace) and reports every one whose fate differs.
func (h *harness) expect(t *testing.T, probes []probe) {
	t.Helper()
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			dst := testenv.ServerV4
			if p.src.Is6() {
				dst = testenv.ServerV6
			}
			timeout := blockedTimeout
			if p.open {
				timeout = openTimeout
			}
			errs[i] = h.tp.Client.DialTCP(p.src, netip.AddrPortFrom(dst, p.port), timeout)
		})
	}
	wg.Wait()
	for i, p := range probes {
		err := errs[i]
		switch {
		case p.open && err != nil:
			t.Errorf("%s: %s to port %d: got %v, want connected", p.name, p.src, p.port, err)
		case !p.open && err == nil:
			t.Errorf("%s: %s to port %d: got connected, want dropped", p.name, p.src, p.port)
		case !p.open && !isTimeout(err):
			// A refusal means a reply came back: not what a drop does.
			t.Errorf("%s: %s to port %d: got %v, want a timeout", p.name, p.src, p.port, err)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// prefixes parses prefixes and single addresses for test tables.
func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, hostPrefix(a))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// assertHostClean reads (never writes) the namespace the test started in
// and fails if anything named after name is there: it would mean a test
// reached the host's firewall. A listing that fails, or a tool that is
// missing in strict mode, fails too: an error message holds no trace of
// anything, so it would pass the check without having looked.
func assertHostClean(t *testing.T, name string) {
	t.Helper()
	cfg := Config{Name: name}
	checks := []struct {
		tool string
		args []string
		bad  string
	}{
		{"nft", []string{"list", "tables"}, " " + name + "\n"},
		{"ipset", []string{"list", "-n"}, cfg.ipsetName("v")},
		{"iptables-save", []string{"-t", "filter"}, cfg.iptablesChain()},
		{"ip6tables-save", []string{"-t", "filter"}, cfg.iptablesChain()},
	}
	for _, c := range checks {
		if _, err := exec.LookPath(c.tool); err != nil {
			if testenv.Strict() {
				t.Errorf("host namespace: cannot check with %s: %v", c.tool, err)
			} else {
				t.Logf("host namespace: not checked with %s: %v", c.tool, err)
			}
			continue
		}
		out, err := exec.Command(c.tool, c.args...).CombinedOutput()
		if err != nil {
			t.Errorf("host namespace: %s %s: %v: %s; want a listing to check", c.tool, strings.Join(c.args, " "), err, strings.TrimSpace(string(out)))
			continue
		}
		if strings.Contains(string(out)+"\n", c.bad) {
			t.Errorf("host namespace: %s %s shows %q, want no trace of the test", c.tool, strings.Join(c.args, " "), c.bad)
		}
	}
}
