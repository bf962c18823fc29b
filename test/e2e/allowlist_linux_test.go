package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// allowlistRig is a gateway running inside the server namespace of a
// two-namespace topology, with the fake Agora API listening in that same
// namespace, and clients at documentation addresses in the other.
type allowlistRig struct {
	t   *testing.T
	tp  *testenv.Topology
	api *ncsiptest.Handler
	g   *gateway
}

func newAllowlistRig(t *testing.T, backend, schedule string, stateDir string) *allowlistRig {
	t.Helper()
	testenv.RequireRoot(t)
	tools := map[string][]string{"nftables": {"ip", "nft"}, "iptables": {"ip", "iptables", "ip6tables", "ipset"}}
	testenv.RequireTools(t, tools[backend]...)
	tp := testenv.NewTopology(t)

	// The fake Agora API listens on the server namespace's loopback: the
	// daemon, started there with ip netns exec, reaches it like Agora.
	api := ncsiptest.NewHandler("cust-id", "cust-secret")
	var ln net.Listener
	if err := tp.Server.Run(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	g := newGateway(t, gatewayOptions{
		wrap:     []string{"ip", "netns", "exec", tp.Server.Name},
		client:   nsClient(tp.Server),
		listen:   "::",
		stateDir: stateDir,
		ncs: fmt.Sprintf("ncs: {endpoints: [%q], schedule: %q, timeout: 2s}",
			"http://"+ln.Addr().String()+ncsiptest.Path, schedule),
		env: []string{"NCS_GATEWAY_CUSTOMER_ID=cust-id", "NCS_GATEWAY_CUSTOMER_SECRET=cust-secret"},
	})
	// Ports are the webhook's; a 0 s grace and no shrink gate make every
	// change of Agora's list visible at once (the gates have unit tests).
	g.setFirewall(fmt.Sprintf("firewall: {backend: %s, ports: [%d], remove_grace: 0s, max_shrink: 1, reconcile_interval: 1s}", backend, g.hookPort))
	return &allowlistRig{t: t, tp: tp, api: api, g: g}
}

// hupEvery sends the daemon SIGHUP every d until the test ends: a
// refresh every d, through the same path as a schedule tick (ncs.schedule
// cannot run more often than once a minute). The first comes d after the
// call, once the daemon has long caught SIGHUP.
func (r *allowlistRig) hupEvery(d time.Duration) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			r.g.mu.Lock()
			if r.g.cmd != nil {
				_ = r.g.cmd.Process.Signal(syscall.SIGHUP)
			}
			r.g.mu.Unlock()
		}
	}()
	r.t.Cleanup(func() { close(stop); <-done })
}

// nsClient is an HTTP client whose connections are made inside ns.
func nsClient(ns *testenv.NetNS) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Run(func() (err error) {
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// reachable reports which client addresses complete a TCP handshake with
// the webhook port, over IPv4 and IPv6.
func (r *allowlistRig) reachable(src netip.Addr) bool {
	dst := testenv.ServerV4
	if src.Is4() && strings.HasPrefix(src.String(), "203.0.113.") {
		dst = testenv.ServerV4Alt
	}
	if src.Is6() {
		dst = testenv.ServerV6
	}
	return r.tp.Client.DialTCP(src, netip.AddrPortFrom(dst, uint16(r.g.hookPort)), 300*time.Millisecond) == nil
}

// expect waits until exactly the allowed sources connect (and the others
// do not); the daemon applies asynchronously after SIGHUP or cron.
func (r *allowlistRig) expect(what string, allowed ...netip.Addr) {
	r.t.Helper()
	want := map[netip.Addr]bool{}
	for _, a := range allowed {
		want[a] = true
	}
	sources := []netip.Addr{r.tp.ClientV4[0], r.tp.ClientV4[1], r.tp.ClientV4[4], r.tp.ClientV6[0], r.tp.ClientV6[1]}
	testenv.Eventually(r.t, 20*time.Second, 200*time.Millisecond, func() (bool, string) {
		var wrong []string
		for _, src := range sources {
			if got := r.reachable(src); got != want[src] {
				wrong = append(wrong, fmt.Sprintf("%s reachable=%v", src, got))
			}
		}
		return len(wrong) == 0, fmt.Sprintf("%s: got %s, want only %v reachable", what, strings.Join(wrong, ", "), allowed)
	})
}

func (r *allowlistRig) setIPs(addrs ...netip.Addr) {
	ss := make([]string, len(addrs))
	for i, a := range addrs {
		ss[i] = a.String()
	}
	r.api.SetIPs(ss)
}

func TestAllowlistEndToEnd(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) { testAllowlist(t, backend) })
	}
}

func testAllowlist(t *testing.T, backend string) {
	r := newAllowlistRig(t, backend, "@every 1h", "")
	tp := r.tp
	a, b, c6 := tp.ClientV4[0], tp.ClientV4[1], tp.ClientV6[0]
	r.setIPs(a, c6)

	// -refresh -dry-run prints the plan and changes nothing.
	out, errOut, code := r.g.run("-refresh", "-dry-run")
	if code != 0 || !strings.Contains(out, "added       2 "+a.String()+" "+c6.String()) || !strings.Contains(out, "dry run") {
		t.Fatalf("-refresh -dry-run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(r.g.stateDir, "allowlist.json")); err == nil {
		t.Fatal("-dry-run persisted an allowlist")
	}

	// The daemon starts with no persisted list (closed but for static_allow),
	// then its first refresh opens the port to Agora's list.
	r.g.start()
	r.expect("after the start-up refresh", a, c6)

	// SIGHUP refreshes now.
	r.setIPs(b, c6)
	r.g.signal(syscall.SIGHUP)
	r.expect("after SIGHUP", b, c6)

	// A failing API changes nothing.
	r.api.QueueStatus(500, 500, 500, 500)
	r.g.signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the failed refresh to be counted", func() bool {
		return strings.Contains(r.g.get("/metrics"), `ncs_gateway_refresh_failures_total{reason="fetch_server_error"} 1`)
	})
	r.expect("after a failed refresh", b, c6)

	// -refresh from the command line while the daemon runs goes through
	// the daemon's control socket: the daemon applies and the CLI prints
	// the daemon's plan.
	r.setIPs(a, b)
	out, errOut, code = r.g.run("-refresh")
	if code != 0 || !strings.Contains(out, "through the running daemon") || !strings.Contains(out, "added       1 "+a.String()) || !strings.Contains(out, "removed     1 "+c6.String()) {
		t.Fatalf("-refresh: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	r.expect("after -refresh", a, b)
	r.g.waitReconciles(2) // a reconcile pass must not revert it
	r.expect("after a reconcile pass", a, b)

	// Drift: someone flushes the ruleset; the reconcile loop puts ours back.
	flush := map[string][][]string{
		"nftables": {{"nft", "flush", "ruleset"}},
		"iptables": {{"iptables", "-F", "INPUT"}, {"ip6tables", "-F", "INPUT"}},
	}
	for _, cmd := range flush[backend] {
		tp.Server.MustExec(t, cmd[0], cmd[1:]...)
	}
	r.expect("after drift repair", a, b)
	// One repair per command at most: the watch may repair between them.
	if n := faultsMetric(t, r.g.get("/metrics"), "ncs_gateway_firewall_drift_repairs_total"); n < 1 || n > float64(len(flush[backend])) {
		t.Errorf("drift repair not counted:\n%s", grep(r.g.get("/metrics"), "drift"))
	}

	// The rules stay when the daemon stops; a restart with Agora's API down
	// applies the persisted list before it serves.
	if err := r.g.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	r.api.QueueStatus(repeat(500, 40)...)
	r.setIPs(c6)
	r.g.start()
	r.expect("after a restart with the API down", a, b)

	// -remove-firewall removes all we created.
	if err := r.g.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out, errOut, code := r.g.run("-remove-firewall"); code != 0 {
		t.Fatalf("-remove-firewall: exit %d\n%s\n%s", code, out, errOut)
	}
	leftovers := map[string][]string{
		"nftables": {"nft", "list", "tables"},
		"iptables": {"iptables-save"},
	}
	if got := tp.Server.MustExec(t, leftovers[backend][0], leftovers[backend][1:]...); strings.Contains(strings.ToLower(got), "ncs") {
		t.Errorf("after -remove-firewall, ours is still there:\n%s", got)
	}
}

// TestAllowlistCron: the schedule alone picks up a change of Agora's list.
// ncs.schedule runs at most once a minute, so this waits for that minute.
func TestAllowlistCron(t *testing.T) {
	r := newAllowlistRig(t, "nftables", "@every 1m", "")
	a, b := r.tp.ClientV4[0], r.tp.ClientV4[1]
	r.setIPs(a)
	r.g.start()
	r.expect("after the start-up refresh", a)
	r.setIPs(b)
	waitFor(t, 90*time.Second, "the scheduled refresh a minute after the start", func() bool {
		return metricValue(t, r.g.get("/metrics"), "ncs_gateway_refresh_success_total") >= 2
	})
	r.expect("after a scheduled refresh", b)
	if !strings.Contains(r.g.get("/status"), `"ok": true`) {
		t.Errorf("/status does not show a successful refresh:\n%s", r.g.get("/status"))
	}
}

// TestAllowlistSecureDefault: no persisted list and no answer from Agora
// keep the port closed to everyone but static_allow, and /readyz says so.
func TestAllowlistSecureDefault(t *testing.T) {
	r := newAllowlistRig(t, "nftables", "@every 1h", "")
	static := r.tp.ClientV4[4]
	r.g.setFirewall(fmt.Sprintf("firewall: {backend: nftables, ports: [%d], static_allow: [%s/32]}", r.g.hookPort, static))
	r.api.QueueStatus(repeat(401, 10)...)
	r.g.start()
	r.expect("with no list at all", static)
	resp, err := r.g.client.Get(r.g.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz: got %d, want 503 while no NCS address is allowed", resp.StatusCode)
	}
	if log := r.g.log(); !strings.Contains(log, "closed to everyone but static_allow") || !strings.Contains(log, "fetch_unauthorized") {
		t.Errorf("the log does not say why the port is closed:\n%s", tail(log, 20))
	}
}

func repeat(code, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = code
	}
	return out
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
