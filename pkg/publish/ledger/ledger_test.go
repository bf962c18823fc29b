package ledger

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// sessionLoad is a set of sessions as the network delivers them.
type sessionLoad struct {
	sessions []testSession
	bySID    map[string][][]byte
	all      [][]byte
}

func newLoad(tag string, seed uint64, base int64) sessionLoad {
	rng := rand.New(rand.NewPCG(seed, 11))
	ld := sessionLoad{sessions: testSessionsAt(tag, base), bySID: map[string][][]byte{}}
	for _, s := range ld.sessions {
		d := s.deliveries(rng)
		ld.bySID[s.sid] = d
		ld.all = append(ld.all, d...)
	}
	rng.Shuffle(len(ld.all), func(i, j int) { ld.all[i], ld.all[j] = ld.all[j], ld.all[i] })
	return ld
}

// wantDerived is one completed per session and a flag per reason of the
// abnormal one.
func (ld sessionLoad) wantDerived() map[string]int {
	want := map[string]int{}
	for _, s := range ld.sessions {
		want["completed//"+s.sid] = 1
		if s.kind == "abnormal" {
			want["flagged/abnormal_exit/"+s.sid] = 1
			want["flagged/error/"+s.sid] = 1
		}
	}
	return want
}

// waitRecords waits until every session's stored record is byte for byte
// the pure merge of its deliveries.
func (ld sessionLoad) waitRecords(t *testing.T, js jetstream.JetStream, within time.Duration) {
	t.Helper()
	for _, s := range ld.sessions {
		want := applyAll(t, s.sid, ld.bySID[s.sid]).Marshal()
		eventually(t, within, "record of "+s.kind, func() error {
			_, got, err := record(js, s.sid)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("got\n%s\nwant\n%s", got, want)
			}
			return nil
		})
	}
}

func waitDerived(t *testing.T, js jetstream.JetStream, want map[string]int, within time.Duration) {
	t.Helper()
	eventually(t, within, "derived notifications", func() error {
		if got := countDerived(t, js); !maps.Equal(got, want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}

func waitCaughtUp(t *testing.T, tl *testLedger, within time.Duration) {
	t.Helper()
	eventually(t, within, "caught up", func() error {
		if s := tl.Status(); !s.CaughtUp || !s.IndexLoaded {
			return fmt.Errorf("got caught_up %v index_loaded %v lag %d, want caught up and loaded", s.CaughtUp, s.IndexLoaded, s.LagMessages)
		}
		return nil
	})
}

// TestLedgerFlows: every kind of session, shuffled with resends and
// copies, among bodies the ledger must ignore, gives the pure merge's
// records, one completed per session and one flag per reason; replaying
// everything changes nothing and derives nothing.
func TestLedgerFlows(t *testing.T) {
	n := startNATS(t)
	js := n.client()
	tl := runLedger(t, n, testLedgerConfig(time.Hour, 26*time.Hour))
	ld := newLoad("f", 1, time.Now().UnixMilli())
	other := [][]byte{
		[]byte(`{"noticeId":"rtc1","productId":1,"eventType":101,"notifyMs":1,"payload":{"channelName":"x"}}`),
		[]byte(`this is not json`),
		[]byte(`{"noticeId":"nosid","productId":3,"eventType":40,"notifyMs":1,"payload":{"cname":"x"}}`),
	}
	publishBodies(t, js, append(slices.Clone(ld.all), other...))
	ld.waitRecords(t, js, 10*time.Second)
	waitDerived(t, js, ld.wantDerived(), 5*time.Second)
	waitCaughtUp(t, tl, 5*time.Second)

	before := tl.metric(t, "ncs_gateway_ledger_events_total", "result", "duplicate")
	publishBodies(t, js, ld.all[:0]) // nothing
	replay := make([][]byte, 0, len(ld.all))
	for _, b := range ld.all {
		replay = append(replay, append(bytes.Clone(b), ' ')) // a new message, the same body
	}
	publishBodies(t, js, replay)
	eventually(t, 5*time.Second, "replay read", func() error {
		if got := tl.metric(t, "ncs_gateway_ledger_events_total", "result", "duplicate") - before; got < float64(len(replay)) {
			return fmt.Errorf("got %v duplicates, want %d", got, len(replay))
		}
		return nil
	})
	waitCaughtUp(t, tl, 5*time.Second)
	ld.waitRecords(t, js, time.Second)
	waitDerived(t, js, ld.wantDerived(), time.Second)

	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"ncs_gateway_ledger_completed_total", "outcome", "ok", 4},
		{"ncs_gateway_ledger_completed_total", "outcome", "failed", 1},
		{"ncs_gateway_ledger_flagged_total", "reason", "abnormal_exit", 1},
		{"ncs_gateway_ledger_flagged_total", "reason", "error", 1},
		{"ncs_gateway_ledger_flagged_total", "reason", "no_upload", 0},
		{"ncs_gateway_ledger_events_total", "result", "ignored", 2}, // product 1 is not even read
		{"ncs_gateway_ledger_anomalies_total", "kind", "malformed", 2},
		{"ncs_gateway_ledger_sessions", "state", "exited", 5},
		{"ncs_gateway_ledger_sessions", "state", "recording", 0},
		{"ncs_gateway_ledger_lag_messages", "", "", 0},
		{"ncs_gateway_ledger_caught_up", "", "", 1},
		{"ncs_gateway_ledger_enabled", "", "", 1},
	} {
		var got float64
		if c.label == "" {
			got = tl.metric(t, c.name)
		} else {
			got = tl.metric(t, c.name, c.label, c.value)
		}
		if got != c.want {
			t.Errorf("%s{%s=%q}: got %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	if got := tl.metric(t, "ncs_gateway_ledger_anomalies_total", "kind", "unknown_event"); got < 2 {
		t.Errorf("unknown_event anomalies: got %v, want at least 2 (34 and 110)", got)
	}
	st := tl.Status()
	if st.Completed != 5 || st.Flagged[FlagAbnormalExit] != 1 || st.Sessions[StateExited] != 5 {
		t.Errorf("status: got %+v, want 5 completed, 5 exited, 1 abnormal_exit", st)
	}
	if got := tl.Sessions(); len(got) != 1 || got[0].SID != "sidfabnormal" {
		t.Errorf("sessions: got %+v, want only the flagged sidfabnormal", got)
	}
}
