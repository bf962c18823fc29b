package ledger

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// entry is what the ledger keeps in memory of one session: enough for its
// counts, its summary and its next due time, not the record (100,000 open
// sessions must fit in a small daemon, and the Go heap grows to about twice
// what is live, so every byte here counts twice in the daemon's RSS). The
// sid of a hashed key lives in index.sids, not here: nearly every key is
// its sid.
type entry struct {
	rev   uint64
	next  int64 // earliest due time (unix ms), 0: none
	first int64
	last  int64
	cname string
	bits  uint8 // bitExited, bitCompleted, bitFailed
	flags uint8 // one bit per AllFlags
}

const (
	bitExited uint8 = 1 << iota
	bitCompleted
	bitFailed
)

// indexView is the part of a record the index decodes; the rest (files,
// seen) is skipped by the decoder without being kept.
type indexView struct {
	SID           string   `json:"sid"`
	Cname         string   `json:"cname"`
	Outcome       string   `json:"outcome"`
	Completed     bool     `json:"completed"`
	Flags         []string `json:"flags"`
	ExitBy        []string `json:"exit_by"`
	UploadNotices []string `json:"upload_notices"`
	FirstSeenMs   int64    `json:"first_seen_ms"`
	LastSeenMs    int64    `json:"last_seen_ms"`
	ExitMs        int64    `json:"exit_ms"`
	UploadMs      int64    `json:"upload_ms"`
}

// index is the in-memory view of the bucket, fed by a watch of the bucket
// (every gateway's writes) and by this ledger's own writes.
type index struct {
	grace, stall time.Duration

	mu        sync.Mutex
	m         map[string]entry
	sids      map[string]string // sid of each hashed key (a sid a key cannot hold)
	exited    int
	completed int
	flagged   [4]int
}

func newIndex(grace, stall time.Duration) *index {
	return &index{grace: grace, stall: stall, m: map[string]entry{}, sids: map[string]string{}}
}

// entryOf builds the entry of a record at revision rev.
func (ix *index) entryOf(rev uint64, v *indexView) entry {
	r := Record{ExitBy: v.ExitBy, UploadNotices: v.UploadNotices, Flags: v.Flags,
		LastSeenMs: v.LastSeenMs, ExitMs: v.ExitMs, UploadMs: v.UploadMs}
	d := DueTimes(&r, ix.grace, ix.stall)
	e := entry{rev: rev, cname: v.Cname, first: v.FirstSeenMs, last: v.LastSeenMs, next: d.Next()}
	if len(v.ExitBy) > 0 {
		e.bits |= bitExited
	}
	if v.Completed {
		e.bits |= bitCompleted
	}
	if v.Outcome == OutcomeFailed {
		e.bits |= bitFailed
	}
	for i, f := range AllFlags {
		if slices.Contains(v.Flags, f) {
			e.flags |= 1 << i
		}
	}
	return e
}

// putJSON indexes a stored record; a revision older than the one indexed
// (a watch behind this ledger's own write) is ignored.
func (ix *index) putJSON(key string, rev uint64, value []byte) error {
	var v indexView
	if err := json.Unmarshal(value, &v); err != nil {
		return err
	}
	ix.put(key, v.SID, ix.entryOf(rev, &v))
	return nil
}

// holds reports whether the index already holds key at revision rev or a
// later one: the watch then skips decoding the record (this ledger's own
// writes come back on the watch after putRecord indexed them).
func (ix *index) holds(key string, rev uint64) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e, ok := ix.m[key]
	return ok && e.rev >= rev
}

// putRecord indexes a record this ledger has just stored.
func (ix *index) putRecord(key string, rev uint64, r *Record) {
	v := indexView{SID: r.SID, Cname: r.Cname, Outcome: r.Outcome, Completed: r.Completed, Flags: r.Flags,
		ExitBy: r.ExitBy, UploadNotices: r.UploadNotices, FirstSeenMs: r.FirstSeenMs,
		LastSeenMs: r.LastSeenMs, ExitMs: r.ExitMs, UploadMs: r.UploadMs}
	ix.put(key, r.SID, ix.entryOf(rev, &v))
}

// put indexes e under key, unless the index holds a later revision. The
// key is copied when new: a key cut from a message's subject would keep
// the whole subject alive.
func (ix *index) put(key, sid string, e entry) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old, ok := ix.m[key]
	if ok && old.rev > e.rev {
		return
	}
	if ok {
		ix.count(old, -1)
	} else {
		key = strings.Clone(key)
	}
	if _, plain := SIDOfKey(key); !plain && sid != "" {
		ix.sids[key] = sid
	}
	ix.m[key] = e
	ix.count(e, 1)
}

// remove forgets a deleted, purged or expired record.
func (ix *index) remove(key string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.m[key]; ok {
		ix.count(old, -1)
		delete(ix.m, key)
		delete(ix.sids, key)
	}
}

func (ix *index) count(e entry, d int) {
	if e.bits&bitExited != 0 {
		ix.exited += d
	}
	if e.bits&bitCompleted != 0 {
		ix.completed += d
	}
	for i := range AllFlags {
		if e.flags&(1<<i) != 0 {
			ix.flagged[i] += d
		}
	}
}

// due returns up to n keys whose earliest due time is at or before nowMs.
func (ix *index) dueKeys(nowMs int64, n int) []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var keys []string
	for k, e := range ix.m {
		if d := e.next; d > 0 && d <= nowMs {
			keys = append(keys, k)
			if len(keys) >= n {
				break
			}
		}
	}
	return keys
}

// states returns the sessions recording and exited.
func (ix *index) states() (recording, exited int) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.m) - ix.exited, ix.exited
}

// counts returns sessions by state, completed, and flagged by reason.
func (ix *index) counts() (recording, exited, completed int, flagged map[string]int) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	flagged = map[string]int{}
	for i, f := range AllFlags {
		flagged[f] = ix.flagged[i]
	}
	return len(ix.m) - ix.exited, ix.exited, ix.completed, flagged
}

// Summary is one open or flagged session, as `-sessions` lists it.
type Summary struct {
	Key         string   `json:"key"`
	SID         string   `json:"sid"`
	Cname       string   `json:"cname"`
	State       string   `json:"state"`
	Outcome     string   `json:"outcome"`
	Completed   bool     `json:"completed"`
	Flags       []string `json:"flags"`
	FirstSeenMs int64    `json:"first_seen_ms"`
	LastSeenMs  int64    `json:"last_seen_ms"`
}

// summaries lists the sessions still recording or carrying a flag, the
// longest silent first.
func (ix *index) summaries() []Summary {
	ix.mu.Lock()
	var out []Summary
	for k, e := range ix.m {
		if e.bits&bitExited != 0 && e.flags == 0 {
			continue
		}
		s := Summary{Key: k, SID: ix.sids[k], Cname: e.cname, State: StateRecording, Flags: []string{},
			Completed: e.bits&bitCompleted != 0, FirstSeenMs: e.first, LastSeenMs: e.last}
		if sid, ok := SIDOfKey(k); ok {
			s.SID = sid
		}
		if e.bits&bitExited != 0 {
			s.State, s.Outcome = StateExited, OutcomeOK
			if e.bits&bitFailed != 0 {
				s.Outcome = OutcomeFailed
			}
		}
		for i, f := range AllFlags {
			if e.flags&(1<<i) != 0 {
				s.Flags = append(s.Flags, f)
			}
		}
		out = append(out, s)
	}
	ix.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].LastSeenMs != out[j].LastSeenMs {
			return out[i].LastSeenMs < out[j].LastSeenMs
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// sidOf is the sid the index holds for a hashed key.
func (ix *index) sidOf(key string) string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.sids[key]
}
