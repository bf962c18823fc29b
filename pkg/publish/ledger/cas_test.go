package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// TestUpdateConflict: another writer changes the record between the
// ledger's read and its write; the write fails its compare-and-set, the
// ledger reads again, merges again, and the stored record holds both
// writers' facts, with the conflict counted.
func TestUpdateConflict(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefaultBucket, History: 1})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	l, err := New(DefaultConfig(), js.Conn(), zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	r := &runner{l: l, js: js, kv: kv}
	s := testSession{sid: "cas", cname: "c", base: time.Now().UnixMilli(), notes: []note{started("1"), exit("1", 0), uploaded("1", "a.mp4")}}
	b := bodies(s)
	parsed := func(i int) Event { e, _ := Parse(b[i], 1); return e }
	if err := r.update(ctx, "cas", "cas", func(rec *Record) { rec.Apply(parsed(0)) }); err != nil {
		t.Fatalf("first update: %v", err)
	}
	attempts := 0
	err = r.update(ctx, "cas", "cas", func(rec *Record) {
		attempts++
		if attempts == 1 { // the other gateway writes the exit first
			other, _ := UnmarshalRecord(rec.Marshal())
			other.Apply(parsed(1))
			e, _ := kv.Get(ctx, "cas")
			if _, err := kv.Update(ctx, "cas", other.Marshal(), e.Revision()); err != nil {
				t.Errorf("other writer: %v", err)
			}
		}
		rec.Apply(parsed(2))
	})
	if err != nil {
		t.Fatalf("conflicting update: %v", err)
	}
	if attempts != 2 || l.Status().Conflicts != 1 {
		t.Errorf("attempts %d conflicts %d: want 2 and 1", attempts, l.Status().Conflicts)
	}
	got, _, err := record(js, "cas")
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	if want := applyAll(t, "cas", b).Marshal(); string(got.Marshal()) != string(want) {
		t.Errorf("record: got\n%s\nwant\n%s", got.Marshal(), want)
	}
	if got := countDerived(t, js); got["completed//cas"] != 1 {
		t.Errorf("derived: got %v, want one completed", got)
	}
}

// TestIndexForgetsExpired: a record the bucket's max age removes leaves a
// marker, and the index forgets the session, so counts and -sessions do
// not keep it for ever.
func TestIndexForgetsExpired(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefaultBucket, History: 1, TTL: time.Second, LimitMarkerTTL: time.Second})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	l, err := New(DefaultConfig(), js.Conn(), zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	r := &runner{l: l, js: js, kv: kv}
	go r.watch(ctx)
	s := testSession{sid: "expiring", cname: "c", base: time.Now().UnixMilli(), notes: []note{started("1")}}
	if err := r.update(ctx, "expiring", "expiring", func(rec *Record) { e, _ := Parse(bodies(s)[0], 1); rec.Apply(e) }); err != nil {
		t.Fatalf("update: %v", err)
	}
	eventually(t, 2*time.Second, "indexed", func() error {
		if len(l.Sessions()) != 1 {
			return fmt.Errorf("got %d sessions, want 1", len(l.Sessions()))
		}
		return nil
	})
	eventually(t, 10*time.Second, "forgotten", func() error {
		if got := len(l.Sessions()); got != 0 {
			return fmt.Errorf("got %d sessions, want 0 once the record expired", got)
		}
		return nil
	})
}
