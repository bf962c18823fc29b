package ledger

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// applyAll merges the bodies into a record of sid, the way the ledger does.
func applyAll(t testing.TB, sid string, bodies [][]byte) *Record {
	t.Helper()
	r := NewRecord(sid)
	for _, b := range bodies {
		e, why := Parse(b, 1)
		if why != "" {
			t.Fatalf("parse %s: ignored as %s", b, why)
		}
		r.Apply(e)
	}
	return r
}

// TestApplyAnyOrder is the property test: any shuffle of a session's
// notifications, with resends and redundant copies, gives byte-identical
// records, and merging records of any split of them gives the same again.
func TestApplyAnyOrder(t *testing.T) {
	for _, s := range testSessions("p") {
		t.Run(s.kind, func(t *testing.T) {
			var ordered [][]byte
			for i := range s.notes {
				ordered = append(ordered, s.body(i, "n", 1700000000000))
			}
			want := applyAll(t, s.sid, ordered).Marshal()
			for seed := range uint64(200) {
				rng := rand.New(rand.NewPCG(seed, 7))
				d := s.deliveries(rng)
				if got := applyAll(t, s.sid, d).Marshal(); !bytes.Equal(got, want) {
					t.Fatalf("seed %d: got\n%s\nwant\n%s", seed, got, want)
				}
				cut := rng.IntN(len(d) + 1)
				a, b := applyAll(t, s.sid, d[:cut]), applyAll(t, s.sid, d[cut:])
				a.Merge(b)
				if got := a.Marshal(); !bytes.Equal(got, want) {
					t.Fatalf("seed %d: merged halves got\n%s\nwant\n%s", seed, got, want)
				}
			}
		})
	}
}

// TestApplyIdempotent: applying an event again, or merging a record into
// itself, changes nothing.
func TestApplyIdempotent(t *testing.T) {
	for _, s := range testSessions("i") {
		rng := rand.New(rand.NewPCG(1, 2))
		d := s.deliveries(rng)
		r := applyAll(t, s.sid, d)
		want := r.Marshal()
		for _, b := range d {
			e, _ := Parse(b, 1)
			if r.Apply(e) {
				t.Errorf("%s: apply again: got a new event, want a duplicate", s.kind)
			}
		}
		r.Merge(applyAll(t, s.sid, d))
		if got := r.Marshal(); !bytes.Equal(got, want) {
			t.Errorf("%s: got\n%s\nwant\n%s", s.kind, got, want)
		}
		back, err := UnmarshalRecord(want)
		if err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if got := back.Marshal(); !bytes.Equal(got, want) {
			t.Errorf("%s: round trip got\n%s\nwant\n%s", s.kind, got, want)
		}
	}
}

// TestRecordMeaning pins what each kind of session's record says.
func TestRecordMeaning(t *testing.T) {
	type want struct {
		state, outcome string
		completed      bool
		flags          string
		files          string
		events         int
		uids           string
		failovers      int
	}
	wants := map[string]want{
		"composite":  {StateExited, OutcomeOK, true, "[]", "[x.m3u8 x.mp4]", 11, "[100]", 0},
		"individual": {StateExited, OutcomeOK, true, "[]", "[i_7.m3u8 i_7.ts]", 6, "[200]", 0},
		"web":        {StateExited, OutcomeOK, true, "[]", "[p1.mp4 p2.mp4 w.mp4]", 6, "[300]", 0},
		"failover":   {StateExited, OutcomeOK, true, "[]", "[bak0_f.m3u8 f.m3u8]", 6, "[400 401]", 1},
		"abnormal":   {StateExited, OutcomeFailed, true, "[abnormal_exit error]", "[]", 4, "[500]", 0},
	}
	for _, s := range testSessions("m") {
		r := applyAll(t, s.sid, s.deliveries(rand.New(rand.NewPCG(3, 4))))
		w := wants[s.kind]
		n := 0
		for _, c := range r.Events {
			n += c
		}
		got := want{r.State, r.Outcome, r.Completed, fmtList(r.Flags), fmtList(r.Files), n, fmtList(r.UIDs), r.Failovers}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", s.kind, got, w)
		}
	}
}

func fmtList(s []string) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v)
	}
	b.WriteByte(']')
	return b.String()
}
