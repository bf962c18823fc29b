package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLedgerTwoGateways: two ledgers sharing the consumer and the bucket
// store each record right and each derived notification once.
func TestLedgerTwoGateways(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	cfg := testLedgerConfig(time.Hour, 26*time.Hour)
	a, b := runLedger(t, n, cfg), runLedger(t, n, cfg)
	var lds []sessionLoad
	for i := range 4 {
		ld := newLoad(fmt.Sprintf("two%d", i), uint64(i), time.Now().UnixMilli())
		publishBodies(t, js, ld.all)
		lds = append(lds, ld)
	}
	want := map[string]int{}
	for _, ld := range lds {
		ld.waitRecords(t, js, 10*time.Second)
		for k, v := range ld.wantDerived() {
			want[k] = v
		}
	}
	waitDerived(t, js, want, 5*time.Second)
	waitCaughtUp(t, a, 5*time.Second)
	waitCaughtUp(t, b, 5*time.Second)
	applied := a.metric(t, "ncs_gateway_ledger_events_total", "result", "applied") +
		b.metric(t, "ncs_gateway_ledger_events_total", "result", "applied")
	if applied == 0 {
		t.Errorf("applied events of both: got 0, want some")
	}
	stored := a.metric(t, "ncs_gateway_ledger_completed_total", "outcome", "ok") + b.metric(t, "ncs_gateway_ledger_completed_total", "outcome", "ok")
	if stored != 16 {
		t.Errorf("completed ok stored by both: got %v, want 16", stored)
	}
}

// TestLedgerRestart: a ledger stopped mid-run and a new one started miss
// nothing and double nothing.
func TestLedgerRestart(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	cfg := testLedgerConfig(time.Hour, 26*time.Hour)
	ld := newLoad("restart", 5, time.Now().UnixMilli())
	half := len(ld.all) / 2
	first := runLedger(t, n, cfg)
	publishBodies(t, js, ld.all[:half])
	eventually(t, 5*time.Second, "first ledger at work", func() error {
		if first.metric(t, "ncs_gateway_ledger_events_total", "result", "applied") == 0 {
			return fmt.Errorf("got no event applied, want some")
		}
		return nil
	})
	first.stop()
	publishBodies(t, js, ld.all[half:])
	second := runLedger(t, n, cfg)
	ld.waitRecords(t, js, 10*time.Second)
	waitDerived(t, js, ld.wantDerived(), 5*time.Second)
	waitCaughtUp(t, second, 5*time.Second)
	waitDerived(t, js, ld.wantDerived(), 0)
}

// TestLedgerNATSRestart: the server shut down and started again on the
// same store mid-run; the ledger resumes and ends right.
func TestLedgerNATSRestart(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	tl := runLedger(t, n, testLedgerConfig(time.Hour, 26*time.Hour))
	ld := newLoad("natsrestart", 6, time.Now().UnixMilli())
	half := len(ld.all) / 2
	publishBodies(t, js, ld.all[:half])
	eventually(t, 5*time.Second, "ledger at work", func() error {
		if tl.metric(t, "ncs_gateway_ledger_events_total", "result", "applied") == 0 {
			return fmt.Errorf("got no event applied, want some")
		}
		return nil
	})
	n.stop()
	eventually(t, 10*time.Second, "ledger notices", func() error {
		if tl.Status().CaughtUp {
			return fmt.Errorf("got caught up, want not while nats is down")
		}
		return nil
	})
	n.start()
	eventually(t, 10*time.Second, "test client back", func() error {
		if !js.Conn().IsConnected() {
			return fmt.Errorf("got disconnected, want connected")
		}
		return nil
	})
	publishBodies(t, js, ld.all[half:])
	ld.waitRecords(t, js, 15*time.Second)
	waitDerived(t, js, ld.wantDerived(), 5*time.Second)
	waitCaughtUp(t, tl, 5*time.Second)
	if since := time.Since(tl.LastBeat()); since > 3*time.Second {
		t.Errorf("last beat: got %s ago, want within 3s", since)
	}
}

// TestLedgerConsumerDeleted: a reader deletes the ledger's consumer; the
// ledger makes it again from its ack floor and loses nothing.
func TestLedgerConsumerDeleted(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	tl := runLedger(t, n, testLedgerConfig(time.Hour, 26*time.Hour))
	ld := newLoad("deleted", 7, time.Now().UnixMilli())
	half := len(ld.all) / 2
	publishBodies(t, js, ld.all[:half])
	waitCaughtUp(t, tl, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteConsumer(ctx, "AGORA_NCS", ConsumerName); err != nil {
		t.Fatalf("delete consumer: %v", err)
	}
	publishBodies(t, js, ld.all[half:])
	ld.waitRecords(t, js, 15*time.Second)
	waitDerived(t, js, ld.wantDerived(), 5*time.Second)
	waitCaughtUp(t, tl, 5*time.Second)
	created := tl.logs.FilterMessage("ledger consumer created").All()
	if len(created) != 2 {
		t.Fatalf("consumer created: got %d times, want 2 (start, after the delete)", len(created))
	}
	if got := created[1].ContextMap()["start_seq"]; got != uint64(half+1) {
		t.Errorf("recreated from: got %v, want %d, just above what was finished", got, half+1)
	}
}

// TestLedgerBucketDeleted: the bucket deleted by hand mid-run is created
// again, and the ledger goes on storing records.
func TestLedgerBucketDeleted(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	tl := runLedger(t, n, testLedgerConfig(time.Hour, 26*time.Hour))
	first := testSession{sid: "before", cname: "c", base: time.Now().UnixMilli(), notes: []note{started("1")}}
	publishBodies(t, js, bodies(first))
	eventually(t, 5*time.Second, "first record", func() error { _, _, err := record(js, "before"); return err })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteKeyValue(ctx, DefaultBucket); err != nil {
		t.Fatalf("delete bucket: %v", err)
	}
	ld := newLoad("bucket", 8, time.Now().UnixMilli())
	publishBodies(t, js, ld.all)
	ld.waitRecords(t, js, 15*time.Second)
	waitDerived(t, js, ld.wantDerived(), 5*time.Second)
	waitCaughtUp(t, tl, 5*time.Second)
}
