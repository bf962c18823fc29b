package publish

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTestSpool(t *testing.T, maxBytes int64) *spool {
	t.Helper()
	s, err := openSpool(filepath.Join(t.TempDir(), "state", "spool.db"), maxBytes)
	if err != nil {
		t.Fatalf("open spool: %v", err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

func TestSpoolConcurrentPutsShareOrderAndCounters(t *testing.T) {
	const n = 50
	s := openTestSpool(t, 1<<20)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- s.put(testMsg(i), time.Now()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	var wantBytes int64
	for i := range n {
		wantBytes += int64(encodedSize(testMsg(i)) + spoolKeySize)
	}
	st := s.stats()
	if st.depth != n || st.bytes != wantBytes || st.oldest.Before(start) {
		t.Errorf("stats: got depth %d, bytes %d, oldest %v; want %d, %d, after %v", st.depth, st.bytes, st.oldest, n, wantBytes, start)
	}

	msgs, moved, err := s.peek(n+10, 1<<20)
	if err != nil || moved != 0 || len(msgs) != n {
		t.Fatalf("peek: got %d messages, %d moved, %v; want %d, 0, nil", len(msgs), moved, err, n)
	}
	keys := make([]uint64, 0, n)
	for i, m := range msgs {
		if i > 0 && m.key <= msgs[i-1].key {
			t.Errorf("peek order: got key %d after %d, want ascending", m.key, msgs[i-1].key)
		}
		keys = append(keys, m.key)
	}
	if got, _, _ := s.peek(n, 1); len(got) != 1 {
		t.Errorf("peek with a 1-byte budget: got %d messages, want 1", len(got))
	}
	if err := s.remove(keys[:n/2]); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if st := s.stats(); st.depth != n-n/2 || st.oldest.Before(msgs[n/2].rec.SpooledAt) {
		t.Errorf("after removing half: got depth %d, oldest %v; want %d, %v", st.depth, st.oldest, n-n/2, msgs[n/2].rec.SpooledAt)
	}
	if err := s.remove(keys); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if st := s.stats(); st.depth != 0 || st.bytes != 0 || !st.oldest.IsZero() || st.oldestAge() != 0 {
		t.Errorf("after removing all: got %+v, want empty", st)
	}
}

func TestSpoolQuarantinesCorruptRecords(t *testing.T) {
	s := openTestSpool(t, 1<<20)
	for i := range 2 {
		if err := s.put(testMsg(i), time.Now()); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	garbage := []byte{9, 9, 9}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).Put(binary.BigEndian.AppendUint64(nil, 0), garbage)
	})
	if err != nil {
		t.Fatalf("inject corrupt record: %v", err)
	}
	s.depth++
	s.bytes += int64(spoolKeySize + len(garbage))

	msgs, moved, err := s.peek(10, 1<<20)
	if err != nil || moved != 1 || len(msgs) != 2 {
		t.Fatalf("peek: got %d messages, %d moved, %v; want 2, 1, nil", len(msgs), moved, err)
	}
	var kept []byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		kept = append(kept, tx.Bucket(bucketDead).Get(binary.BigEndian.AppendUint64(nil, 0))...)
		return nil
	})
	if string(kept) != string(garbage) {
		t.Errorf("dead bucket: got %v, want %v", kept, garbage)
	}
	if st := s.stats(); st.depth != 2 {
		t.Errorf("depth: got %d, want 2", st.depth)
	}
}

func TestSpoolWriteErrorIsUnavailable(t *testing.T) {
	srv := deadNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), false)
	// A closed bbolt file fails every write, as a broken disk would.
	if err := p.spool.db.Close(); err != nil {
		t.Fatalf("close bbolt: %v", err)
	}
	_, err := p.Publish(context.Background(), testMsg(0))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSpoolFull) {
		t.Fatalf("publish: got %v, want ErrUnavailable without ErrSpoolFull", err)
	}
	if got := p.metric(t, "ncs_gateway_spool_rejected_total", "reason", "write_error"); got != 1 {
		t.Errorf("spool_rejected_total{write_error}: got %v, want 1", got)
	}
	if p.Ready() {
		t.Errorf("ready with NATS down and the spool failing: got true, want false")
	}
	if st := p.spool.stats(); st.depth != 0 || st.bytes != 0 {
		t.Errorf("spool stats after a failed write: got %+v, want nothing counted", st)
	}
}

func TestOversizedMessageSetAsideNotRetried(t *testing.T) {
	srv := startNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), true)
	_, js := srv.client()

	big := testMsg(0)
	big.Data = make([]byte, 2<<20) // over nats-server's default 1 MiB max payload
	if out, err := p.Publish(context.Background(), big); err != nil || out != Spooled {
		t.Fatalf("publish oversized: got %v, %v, want spooled, nil", out, err)
	}
	if out, err := p.Publish(context.Background(), testMsg(1)); err != nil || out != Published {
		t.Fatalf("publish after it: got %v, %v, want published, nil", out, err)
	}
	eventually(t, 10*time.Second, "oversized message leaves the queue", func() error {
		if d := p.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	var dead int
	_ = p.spool.db.View(func(tx *bolt.Tx) error {
		dead = tx.Bucket(bucketDead).Stats().KeyN
		return nil
	})
	if dead != 1 {
		t.Errorf("dead bucket: got %d records, want 1", dead)
	}
	if got := len(streamMsgs(t, js, DefaultStream)); got != 1 {
		t.Errorf("stream messages: got %d, want 1", got)
	}
	if got := p.logs.FilterMessage("spooled message over the nats max payload, moved to the dead bucket").Len(); got != 1 {
		t.Errorf("error logs about it: got %d, want 1", got)
	}
}
