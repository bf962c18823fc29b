package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

func started(uid string) note {
	return note{40, 1, uid, map[string]any{"msgName": "recorder_started", "status": 0}, false}
}

func exit(uid string, status int) note {
	return note{11, 0, uid, map[string]any{"msgName": "session_exit", "exitStatus": status}, false}
}

func uploaded(uid string, names ...string) note {
	return note{31, 2, uid, map[string]any{"msgName": "uploaded", "status": 0, "fileList": files(names...)}, false}
}

func bodies(s testSession) [][]byte {
	var out [][]byte
	for i := range s.notes {
		out = append(out, s.body(i, fmt.Sprintf("%s-%d", s.sid, i), s.base+int64(i)))
	}
	return out
}

// TestLedgerTimeFlags: with durations of seconds, an exit without upload
// is flagged no_upload and completed, a quiet session is flagged silent,
// an upload without exit counts as a normal exit, each within a few
// seconds of being due; an upload after no_upload sets late_upload and
// completes nothing twice.
func TestLedgerTimeFlags(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	const grace, stall = time.Second, 3 * time.Second
	tl := runLedger(t, n, testLedgerConfig(grace, stall))
	now := time.Now().UnixMilli()
	a := testSession{sid: "noupload", cname: "c", base: now, notes: []note{started("1"), exit("1", 0)}}
	b := testSession{sid: "quiet", cname: "c", base: now, notes: []note{started("2")}}
	c := testSession{sid: "noexit", cname: "c", base: now, notes: []note{started("3"), uploaded("3", "c.m3u8")}}
	for _, s := range []testSession{a, b, c} {
		publishBodies(t, js, bodies(s))
	}
	want := map[string]int{
		"completed//noupload": 1, "flagged/no_upload/noupload": 1,
		"flagged/silent/quiet": 1, "completed//noexit": 1,
	}
	waitDerived(t, js, want, 10*time.Second)
	due := map[string]int64{"noupload": now + 1 + grace.Milliseconds(), "quiet": now + stall.Milliseconds(), "noexit": now + 1 + grace.Milliseconds()}
	for _, m := range derived(t, js) {
		var body struct {
			SID string `json:"sid"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("derived body: %v", err)
		}
		if late := m.Time.UnixMilli() - due[body.SID]; late < 0 || late > 3000 {
			t.Errorf("%s of %s: raised %d ms after due, want 0 to 3000", m.Subject, body.SID, late)
		}
	}
	ra, _, err := record(js, "noupload")
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	if !ra.Completed || ra.Outcome != OutcomeOK || !ra.HasFlag(FlagNoUpload) || ra.LateUpload {
		t.Errorf("noupload record: got %+v, want completed ok with no_upload, no late_upload", ra)
	}
	rc, _, _ := record(js, "noexit")
	if rc.State != StateExited || !slices.Equal(rc.ExitBy, []string{exitInferred}) || rc.HasFlag(FlagSilent) {
		t.Errorf("noexit record: got state %s exit_by %v flags %v, want exited by inferred, not silent", rc.State, rc.ExitBy, rc.Flags)
	}

	late := testSession{sid: "noupload", cname: "c", base: now + 5000, notes: []note{uploaded("1", "late.mp4")}}
	publishBodies(t, js, bodies(late))
	eventually(t, 5*time.Second, "late upload", func() error {
		r, _, err := record(js, "noupload")
		if err != nil {
			return err
		}
		if !r.LateUpload || !slices.Equal(r.Files, []string{"late.mp4"}) {
			return fmt.Errorf("got late_upload %v files %v, want true [late.mp4]", r.LateUpload, r.Files)
		}
		return nil
	})
	waitCaughtUp(t, tl, 5*time.Second)
	if got := countDerived(t, js); !maps.Equal(got, want) {
		t.Errorf("after the late upload: got %v, want %v", got, want)
	}
}

// TestLedgerNoFlagWhileBehind: with the consumer paused and a notification
// waiting, a session long due is not flagged; once the ledger catches up,
// it is.
func TestLedgerNoFlagWhileBehind(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	tl := runLedger(t, n, testLedgerConfig(2*time.Second, time.Hour))
	now := time.Now().UnixMilli()
	a := testSession{sid: "behind", cname: "c", base: now, notes: []note{started("1"), exit("1", 0)}}
	publishBodies(t, js, bodies(a))
	eventually(t, 5*time.Second, "record stored", func() error {
		_, _, err := record(js, "behind")
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PauseConsumer(ctx, "AGORA_NCS", ConsumerName, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("pause consumer: %v", err)
	}
	other := testSession{sid: "other", cname: "c", base: now, notes: []note{started("2")}}
	publishBodies(t, js, bodies(other))
	eventually(t, 5*time.Second, "behind", func() error {
		if s := tl.Status(); s.CaughtUp || s.LagMessages == 0 || s.LagSeconds <= 0 {
			return fmt.Errorf("got caught_up %v lag %d messages %v s, want behind", s.CaughtUp, s.LagMessages, s.LagSeconds)
		}
		return nil
	})
	if got := tl.metric(t, "ncs_gateway_ledger_caught_up"); got != 0 {
		t.Errorf("caught_up gauge while behind: got %v, want 0", got)
	}
	for time.Now().UnixMilli() < now+4000 { // due at now+2s; ticks every second
		if got := countDerived(t, js); len(got) != 0 {
			t.Fatalf("while behind: got %v, want nothing derived", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := js.ResumeConsumer(ctx, "AGORA_NCS", ConsumerName); err != nil {
		t.Fatalf("resume consumer: %v", err)
	}
	waitDerived(t, js, map[string]int{"completed//behind": 1, "flagged/no_upload/behind": 1}, 5*time.Second)
}
