package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// faultsDst is the server address a client source dials (the server has
// an address in each client range, so replies route back).
func faultsDst(src netip.Addr) netip.Addr {
	switch {
	case src.Is6():
		return testenv.ServerV6
	case strings.HasPrefix(src.String(), "203.0.113."):
		return testenv.ServerV4Alt
	default:
		return testenv.ServerV4
	}
}

// faultsProber dials the webhook port from the client namespace over and
// over, from sources that must stay allowed and sources that must stay
// blocked, and records every round that saw otherwise.
type faultsProber struct {
	stop     chan struct{}
	done     chan error
	haltOnce sync.Once

	mu         sync.Mutex
	rounds     int
	violations []string
}

func startFaultsProber(t *testing.T, tp *testenv.Topology, port int, allowed, denied []netip.Addr) *faultsProber {
	t.Helper()
	p := &faultsProber{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		p.done <- tp.Client.Run(func() error {
			for n := 0; n < 100000; n++ {
				select {
				case <-p.stop:
					return nil
				default:
				}
				var bad []string
				for _, src := range allowed {
					dst := netip.AddrPortFrom(faultsDst(src), uint16(port))
					// A second, longer try keeps a lost SYN on a busy machine
					// from reading as a block.
					if testenv.DialFrom(src, dst, 300*time.Millisecond) != nil {
						if err := testenv.DialFrom(src, dst, 1500*time.Millisecond); err != nil {
							bad = append(bad, fmt.Sprintf("%s blocked (%v), want allowed", src, err))
						}
					}
				}
				for _, src := range denied {
					if testenv.DialFrom(src, netip.AddrPortFrom(faultsDst(src), uint16(port)), 300*time.Millisecond) == nil {
						bad = append(bad, fmt.Sprintf("%s allowed, want blocked", src))
					}
				}
				p.mu.Lock()
				p.rounds++
				for _, b := range bad {
					p.violations = append(p.violations, time.Now().Format("15:04:05.000")+" "+b)
				}
				p.mu.Unlock()
			}
			return nil
		})
	}()
	t.Cleanup(func() { p.halt() })
	return p
}

// halt stops the prober and returns its rounds and violations.
func (p *faultsProber) halt() (int, []string) {
	p.haltOnce.Do(func() {
		close(p.stop)
		<-p.done
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rounds, append([]string(nil), p.violations...)
}

// faultsAgoraRig is the allowlist rig with the shipped gates (max_shrink
// 0.5, allow_private false), a 0 s grace so a change for the worse shows at
// once, a refresh every 2 s (SIGHUP: ncs.schedule runs at most once a minute) and a 1 s timeout per HTTP attempt.
type faultsAgoraRig struct {
	*allowlistRig
	good    []netip.Addr // Agora's healthy list
	allowed []netip.Addr // client sources in it
	denied  []netip.Addr // client sources never in it
	prober  *faultsProber
}

func newFaultsAgoraRig(t *testing.T) *faultsAgoraRig {
	t.Helper()
	r := newAllowlistRig(t, "nftables", "@every 1h", "")
	r.g.opts.ncs = strings.Replace(r.g.opts.ncs, "timeout: 2s", "timeout: 1s", 1)
	r.g.setFirewall(fmt.Sprintf("firewall: {backend: nftables, ports: [%d], remove_grace: 0s, reconcile_interval: 1s}", r.g.hookPort))
	tp := r.tp
	fr := &faultsAgoraRig{
		allowlistRig: r,
		allowed:      []netip.Addr{tp.ClientV4[0], tp.ClientV4[1], tp.ClientV6[0]},
		denied:       []netip.Addr{tp.ClientV4[4], tp.ClientV6[1]},
	}
	// Ten addresses, so that a list of one is a 90% shrink.
	fr.good = append(fr.good, fr.allowed...)
	for i := range 7 {
		fr.good = append(fr.good, netip.AddrFrom4([4]byte{198, 51, 100, byte(200 + i)}))
	}
	r.setIPs(fr.good...)
	r.g.start()
	r.expect("after the start-up refresh", fr.allowed...)
	r.hupEvery(2 * time.Second)
	fr.prober = startFaultsProber(t, tp, r.g.hookPort, fr.allowed, fr.denied)
	return fr
}

// faultsAgoraCase is one way Agora's API misbehaves.
type faultsAgoraCase struct {
	name   string
	reason string // refresh failure label it must be counted under
	start  func(r *faultsAgoraRig)
	end    func(r *faultsAgoraRig)
}

// run makes each case happen during the periodic refreshes (SIGHUP every 2 s, the schedule tick's own path) and
// checks: the refresh failure is counted under its reason and logged with
// it, and the prober never saw the allowlist change.
func (r *faultsAgoraRig) run(t *testing.T, cases []faultsAgoraCase) {
	t.Helper()
	for _, c := range cases {
		// Start right after a scheduled refresh succeeded, so the next one
		// meets the whole fault and no earlier refresh eats part of it.
		r.waitSuccess(t, 20*time.Second)
		series := fmt.Sprintf(`ncs_gateway_refresh_failures_total{reason=%q}`, c.reason)
		before := faultsMetric(t, r.g.get("/metrics"), series)
		logged := len(faultsLogLines(r.g.log(), "allowlist refresh failed", map[string]string{"reason": c.reason}))
		start := time.Now()
		c.start(r)
		waitFor(t, 40*time.Second, c.name+": "+series+" to go up", func() bool {
			return faultsMetric(t, r.g.get("/metrics"), series) > before
		})
		took := time.Since(start)
		if c.end != nil {
			c.end(r)
		}
		waitFor(t, 5*time.Second, c.name+": the failure in the log with reason "+c.reason, func() bool {
			return len(faultsLogLines(r.g.log(), "allowlist refresh failed", map[string]string{"reason": c.reason})) > logged
		})
		lines := faultsLogLines(r.g.log(), "allowlist refresh failed", map[string]string{"reason": c.reason})
		t.Logf("%s: refresh failed with %s %s after the fault began; logged: %v", c.name, c.reason, took.Round(time.Millisecond), lines[len(lines)-1]["error"])
		if st := faultsGetStatus(t, r.g); !sameAddrs(st.Allowlist.Addresses, r.good) {
			t.Errorf("%s: /status addresses: got %v, want %v", c.name, st.Allowlist.Addresses, r.good)
		}
	}
	r.waitSuccess(t, 20*time.Second)
	rounds, bad := r.prober.halt()
	t.Logf("prober: %d rounds over all cases, %d violations", rounds, len(bad))
	if rounds == 0 {
		t.Errorf("the prober made no round")
	}
	for i, v := range bad {
		if i == 10 {
			t.Errorf("... and %d more", len(bad)-10)
			break
		}
		t.Errorf("allowlist changed for the worse: %s", v)
	}
	r.expect("after every fault", r.allowed...)
}

// waitSuccess waits for the next successful scheduled refresh.
func (r *faultsAgoraRig) waitSuccess(t *testing.T, d time.Duration) {
	t.Helper()
	before := faultsMetric(t, r.g.get("/metrics"), "ncs_gateway_refresh_success_total")
	waitFor(t, d, "a successful scheduled refresh", func() bool {
		return faultsMetric(t, r.g.get("/metrics"), "ncs_gateway_refresh_success_total") > before
	})
}

func sameAddrs(got []string, want []netip.Addr) bool {
	if len(got) != len(want) {
		return false
	}
	set := map[string]bool{}
	for _, a := range want {
		set[a.String()] = true
	}
	for _, g := range got {
		if !set[g] {
			return false
		}
	}
	return true
}

// TestFaultsAgoraRetriedFaults: timeouts, slow bodies, 500s and 429s on
// every attempt of a scheduled refresh (the client retries after 1 s, 3 s,
// 6 s) fail the refresh, which keeps the allowlist exactly as it was, is
// counted under its reason and logged with it.
func TestFaultsAgoraRetriedFaults(t *testing.T) {
	t.Parallel() // mostly waits out the client's backoff
	r := newFaultsAgoraRig(t)
	r.run(t, []faultsAgoraCase{
		{
			name: "answers after the 1 s timeout", reason: "fetch_timeout",
			start: func(r *faultsAgoraRig) { r.api.SetDelay(2500 * time.Millisecond) },
			end:   func(r *faultsAgoraRig) { r.api.SetDelay(0) },
		},
		{
			name: "500 on every attempt", reason: "fetch_server_error",
			start: func(r *faultsAgoraRig) { r.api.QueueStatus(500, 500, 500, 500) },
		},
		{
			name: "429 on every attempt (Retry-After: 1)", reason: "fetch_rate_limited",
			start: func(r *faultsAgoraRig) { r.api.SetRetryAfter("1"); r.api.QueueStatus(429, 429, 429, 429) },
			end:   func(r *faultsAgoraRig) { r.api.SetRetryAfter("") },
		},
		{
			name: "half the body, then a stall past the timeout", reason: "fetch_timeout",
			start: func(r *faultsAgoraRig) {
				r.api.QueueFault(ncsiptest.SlowBody, ncsiptest.SlowBody, ncsiptest.SlowBody, ncsiptest.SlowBody)
				r.api.SetDelay(2500 * time.Millisecond)
			},
			end: func(r *faultsAgoraRig) { r.api.SetDelay(0) },
		},
	})
	if n := len(faultsLogLines(r.g.log(), "ncs ip fetch attempt failed", nil)); n < 12 {
		t.Errorf("attempt failures logged: got %d, want >= 12 (3 retried attempts in each of 4 cases)", n)
	}
}

// TestFaultsAgoraBadAnswers: a truncated or non-JSON 200, an oversized
// one, a list that shrinks by 90% (max_shrink 0.5) and a list of private
// addresses only (allow_private false) are refused; the allowlist never
// changes, and each is counted and logged under its reason.
func TestFaultsAgoraBadAnswers(t *testing.T) {
	t.Parallel()
	r := newFaultsAgoraRig(t)
	private := []string{"10.1.2.3", "192.168.7.7", "172.16.0.1", "100.64.0.1", "fd00::1"}
	r.run(t, []faultsAgoraCase{
		{
			name: "truncated JSON", reason: "fetch_bad_response",
			start: func(r *faultsAgoraRig) { r.api.QueueFault(ncsiptest.Truncated) },
		},
		{
			name: "an HTML page", reason: "fetch_bad_response",
			start: func(r *faultsAgoraRig) { r.api.QueueFault(ncsiptest.Garbage) },
		},
		{
			name: "16 MiB of list", reason: "fetch_bad_response",
			start: func(r *faultsAgoraRig) { r.api.QueueFault(ncsiptest.Huge) },
		},
		{
			// One of the ten kept, nine gone, and a newcomer.
			name: "a list that shrinks by 90%", reason: "shrink_refused",
			start: func(r *faultsAgoraRig) { r.setIPs(r.good[len(r.good)-1], r.denied[0]) },
			end:   func(r *faultsAgoraRig) { r.setIPs(r.good...) },
		},
		{
			name: "a list of private addresses", reason: "fetch_empty",
			start: func(r *faultsAgoraRig) { r.api.SetIPs(private) },
			end:   func(r *faultsAgoraRig) { r.setIPs(r.good...) },
		},
	})
	if lines := faultsLogLines(r.g.log(), "allowlist refresh failed", map[string]string{"reason": "shrink_refused"}); len(lines) > 0 {
		if e := fmt.Sprint(lines[0]["error"]); !strings.Contains(e, "drops 9 of the 10") {
			t.Errorf("shrink refusal: got %q, want it to say it drops 9 of the 10 addresses", e)
		}
	}
	if lines := faultsLogLines(r.g.log(), "allowlist refresh failed", map[string]string{"reason": "fetch_empty"}); len(lines) > 0 {
		if e := fmt.Sprint(lines[0]["error"]); !strings.Contains(e, "private") {
			t.Errorf("private list: got %q, want it to say the addresses are private", e)
		}
	}
}
