package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// faultsRepairWait bounds the wait for a repair after a wipe. The daemon
// runs with the default firewall.reconcile_interval (1 m), so a repair
// inside this bound came from the firewall's Watch (nftables events, the
// iptables poll), not from the periodic backstop. How long the port was
// open is logged, not asserted: BenchmarkWatchRepair in pkg/firewall
// measures it.
const faultsRepairWait = 20 * time.Second

// faultsClientFrom is an HTTP client whose connections are made inside ns
// from the source address src, so they cross the veth and the server
// namespace's firewall like Agora's would. Keep-alive connections are
// reused across requests.
func faultsClientFrom(ns *testenv.NetNS, src netip.Addr) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Run(func() (err error) {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy: nil, DialContext: dial, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second,
	}}
}

// faultsNATSIn returns the connection option that dials NATS inside ns.
func faultsNATSIn(ns *testenv.NetNS) nats.Option {
	return nats.SetCustomDialer(faultsNSDialer{dial: func(network, address string) (net.Conn, error) {
		var c net.Conn
		err := ns.Run(func() (err error) {
			c, err = net.DialTimeout(network, address, 5*time.Second)
			return err
		})
		return c, err
	}})
}

// faultsExposure watches one source that must be blocked, dialing it in a
// tight loop from the client namespace, and records when it got through.
type faultsExposure struct {
	stop chan struct{}
	done chan error

	mu     sync.Mutex
	opens  []time.Time // end of each dial that completed
	probes int
}

func startFaultsExposure(tp *testenv.Topology, src netip.Addr, port int) *faultsExposure {
	e := &faultsExposure{stop: make(chan struct{}), done: make(chan error, 1)}
	dst := netip.AddrPortFrom(faultsDst(src), uint16(port))
	go func() {
		e.done <- tp.Client.Run(func() error {
			for n := 0; n < 1000000; n++ {
				select {
				case <-e.stop:
					return nil
				default:
				}
				err := testenv.DialFrom(src, dst, 100*time.Millisecond)
				now := time.Now()
				e.mu.Lock()
				e.probes++
				if err == nil {
					e.opens = append(e.opens, now)
				}
				e.mu.Unlock()
				if err == nil {
					// Pacing, not synchronisation: an open port
					// answers at once, and the loop must not spin.
					time.Sleep(5 * time.Millisecond)
				}
			}
			return nil
		})
	}()
	return e
}

// halt stops the watcher and returns the times the source got through.
func (e *faultsExposure) halt() ([]time.Time, int) {
	close(e.stop)
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opens, e.probes
}

// TestFaultsFirewallWipedUnderLoad: while an allowed client posts
// notifications through the firewall, another tool wipes the firewall
// state (nft flush ruleset; iptables -F and ip6tables -F) or, the way
// config management "opens the port", inserts an ACCEPT above our jump.
// The port is then open to everyone until the daemon puts our rules back;
// at the default reconcile_interval (1 m) that must happen at once, through
// the firewall's Watch. The window is measured from a blocked source and
// logged. The load is never refused, and every notification answered 200
// is in the stream exactly once.
func TestFaultsFirewallWipedUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name, backend string
		wipe          func(port int) [][]string
	}{
		{"nftables", "nftables", func(int) [][]string { return [][]string{{"nft", "flush", "ruleset"}} }},
		{"iptables", "iptables", func(int) [][]string { return [][]string{{"iptables", "-F"}, {"ip6tables", "-F"}} }},
		{"iptables accept above the jump", "iptables", func(port int) [][]string {
			p := strconv.Itoa(port)
			return [][]string{
				{"iptables", "-I", "INPUT", "-p", "tcp", "--dport", p, "-j", "ACCEPT"},
				{"ip6tables", "-I", "INPUT", "-p", "tcp", "--dport", p, "-j", "ACCEPT"},
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testFaultsFirewallWipe(t, tc.backend, tc.wipe, false) })
	}
}

// TestFaultsFirewallWipedDuringFailingRefresh: the same wipe (nftables)
// while a refresh (SIGHUP) is retrying against an Agora API
// that times out. The repair must not wait for the refresh.
func TestFaultsFirewallWipedDuringFailingRefresh(t *testing.T) {
	testFaultsFirewallWipe(t, "nftables", func(int) [][]string { return [][]string{{"nft", "flush", "ruleset"}} }, true)
}

func testFaultsFirewallWipe(t *testing.T, backend string, wipeFor func(port int) [][]string, duringRefresh bool) {
	r := newAllowlistRig(t, backend, "@every 1h", "")
	// The default reconcile_interval (1 m): only Watch can repair in time.
	r.g.setFirewall(fmt.Sprintf("firewall: {backend: %s, ports: [%d], remove_grace: 0s, max_shrink: 1}", backend, r.g.hookPort))
	tp := r.tp
	loader, other, denied, denied6 := tp.ClientV4[0], tp.ClientV6[0], tp.ClientV4[4], tp.ClientV6[1]
	wipe := wipeFor(r.g.hookPort)
	r.setIPs(loader, other)
	r.g.start()
	r.expect("after the start-up refresh", loader, other)

	url := "http://" + net.JoinHostPort(testenv.ServerV4.String(), strconv.Itoa(r.g.hookPort)) + "/agora/ncs"
	load := startFaultsLoad(t, faultsClientFrom(tp.Client, loader), url, "fwwipe-"+backend, faultsLoadOptions{})
	load.waitCount("200 published", 100, 30*time.Second)

	if duringRefresh {
		// Every attempt of the next refresh times out (2 s each, retried
		// after 1 s, 3 s and 6 s): about 18 s inside Refresh.
		r.api.SetDelay(3 * time.Second)
		attempts := len(faultsLogLines(r.g.log(), "ncs ip fetch attempt failed", nil))
		r.g.signal(syscall.SIGHUP)
		waitFor(t, 15*time.Second, "the refresh's first attempt to time out", func() bool {
			return len(faultsLogLines(r.g.log(), "ncs ip fetch attempt failed", nil)) > attempts
		})
		defer r.api.SetDelay(0)
		// The admin endpoints must keep answering meanwhile (health probes
		// usually give up after 1 to 5 s); asked on the side, checked below.
		// The call is bounded by its own context, and the check below by
		// a guard, so a wedged admin server fails this test, not the suite.
		readyz := make(chan string, 1)
		const readyzLimit = 10 * time.Second
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), readyzLimit)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.g.admin+"/readyz", nil)
			if err != nil {
				readyz <- err.Error()
				return
			}
			asked := time.Now()
			resp, err := r.g.client.Do(req)
			took := time.Since(asked)
			if err != nil {
				readyz <- fmt.Sprintf("/readyz during a failing refresh: %v after %s, want an answer within 5 s", err, took.Round(time.Millisecond))
				return
			}
			resp.Body.Close()
			if took > 5*time.Second {
				readyz <- fmt.Sprintf("/readyz during a failing refresh: answered %d after %s, want an answer within 5 s", resp.StatusCode, took.Round(time.Millisecond))
				return
			}
			t.Logf("/readyz during a failing refresh: %d after %s", resp.StatusCode, took.Round(time.Millisecond))
			readyz <- ""
		}()
		defer func() {
			select {
			case msg := <-readyz:
				if msg != "" {
					t.Error(msg)
				}
			case <-time.After(readyzLimit + 5*time.Second):
				t.Errorf("/readyz during a failing refresh: no answer and no error after %s, want an answer within 5 s", readyzLimit+5*time.Second)
			}
		}()
	}

	repairsBefore := faultsMetric(t, r.g.get("/metrics"), "ncs_gateway_firewall_drift_repairs_total")
	watch := startFaultsExposure(tp, denied, r.g.hookPort)
	// The watcher has probed (and been blocked) a few times before the
	// wipe, so "blocked before" is something it saw.
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		watch.mu.Lock()
		defer watch.mu.Unlock()
		return watch.probes >= 3, fmt.Sprintf("the exposure watcher to probe %s 3 times before the wipe (%d so far)", denied, watch.probes)
	})
	wipeStart := time.Now()
	for _, cmd := range wipe {
		tp.Server.MustExec(t, cmd[0], cmd[1:]...)
	}
	wipeEnd := time.Now()
	// Watch long enough to see the repair, bounded well below the
	// default reconcile_interval.
	// Not reaching the condition is judged below from what the watcher
	// saw, so the wait's outcome is not checked here.
	_, _ = testenv.Poll(time.Until(wipeEnd.Add(faultsRepairWait)), 100*time.Millisecond, func() (bool, string) {
		watch.mu.Lock()
		var last time.Time
		if n := len(watch.opens); n > 0 {
			last = watch.opens[n-1]
		}
		watch.mu.Unlock()
		// Blocked for 1.5 s after the last time it got through: repaired.
		if last.IsZero() {
			last = wipeEnd
		}
		return time.Since(last) > 1500*time.Millisecond, ""
	})
	opens, probes := watch.halt()
	var before, after int
	var lastOpen time.Time
	for _, o := range opens {
		if o.Before(wipeStart) {
			before++
			continue
		}
		after++
		lastOpen = o
	}
	if before > 0 {
		t.Errorf("%s got through %d times before the wipe, want 0", denied, before)
	}
	if after == 0 {
		t.Logf("%s never got through after the wipe (%d probes): the repair beat the first probe", denied, probes)
	} else {
		exposure := lastOpen.Sub(wipeStart)
		t.Logf("exposure: %s got through %d times, the last %s after the wipe began (wipe took %s; %d probes)",
			denied, after, exposure.Round(time.Millisecond), wipeEnd.Sub(wipeStart).Round(time.Millisecond), probes)
		if time.Since(lastOpen) < 1500*time.Millisecond {
			t.Errorf("%s still got through %s after the wipe, want the repair within %s at the default reconcile_interval (1 m)",
				denied, faultsRepairWait, faultsRepairWait)
		}
	}
	waitFor(t, 5*time.Second, "the drift repair to be counted", func() bool {
		return faultsMetric(t, r.g.get("/metrics"), "ncs_gateway_firewall_drift_repairs_total") > repairsBefore
	})
	waitFor(t, 5*time.Second, "the drift repair in the log", func() bool {
		return len(faultsLogLines(r.g.log(), "firewall drift repaired", nil)) > 0
	})
	if duringRefresh {
		// The timeline, from the daemon's own log: when the refresh gave up
		// and when the reconcile loop repaired the drift.
		for _, msg := range []string{"ncs ip fetch attempt failed", "allowlist refresh failed", "firewall drift repaired"} {
			for _, l := range faultsLogLines(r.g.log(), msg, nil) {
				if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["ts"])); err == nil {
					t.Logf("log: %+.3fs after the wipe: %s", ts.Sub(wipeStart).Seconds(), msg)
				}
			}
		}
	}
	// Every source, IPv6 included, is back to what the allowlist says.
	r.expect("after the repair", loader, other)
	if tp.Client.DialTCP(denied6, netip.AddrPortFrom(testenv.ServerV6, uint16(r.g.hookPort)), 300*time.Millisecond) == nil {
		t.Errorf("%s reaches the port after the repair, want blocked", denied6)
	}

	before200 := load.count("200 published")
	load.waitCount("200 published", before200+100, 30*time.Second)
	load.stop()
	t.Logf("load: %s", load.summary())
	if int64(load.ackedCount()) != load.sent.Load() {
		t.Errorf("answered 200: got %d of %d posts, want all (the loader is allowed throughout): %s", load.ackedCount(), load.sent.Load(), load.summary())
	}
	faultsWaitDrained(t, r.g, 30*time.Second)
	load.check(t, faultsStreamIDs(t, embeddedURL(t, r.g), "AGORA_NCS", faultsNATSIn(tp.Server)))
}
