package firewall

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// watchWait bounds every wait for Watch to call changed. A flush is seen
// within milliseconds (nftables events) or a second (the iptables poll);
// the bound only keeps a broken Watch from hanging the test.
const watchWait = 15 * time.Second

// watcher runs a backend's Watch in a namespace and turns its changed
// calls into a channel, coalesced like the daemon's.
type watcher struct {
	changed chan struct{}
	stop    func() error
}

func startWatch(t testing.TB, ns *testenv.NetNS, fw Firewall) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{changed: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- ns.Run(func() error {
			if err := testenv.CheckNotHostNetNS(); err != nil {
				return err
			}
			return fw.Watch(ctx, func() {
				select {
				case w.changed <- struct{}{}:
				default:
				}
			})
		})
	}()
	w.stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(watchWait):
			return fmt.Errorf("Watch still running %s after its context ended", watchWait)
		}
	}
	t.Cleanup(func() {
		if err := w.stop(); err != nil {
			t.Errorf("Watch: got %v, want nil", err)
		}
	})
	// The first call says the monitor is listening: nothing that happens
	// after it can go unseen.
	w.wait(t)
	return w
}

// drain forgets calls already made.
func (w *watcher) drain() {
	select {
	case <-w.changed:
	default:
	}
}

// wait waits, bounded, for the next call.
func (w *watcher) wait(t testing.TB) {
	t.Helper()
	select {
	case <-w.changed:
	case <-time.After(watchWait):
		t.Fatalf("Watch: no change reported within %s", watchWait)
	}
}

// flushCases are the external flushes of issue 8: everything goes, or a
// service reloads its file (flush and load in one go).
func flushCases(t testing.TB, backend, name string) []driftCase {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	port := strconv.Itoa(portOpen)
	if backend == BackendNFTables {
		conf := write("nftables.conf", "flush ruleset\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport "+port+" accept\n\t}\n}\n")
		return []driftCase{
			{name: "nft flush ruleset", cmds: [][]string{{"nft", "flush", "ruleset"}}},
			{name: "nftables.service reload", cmds: [][]string{{"nft", "-f", conf}}},
		}
	}
	rules := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport " + port + " -j ACCEPT\nCOMMIT\n"
	v4, v6 := write("rules.v4", rules), write("rules.v6", rules)
	return []driftCase{
		{name: "iptables -F", cmds: [][]string{{"iptables", "-F"}, {"ip6tables", "-F"}}},
		{name: "iptables -F INPUT", cmds: [][]string{{"iptables", "-F", "INPUT"}}},
		{name: "netfilter-persistent reload", cmds: [][]string{{"iptables-restore", v4}, {"ip6tables-restore", v6}}},
		{name: "nft flush ruleset", cmds: [][]string{{"nft", "flush", "ruleset"}}},
		{name: "ipset flushed", cmds: [][]string{{"ipset", "flush", Config{Name: name}.ipsetName("v4")}}},
	}
}

// TestWatchRepairsFlush flushes the ruleset under each real backend while
// Watch runs, and answers each reported change with Reconcile, as the
// daemon does: every flush must be reported, repaired, and leave only the
// allowlist through again.
func TestWatchRepairsFlush(t *testing.T) {
	for _, backend := range []string{BackendNFTables, BackendIPTables} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testWatchRepairsFlush(t, backend, flushCases)
		})
	}
}

// TestWatchRepairsFlushLegacy is TestWatchRepairsFlush for the iptables
// backend driving iptables-legacy, which sends no events: the poll alone
// must find each flush. PATH points iptables and friends at the legacy
// tools, the way update-alternatives does.
func TestWatchRepairsFlushLegacy(t *testing.T) {
	useLegacyIPTables(t)
	testWatchRepairsFlush(t, BackendIPTables, func(t testing.TB, backend, name string) []driftCase {
		cases := flushCases(t, backend, name)
		return slices.DeleteFunc(cases, func(c driftCase) bool { return c.cmds[0][0] == "nft" })
	})
}

// testWatchRepairsFlush runs each flush case against one backend with
// Watch running and a Reconcile for each reported change.
func testWatchRepairsFlush(t *testing.T, backend string, cases func(t testing.TB, backend, name string) []driftCase) {
	h := newHarness(t, backend)
	h.apply(t, prefixes(t, "198.51.100.10", "2001:db8::10"))
	w := startWatch(t, h.tp.Server, h.fw)
	c4, c6 := h.tp.ClientV4, h.tp.ClientV6
	for _, tc := range cases(t, backend, h.name) {
		t.Run(tc.name, func(t *testing.T) {
			w.drain()
			for _, cmd := range tc.cmds {
				h.tp.Server.MustExec(t, cmd[0], cmd[1:]...)
			}
			w.wait(t)
			if !h.reconcile(t) {
				t.Errorf("Reconcile after the reported change: got not repaired, want repaired")
			}
			h.expect(t, []probe{
				{"listed v4", c4[0], portGuarded, true},
				{"unlisted v4", c4[1], portGuarded, false},
				{"listed v6", c6[0], portGuarded, true},
				{"unlisted v6", c6[1], portGuarded, false},
			})
		})
	}
}
