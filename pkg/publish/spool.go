package publish

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMessages = []byte("messages")
	// bucketDead keeps records that can never be published (undecodable, or
	// over the server's max payload) for an operator to inspect, instead of
	// deleting them or retrying them forever.
	bucketDead = []byte("dead")
)

// spoolKeySize is the size of a bbolt key, counted in the spool's bytes.
const spoolKeySize = 8

// spoolBatchDelay is how long bbolt waits for concurrent spool writes to
// join one transaction (one fsync); short because every spooled webhook
// request waits for it.
const spoolBatchDelay = 2 * time.Millisecond

// spool is the durable local queue of messages JetStream did not take: a
// bbolt file whose every committed write is fsynced.
type spool struct {
	db       *bolt.DB
	maxBytes int64

	mu     sync.Mutex // guards the fields below
	depth  int64
	bytes  int64     // encoded values and keys stored, plus writes in flight
	oldest time.Time // spooled-at time of the oldest record; zero when empty
	broken bool      // the last write failed
}

// spoolStats is a consistent snapshot of the spool's counters.
type spoolStats struct {
	depth  int64
	bytes  int64
	oldest time.Time
}

// oldestAge is how long the oldest message has waited, 0 when empty.
func (s spoolStats) oldestAge() time.Duration {
	if s.oldest.IsZero() {
		return 0
	}
	return max(time.Since(s.oldest), 0)
}

// spooledMsg is a record read from the spool with its key and stored size.
type spooledMsg struct {
	key  uint64
	size int64
	rec  spoolRecord
}

// openSpool opens (or creates) the spool file and counts what it holds, so a
// spool left by a crash is drained after a restart.
func openSpool(path string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	// The timeout turns a second daemon on the same state_dir (flock held)
	// into an error instead of a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	db.MaxBatchDelay = spoolBatchDelay
	s := &spool{db: db, maxBytes: maxBytes}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketDead); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketMessages)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			s.depth++
			s.bytes += int64(len(k) + len(v))
		}
		s.oldest = firstSpooledAt(b)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("read spool %s: %w", path, err)
	}
	return s, nil
}

// firstSpooledAt returns the spooled-at time of the first record of b, or the
// zero time when b is empty; an undecodable record counts as just spooled.
func firstSpooledAt(b *bolt.Bucket) time.Time {
	k, v := b.Cursor().First()
	if k == nil {
		return time.Time{}
	}
	r, err := decodeRecord(v)
	if err != nil {
		return time.Now()
	}
	return r.SpooledAt
}

// put stores m durably: it returns only after the transaction holding m has
// been fsynced. Concurrent calls share a transaction. It returns ErrSpoolFull
// when m would take the spool over its size limit.
func (s *spool) put(m Message, now time.Time) error {
	size := int64(encodedSize(m) + spoolKeySize)
	s.mu.Lock()
	if s.bytes+size > s.maxBytes {
		s.mu.Unlock()
		return ErrSpoolFull
	}
	s.bytes += size // reserve, so concurrent writers cannot overshoot together
	s.mu.Unlock()

	val := encodeRecord(make([]byte, 0, size-spoolKeySize), m, now)
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), val)
	})

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bytes -= size
		s.broken = true
		return fmt.Errorf("write spool: %w", err)
	}
	s.broken = false
	s.depth++
	if s.oldest.IsZero() || now.Before(s.oldest) {
		s.oldest = now
	}
	return nil
}

// peek returns up to maxMsgs records, oldest first, stopping once maxBytes
// is reached (always at least one). Undecodable records are moved to the
// dead bucket and reported in moved.
func (s *spool) peek(maxMsgs int, maxBytes int64) (msgs []spooledMsg, moved int, err error) {
	var bad [][]byte
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMessages).Cursor()
		var total int64
		for k, v := c.First(); k != nil && len(msgs) < maxMsgs; k, v = c.Next() {
			r, err := decodeRecord(v)
			if err != nil || len(k) != spoolKeySize {
				bad = append(bad, append([]byte{}, k...))
				continue
			}
			size := int64(len(k) + len(v))
			if len(msgs) > 0 && total+size > maxBytes {
				break
			}
			total += size
			msgs = append(msgs, spooledMsg{key: binary.BigEndian.Uint64(k), size: size, rec: r})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read spool: %w", err)
	}
	if len(bad) > 0 {
		if err := s.quarantine(bad); err != nil {
			return msgs, 0, err
		}
	}
	return msgs, len(bad), nil
}

// quarantine moves records from the messages bucket to the dead bucket.
func (s *spool) quarantine(keys [][]byte) error {
	return s.removeWith(func(b, dead *bolt.Bucket) (n int, freed int64, err error) {
		for _, k := range keys {
			v := b.Get(k)
			if v == nil {
				continue
			}
			if err := dead.Put(k, append([]byte{}, v...)); err != nil {
				return 0, 0, fmt.Errorf("quarantine spool record: %w", err)
			}
			if err := b.Delete(k); err != nil {
				return 0, 0, fmt.Errorf("quarantine spool record: %w", err)
			}
			n++
			freed += int64(len(k) + len(v))
		}
		return n, freed, nil
	})
}

// remove deletes the records with the given keys in one transaction.
func (s *spool) remove(keys []uint64) error {
	if len(keys) == 0 {
		return nil
	}
	return s.removeWith(func(b, _ *bolt.Bucket) (n int, freed int64, err error) {
		var k [spoolKeySize]byte
		for _, key := range keys {
			binary.BigEndian.PutUint64(k[:], key)
			v := b.Get(k[:])
			if v == nil {
				continue
			}
			freed += int64(spoolKeySize + len(v))
			n++
			if err := b.Delete(k[:]); err != nil {
				return 0, 0, fmt.Errorf("delete forwarded spool record: %w", err)
			}
		}
		return n, freed, nil
	})
}

// removeWith runs fn, which takes records out of the messages bucket, in
// one transaction and updates the counters. It holds s.mu throughout: a put
// that commits after this transaction then updates the counters after it
// too, so the oldest time and the byte count never miss a record.
func (s *spool) removeWith(fn func(messages, dead *bolt.Bucket) (int, int64, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		n      int
		freed  int64
		oldest time.Time
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages)
		var err error
		n, freed, err = fn(b, tx.Bucket(bucketDead))
		if err != nil {
			return err
		}
		oldest = firstSpooledAt(b)
		return nil
	})
	if err != nil {
		return err
	}
	s.depth -= int64(n)
	s.bytes -= freed
	s.oldest = oldest
	s.broken = false // a write transaction committed: the file takes writes
	return nil
}

// isBroken reports whether the last write failed and nothing has been
// written since.
func (s *spool) isBroken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}

// probe tries a write transaction that changes nothing a reader sees (it
// rewrites the messages bucket's header), and clears broken when it
// commits: the spool is writable again although no message arrived.
func (s *spool) probe() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages)
		return b.SetSequence(b.Sequence())
	})
	if err != nil {
		return fmt.Errorf("probe spool: %w", err)
	}
	s.mu.Lock()
	s.broken = false
	s.mu.Unlock()
	return nil
}

// stats returns a snapshot of the counters.
func (s *spool) stats() spoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return spoolStats{depth: s.depth, bytes: s.bytes, oldest: s.oldest}
}

// writable reports whether the spool can probably take another message: it
// is below its limit and its last write succeeded.
func (s *spool) writable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.broken && s.bytes < s.maxBytes
}

// close closes the bbolt file; pending transactions finish first.
func (s *spool) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
