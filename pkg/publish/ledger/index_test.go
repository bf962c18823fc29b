package ledger

import (
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestIndexCompactEntry: the index keeps the sid of a hashed key aside
// (the summary and a due flag need it), forgets it with the record, skips
// revisions it already holds, and copies a key cut from a longer string.
func TestIndexCompactEntry(t *testing.T) {
	ix := newIndex(time.Hour, 26*time.Hour)
	long := strings.Repeat("s", maxEncodeSID+1)
	hashed, _ := Key(long)
	if _, ok := SIDOfKey(hashed); ok {
		t.Fatalf("Key of a %d-byte sid: got %q, want a hashed key", len(long), hashed)
	}
	r := NewRecord(long) // recording: listed by summaries
	ix.putRecord(hashed, 5, r)
	if got := ix.sidOf(hashed); got != long {
		t.Errorf("sid of a hashed key: got %.20q, want %.20q", got, long)
	}
	if s := ix.summaries(); len(s) != 1 || s[0].SID != long {
		t.Errorf("summaries: got %+v, want one of sid %.20q", s, long)
	}
	if !ix.holds(hashed, 5) || !ix.holds(hashed, 4) || ix.holds(hashed, 6) {
		t.Errorf("holds at revision 5: got 4:%v 5:%v 6:%v, want true true false", ix.holds(hashed, 4), ix.holds(hashed, 5), ix.holds(hashed, 6))
	}
	ix.remove(hashed)
	if got := len(ix.sids); got != 0 {
		t.Errorf("sids after remove: got %d, want 0", got)
	}

	// A plain key holds its sid: nothing aside.
	subject := "$KV." + DefaultBucket + ".plainsid"
	key := strings.TrimPrefix(subject, "$KV."+DefaultBucket+".")
	if err := ix.putJSON(key, 7, NewRecord("plainsid").Marshal()); err != nil {
		t.Fatalf("putJSON: %v", err)
	}
	if got := len(ix.sids); got != 0 {
		t.Errorf("sids of a plain key: got %d, want 0", got)
	}
	for k := range ix.m {
		if unsafe.StringData(k) == unsafe.StringData(key) {
			t.Errorf("index key %q: got the subject's bytes, want a copy", k)
		}
	}
}
