package ledger

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLedgerBadInput: a huge fileList, a sid no key can hold as is, a
// fileList of the wrong type, unknown event types and an upload before any
// start are each counted and logged, and every record is still stored.
func TestLedgerBadInput(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	tl := runLedger(t, n, testLedgerConfig(time.Hour, 26*time.Hour))
	now := time.Now().UnixMilli()
	var many []string
	for i := range 5000 {
		many = append(many, fmt.Sprintf("f%05d.ts", i))
	}
	weird := "a.b/c=d é*>"
	long := strings.Repeat("x", 600)
	sessions := []testSession{
		{sid: "huge", cname: "c", base: now, notes: []note{started("1"), uploaded("1", many...), exit("1", 0)}},
		{sid: weird, cname: "c", base: now, notes: []note{started("1")}},
		{sid: long, cname: "c", base: now, notes: []note{started("1")}},
		{sid: "wrongtype", cname: "c", base: now, notes: []note{
			{31, 2, "1", map[string]any{"msgName": "uploaded", "fileList": 42}, false},
			{32, 2, "1", map[string]any{"msgName": "backuped", "fileList": []any{7, map[string]any{"name": "x"}, "ok.mp4"}}, false},
		}},
		{sid: "unknown", cname: "c", base: now, notes: []note{started("1"), {34, 2, "1", map[string]any{"msgName": "STSExpired"}, false}, {999, 9, "1", nil, false}}},
	}
	for _, s := range sessions {
		publishBodies(t, js, bodies(s))
	}
	publishBodies(t, js, [][]byte{[]byte(`{"payload":`), []byte(strings.Repeat("[", 10000))})
	checks := map[string]func(r *Record) error{
		"huge": func(r *Record) error {
			if len(r.Files) != maxFiles || !r.FilesTruncated || r.Files[0] != "f00000.ts" {
				return fmt.Errorf("got %d files truncated %v, want %d from f00000.ts, truncated", len(r.Files), r.FilesTruncated, maxFiles)
			}
			return nil
		},
		weird: func(r *Record) error { return want(r.SID == weird, "sid %q, want %q", r.SID, weird) },
		long:  func(r *Record) error { return want(r.SID == long, "sid of %d bytes, want %d", len(r.SID), len(long)) },
		"wrongtype": func(r *Record) error {
			return want(r.Completed == false && len(r.Files) == 1 && r.Files[0] == "ok.mp4" && len(r.UploadNotices) == 2,
				"files %v notices %v, want [ok.mp4] [31 32]", r.Files, r.UploadNotices)
		},
		"unknown": func(r *Record) error {
			return want(r.Events["34"] == 1 && r.Events["999"] == 1, "events %v, want 34 and 999 counted", r.Events)
		},
	}
	for sid, check := range checks {
		eventually(t, 10*time.Second, "record of "+sid[:min(len(sid), 12)], func() error {
			r, _, err := record(js, sid)
			if err != nil {
				return err
			}
			return check(r)
		})
	}
	waitCaughtUp(t, tl, 5*time.Second)
	for kind, min := range map[string]float64{
		anomalyBadFileList: 2, anomalyFilesTruncated: 1, anomalyEncodedKey: 2,
		anomalyUnknownEvent: 2, anomalyNoStart: 1, anomalyMalformed: 2,
	} {
		if got := tl.metric(t, "ncs_gateway_ledger_anomalies_total", "kind", kind); got < min {
			t.Errorf("anomalies{kind=%s}: got %v, want at least %v", kind, got, min)
		}
		if tl.logs.FilterField(zapKind(kind)).Len() == 0 {
			t.Errorf("log lines of kind %s: got none, want one", kind)
		}
	}
	var open []string
	for _, s := range tl.Sessions() {
		open = append(open, s.SID)
	}
	if !containsAll(open, weird, long, "unknown") {
		t.Errorf("open sessions: got %q, want the weird, long and unknown ones", open)
	}
}

func want(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("got "+format, args...)
}

func containsAll(s []string, vs ...string) bool {
	for _, v := range vs {
		found := false
		for _, x := range s {
			found = found || x == v
		}
		if !found {
			return false
		}
	}
	return true
}
