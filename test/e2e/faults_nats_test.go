package e2e

import (
	"testing"
	"time"
)

// TestFaultsNATSKilledMidLoad: a real nats-server is killed with SIGKILL in
// the middle of a load run and started again 20 s later on the same port
// and store. The gateway spools and answers 200 meanwhile, drains the spool
// when NATS is back, and every notification answered 200 is in the stream
// exactly once.
func TestFaultsNATSKilledMidLoad(t *testing.T) {
	ns := newFaultsNATS(t)
	ns.start()
	g := newGateway(t, gatewayOptions{natsURL: ns.url()})
	g.start()

	load := startFaultsLoad(t, faultsHTTPClient(), g.webhook, "natskill", faultsLoadOptions{})
	load.waitCount("200 published", 200, 30*time.Second)

	killedAt := time.Now()
	ns.kill()
	t.Logf("nats-server killed (SIGKILL) after %s", load.summary())
	waitFor(t, 15*time.Second, "the gateway to notice NATS is gone", func() bool {
		return !faultsGetStatus(t, g).NATS.Connected
	})
	noticed := time.Since(killedAt)
	load.waitCount("200 spooled", 100, 20*time.Second)
	if ev, ok := load.firstSince(killedAt, 200, "spooled"); ok {
		t.Logf("first 200 spooled %s after the kill; disconnect noticed in /status after %s", ev.at.Sub(killedAt).Round(time.Millisecond), noticed.Round(time.Millisecond))
	}
	// The outage's length is the scenario (NATS gone for 20 s, long enough
	// for several reconnect attempts to fail), not a synchronisation.
	time.Sleep(time.Until(killedAt.Add(20 * time.Second)))

	restartedAt := time.Now()
	ns.start()
	spooledAtRestart := faultsGetStatus(t, g).NATS.SpoolDepth
	t.Logf("nats-server started again %s after the kill (ready after %s), spool depth %d; %s",
		restartedAt.Sub(killedAt).Round(time.Millisecond), time.Since(restartedAt).Round(time.Millisecond), spooledAtRestart, load.summary())
	before := load.count("200 published")
	load.waitCount("200 published", before+200, 30*time.Second)
	if ev, ok := load.firstSince(restartedAt, 200, "published"); ok {
		t.Logf("first 200 published %s after NATS was back", ev.at.Sub(restartedAt).Round(time.Millisecond))
	}
	load.stop()
	t.Logf("load stopped: %s", load.summary())

	drain := faultsWaitDrained(t, g, 60*time.Second)
	t.Logf("spool drained %s after the load stopped", drain.Round(time.Millisecond))
	if n := load.ackedCount(); int64(n) != load.sent.Load() {
		t.Errorf("answered 200: got %d of %d posts, want all (the gateway spools while NATS is down): %s", n, load.sent.Load(), load.summary())
	}
	load.check(t, faultsStreamIDs(t, ns.url(), "AGORA_NCS"))

	metrics := g.get("/metrics")
	spooled := faultsMetric(t, metrics, "ncs_gateway_spool_spooled_total")
	forwarded := faultsMetric(t, metrics, "ncs_gateway_spool_forwarded_total")
	if want := float64(load.count("200 spooled")); spooled != want {
		t.Errorf("ncs_gateway_spool_spooled_total: got %v, want %v (the 200 spooled answers)", spooled, want)
	}
	if forwarded != spooled {
		t.Errorf("ncs_gateway_spool_forwarded_total: got %v, want %v (every spooled message forwarded once)", forwarded, spooled)
	}
	if d := faultsMetric(t, metrics, "ncs_gateway_nats_disconnects_total"); d < 1 {
		t.Errorf("ncs_gateway_nats_disconnects_total: got %v, want >= 1", d)
	}
	if r := faultsMetric(t, metrics, "ncs_gateway_nats_reconnects_total"); r < 1 {
		t.Errorf("ncs_gateway_nats_reconnects_total: got %v, want >= 1", r)
	}
	if len(faultsLogLines(g.log(), "nats disconnected", nil)) == 0 || len(faultsLogLines(g.log(), "nats reconnected", nil)) == 0 {
		t.Errorf("the log lacks the disconnect or the reconnect:\n%s", grep(g.log(), "nats"))
	}
	t.Logf("metrics: spooled %v, forwarded %v, forward failures %v, publish failures timeout %v disconnected %v",
		spooled, forwarded, faultsMetric(t, metrics, "ncs_gateway_spool_forward_failures_total"),
		faultsMetric(t, metrics, `ncs_gateway_nats_publish_failures_total{reason="timeout"}`),
		faultsMetric(t, metrics, `ncs_gateway_nats_publish_failures_total{reason="disconnected"}`))
}

// TestFaultsDaemonKilledWhileNATSDown: NATS goes away (SIGKILL), the
// gateway spools under load, then the gateway itself is killed with SIGKILL
// in the middle of the load run and started again; NATS comes back, the
// spool drains, and every notification answered 200 is in the stream
// exactly once (an id whose request died with the daemon at most once).
func TestFaultsDaemonKilledWhileNATSDown(t *testing.T) {
	ns := newFaultsNATS(t)
	ns.start()
	g := newGateway(t, gatewayOptions{natsURL: ns.url()})
	g.start()

	load := startFaultsLoad(t, faultsHTTPClient(), g.webhook, "gwkill", faultsLoadOptions{})
	load.waitCount("200 published", 100, 30*time.Second)
	ns.kill()
	waitFor(t, 15*time.Second, "the gateway to notice NATS is gone", func() bool {
		return !faultsGetStatus(t, g).NATS.Connected
	})
	load.waitCount("200 spooled", 200, 30*time.Second)

	depthBefore := faultsGetStatus(t, g).NATS.SpoolDepth
	killedAt := time.Now()
	g.kill()
	t.Logf("gateway killed (SIGKILL) with spool depth >= %d; %s", depthBefore, load.summary())
	// The load keeps knocking on the closed port: restart once every worker
	// has met it a couple of times.
	waitFor(t, 15*time.Second, "16 load requests to fail against the killed gateway", func() bool {
		return len(load.failuresSince(killedAt)) >= 16
	})
	restartedAt := time.Now()
	g.start()
	st := faultsGetStatus(t, g)
	t.Logf("gateway restarted %s after the kill (healthy after %s) with spool depth %d from the previous run",
		restartedAt.Sub(killedAt).Round(time.Millisecond), time.Since(restartedAt).Round(time.Millisecond), st.NATS.SpoolDepth)
	if st.NATS.SpoolDepth < depthBefore {
		t.Errorf("spool depth after the restart: got %d, want >= %d (what the killed daemon had spooled)", st.NATS.SpoolDepth, depthBefore)
	}
	if _, ok := load.firstSince(killedAt, 0, ""); !ok {
		t.Errorf("no request failed while the gateway was down: the kill did not happen mid-load")
	}
	before := load.count("200 spooled")
	load.waitCount("200 spooled", before+100, 30*time.Second)

	natsBack := time.Now()
	ns.start()
	before = load.count("200 published")
	load.waitCount("200 published", before+100, 30*time.Second)
	load.stop()
	t.Logf("load stopped: %s", load.summary())
	drain := faultsWaitDrained(t, g, 60*time.Second)
	t.Logf("spool drained %s after the load stopped, %s after NATS came back", drain.Round(time.Millisecond), time.Since(natsBack).Round(time.Millisecond))

	// Only requests in flight around the kill may have failed, and only
	// with a transport error (no answer), never with a status.
	for kind, n := range load.counts() {
		if kind != "transport error" && kind != "200 published" && kind != "200 spooled" {
			t.Errorf("%d answers %q, want only 200s and transport errors while the daemon was down", n, kind)
		}
	}
	load.check(t, faultsStreamIDs(t, ns.url(), "AGORA_NCS"))
}
