package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ledgerYAML makes the sessions due in the past (lost 31, lost 11,
// silence) due at once, and leaves the fresh ones far from due.
const ledgerYAML = "ledger: {upload_grace: 5m, stall_after: 5m}"

// TestLedgerSessionsAcrossACrash sends one session of every kind, shuffled,
// with resends and redundant copies, to the daemon on its embedded NATS,
// SIGKILLs it halfway and starts it again: one session.completed per
// session, one session.flagged per reason, records that count each
// distinct event once, none missed and none doubled. Readers read the
// bucket and cannot touch the ledger's consumer; -sessions and -status
// show the ledger.
func TestLedgerSessionsAcrossACrash(t *testing.T) {
	g := newGateway(t, gatewayOptions{extra: ledgerYAML})
	g.start()
	natsURL := embeddedURL(t, g)

	sessions := ledgerSessions("crash", 4)
	bodies := ledgerBodies(sessions, 1)
	half := len(bodies) / 2
	postAll(t, bodies[:half], g)
	g.kill()
	g.start()
	postAll(t, bodies[half:], g)

	wantDerived(t, natsURL, sessions, 60*time.Second)
	checkRecords(t, natsURL, sessions)

	// The ledger's consumer is the gateway's: an anonymous reader may
	// neither delete it nor read through it.
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The server drops a request it refuses (a permissions violation), so
	// the refusal shows as no answer within the deadline.
	dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer dcancel()
	if err := js.DeleteConsumer(dctx, "AGORA_NCS", "NCS_GATEWAY_LEDGER"); err == nil {
		t.Errorf("a reader deleted the ledger's consumer: got nil error, want a permissions refusal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Consumer(ctx, "AGORA_NCS", "NCS_GATEWAY_LEDGER"); err != nil {
		t.Errorf("the ledger's consumer after a reader's delete: got %v, want it still there", err)
	}
	if _, err := js.KeyValue(ctx, "NCS_SESSIONS"); err != nil {
		t.Errorf("a reader binds the bucket: got %v, want nil", err)
	}

	out, errOut, code := g.run("-sessions")
	if code != 0 {
		t.Fatalf("-sessions: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"crashopen000", "crashsilent000"} {
		if !strings.Contains(out, want) {
			t.Errorf("-sessions lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "crashnormal000") {
		t.Errorf("-sessions lists a session that ended well:\n%s", out)
	}
	out, _, _ = g.run("-status")
	if !strings.Contains(out, "session ledger (bucket NCS_SESSIONS") || !strings.Contains(out, "caught up") {
		t.Errorf("-status lacks the ledger:\n%s", out)
	}
	page := g.get("/metrics")
	if v := faultsMetric(t, page, `ncs_gateway_ledger_flagged_total{reason="silent"}`); v != 1 {
		t.Errorf("ncs_gateway_ledger_flagged_total{reason=\"silent\"}: got %v, want 1", v)
	}
}

// TestLedgerTwoGatewaysNATSOutageAndLostConsumer runs two gateways on one
// external NATS: they share the ledger's consumer and write each record by
// compare-and-set. NATS goes away and comes back mid-run, then the
// ledger's consumer is deleted (an external server has no reader
// permissions to stop that): the ledger recreates it, and every session
// still ends with one session.completed.
func TestLedgerTwoGatewaysNATSOutageAndLostConsumer(t *testing.T) {
	n := startNATS(t)
	g1 := newGateway(t, gatewayOptions{natsURL: n.url(), extra: ledgerYAML})
	g2 := newGateway(t, gatewayOptions{natsURL: n.url(), extra: ledgerYAML})
	g1.start()
	g2.start()

	sessions := ledgerSessions("pair", 6)
	bodies := ledgerBodies(sessions, 2)
	third := len(bodies) / 3
	postAll(t, bodies[:third], g1, g2)

	// NATS away: the webhook spools, the ledger waits.
	n.stop()
	postAll(t, bodies[third:2*third], g1, g2)
	n.start()

	nc, err := nats.Connect(n.url(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The ledger comes back on its consumer once NATS is back; delete it
	// then, as a careless operator or a rogue client would.
	waitFor(t, 30*time.Second, "the ledger's consumer after the outage", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.Consumer(ctx, "AGORA_NCS", "NCS_GATEWAY_LEDGER")
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteConsumer(ctx, "AGORA_NCS", "NCS_GATEWAY_LEDGER"); err != nil {
		t.Fatalf("delete the ledger's consumer: %v", err)
	}
	postAll(t, bodies[2*third:], g1, g2)

	wantDerived(t, n.url(), sessions, 90*time.Second)
	checkRecords(t, n.url(), sessions)
	// One gateway created the consumer at start (the other found it); the
	// server's restart kept it (file store). Another creation is the
	// recreation after the delete.
	created := len(faultsLogLines(g1.log(), "ledger consumer created", nil)) + len(faultsLogLines(g2.log(), "ledger consumer created", nil))
	if created < 2 {
		t.Errorf("ledger consumer created: got %d log lines across both gateways, want at least 2 (the start and the recreation)", created)
	}
}

// TestClusterLedgerLeaderKilled runs the ledger of two gateways on the
// three-node cluster (an R3 stream and an R3 bucket) and SIGKILLs the
// stream's leader halfway: every session still ends with one
// session.completed and one session.flagged per reason.
func TestClusterLedgerLeaderKilled(t *testing.T) {
	c := startNATSCluster(t)
	var gws []*gateway
	for range 2 {
		g := newGateway(t, gatewayOptions{natsURL: c.urls(), extra: ledgerYAML})
		g.base = strings.Replace(g.base, "  publish_timeout: 1s\n", "  publish_timeout: 3s\n  stream_replicas: 3\n", 1)
		g.writeConfig()
		g.start()
		gws = append(gws, g)
	}
	leader := c.waitStreamCurrent(clusterStream, 3, 60*time.Second)

	sessions := ledgerSessions("cluster", 6)
	bodies := ledgerBodies(sessions, 3)
	half := len(bodies) / 2
	postAll(t, bodies[:half], gws...)
	c.node(leader).kill()
	postAll(t, bodies[half:], gws...)
	c.node(leader).start(faultsNATSServerBinary(t))

	wantDerived(t, c.urls(), sessions, 120*time.Second)
	checkRecords(t, c.urls(), sessions)
}
