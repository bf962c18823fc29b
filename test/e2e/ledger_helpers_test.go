package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// The session ledger's end-to-end tests drive whole Cloud Recording
// sessions (NCS.md section 5) through the built daemon and read what the
// ledger made of them from NATS, as a consumer would.

// ledgerEvent is one notification of a test session, before resends.
type ledgerEvent struct {
	eventType   int
	serviceType int
	uid         string
	sendts      int64
	details     string // the JSON object of payload.details
}

// ledgerSession is one sid's notifications and what the ledger must
// conclude from them.
type ledgerSession struct {
	sid, cname string
	events     []ledgerEvent
	completed  bool     // one session.completed is due
	outcome    string   // "ok", "failed", or "" while recording
	flags      []string // the session.flagged reasons due
	counts     map[string]int
}

// ledgerSessions builds one session of each kind the ledger tells apart,
// plus n plain ones. Sessions that must be judged by their due time (a
// lost 31 or 11, silence) carry sendts in the past, so they are due as soon
// as the ledger has caught up; the others are fresh, so the test's own
// duration never makes them due.
func ledgerSessions(tag string, n int) []*ledgerSession {
	now := time.Now().UnixMilli()
	past := now - int64(10*time.Minute/time.Millisecond)
	files := func(names ...string) string {
		var parts []string
		for _, f := range names {
			parts = append(parts, fmt.Sprintf(`{"fileName":%q,"trackType":"audio_and_video","uid":"0","mixedAllUser":true,"isPlayable":true,"sliceStartTime":%d}`, f, now))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	mk := func(kind string, i int) *ledgerSession {
		sid := fmt.Sprintf("%s%s%03d", tag, kind, i)
		return &ledgerSession{sid: sid, cname: "room-" + sid}
	}
	add := func(s *ledgerSession, typ, svc int, uid string, ts int64, details string) {
		s.events = append(s.events, ledgerEvent{eventType: typ, serviceType: svc, uid: uid, sendts: ts, details: details})
	}
	normal := func(s *ledgerSession, ts int64, exit string) {
		add(s, 40, 1, "111", ts, `{"msgName":"recorder_started","status":0}`)
		add(s, 30, 2, "111", ts, `{"msgName":"uploader_started","status":0}`)
		add(s, 41, 1, "111", ts, `{"msgName":"recorder_leave","leaveCode":16}`)
		add(s, 31, 2, "111", ts, `{"msgName":"uploaded","status":0,"fileList":`+files(s.sid+"_"+s.cname+".m3u8", s.sid+"_"+s.cname+"_0.ts")+`}`)
		add(s, 11, 0, "111", ts, `{"msgName":"session_exit","exitStatus":`+exit+`}`)
	}
	var out []*ledgerSession
	for i := range n {
		s := mk("normal", i)
		normal(s, now, "0")
		s.completed, s.outcome = true, "ok"
		s.counts = map[string]int{"40": 1, "30": 1, "41": 1, "31": 1, "11": 1}
		out = append(out, s)
	}
	s := mk("abnormal", 0)
	add(s, 40, 1, "111", now, `{"msgName":"recorder_started","status":0}`)
	add(s, 32, 2, "111", now, `{"msgName":"backuped","status":0,"fileList":`+files("abnormal.m3u8")+`}`)
	add(s, 11, 0, "111", now, `{"msgName":"session_exit","exitStatus":1}`)
	s.completed, s.outcome, s.flags = true, "failed", []string{"abnormal_exit"}
	out = append(out, s)

	s = mk("failover", 0)
	add(s, 40, 1, "111", now, `{"msgName":"recorder_started","status":0}`)
	add(s, 12, 0, "111", now, `{"msgName":"session_failover","newUid":222}`)
	add(s, 40, 1, "222", now, `{"msgName":"recorder_started","status":0}`)
	add(s, 31, 2, "222", now, `{"msgName":"uploaded","status":0,"fileList":`+files("bak1_"+s.sid+".m3u8")+`}`)
	add(s, 11, 0, "222", now, `{"msgName":"session_exit","exitStatus":0}`)
	s.completed, s.outcome = true, "ok"
	s.counts = map[string]int{"40": 2, "12": 1, "31": 1, "11": 1}
	out = append(out, s)

	s = mk("web", 0)
	add(s, 70, 6, "111", now, `{"msgName":"web_recorder_started","recorderStartTime":`+fmt.Sprint(now)+`}`)
	add(s, 71, 6, "111", now, `{"msgName":"web_recorder_stopped","code":0,"message":"","details":{},"fileList":[{"filename":"web.mp4"}]}`)
	add(s, 31, 2, "111", now, `{"msgName":"uploaded","status":0}`)
	add(s, 11, 0, "111", now, `{"msgName":"session_exit","exitStatus":0}`)
	s.completed, s.outcome = true, "ok"
	out = append(out, s)

	s = mk("error", 0)
	add(s, 40, 1, "111", now, `{"msgName":"recorder_started","status":0}`)
	add(s, 1, 0, "111", now, `{"msgName":"cloud_recording_error","module":1,"errorLevel":3,"errorCode":53,"stat":0,"errorMsg":"x"}`)
	add(s, 31, 2, "111", now, `{"msgName":"uploaded","status":0,"fileList":`+files("error.m3u8")+`}`)
	add(s, 11, 0, "111", now, `{"msgName":"session_exit","exitStatus":0}`)
	s.completed, s.outcome, s.flags = true, "ok", []string{"error"}
	out = append(out, s)

	// A lost 31: exited long ago and no upload notice, so no_upload is due.
	s = mk("lost31x", 0)
	add(s, 40, 1, "111", past, `{"msgName":"recorder_started","status":0}`)
	add(s, 33, 2, "111", past, `{"msgName":"uploading_progress","progress":10000}`)
	add(s, 11, 0, "111", past, `{"msgName":"session_exit","exitStatus":0}`)
	s.completed, s.outcome, s.flags = true, "ok", []string{"no_upload"}
	out = append(out, s)

	// A lost 11: uploaded long ago and no exit, so the exit is inferred.
	s = mk("lost11x", 0)
	add(s, 40, 1, "111", past, `{"msgName":"recorder_started","status":0}`)
	add(s, 31, 2, "111", past, `{"msgName":"uploaded","status":0,"fileList":`+files("lost11.m3u8")+`}`)
	s.completed, s.outcome = true, "ok"
	out = append(out, s)

	// Silent: started long ago, nothing since.
	s = mk("silent", 0)
	add(s, 40, 1, "111", past, `{"msgName":"recorder_started","status":0}`)
	s.flags = []string{"silent"}
	out = append(out, s)

	// Still recording: fresh, nothing due.
	s = mk("open", 0)
	add(s, 40, 1, "111", now, `{"msgName":"recorder_started","status":0}`)
	out = append(out, s)
	return out
}

// ledgerBodies renders every session's notifications as Agora sends them,
// with every third one resent (same noticeId, new notifyMs) and every
// fourth one sent twice as a redundant copy (new noticeId), shuffled.
func ledgerBodies(sessions []*ledgerSession, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	var out [][]byte
	n := 0
	for _, s := range sessions {
		for seq, e := range s.events {
			n++
			id := fmt.Sprintf("%s-%d-%d", s.sid, e.eventType, seq)
			now := time.Now().UnixMilli()
			out = append(out, ledgerBody(id, s, seq, e, now))
			if n%3 == 0 {
				out = append(out, ledgerBody(id, s, seq, e, now+1500))
			}
			if n%4 == 0 {
				out = append(out, ledgerBody(id+"-copy", s, seq, e, now+700))
			}
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func ledgerBody(noticeID string, s *ledgerSession, seq int, e ledgerEvent, notifyMs int64) []byte {
	return fmt.Appendf(nil, `{"noticeId":%q,"productId":3,"eventType":%d,"notifyMs":%d,"payload":{"cname":%q,"uid":%q,"sid":%q,"sequence":%d,"sendts":%d,"serviceType":%d,"details":%s}}`,
		noticeID, e.eventType, notifyMs, s.cname, e.uid, s.sid, seq, e.sendts, e.serviceType, e.details)
}

// postAll posts bodies round-robin to the gateways and wants 200 for each.
func postAll(t testing.TB, bodies [][]byte, gws ...*gateway) {
	t.Helper()
	for i, b := range bodies {
		if code, ans := gws[i%len(gws)].post(testSecret, b); code != http.StatusOK {
			t.Fatalf("post %d: got %d %s, want 200", i, code, ans)
		}
	}
}

// ledgerDerived counts the derived notifications in the stream: session
// sid to the number of session.completed messages, and sid/reason to the
// number of session.flagged ones.
type ledgerDerived struct {
	completed map[string]int
	flagged   map[string]int
}

// readDerived reads every session.> message of the stream.
func readDerived(t testing.TB, natsURL string) (ledgerDerived, error) {
	t.Helper()
	d := ledgerDerived{completed: map[string]int{}, flagged: map[string]int{}}
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		return d, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return d, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "AGORA_NCS")
	if err != nil {
		return d, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"agora.ncs.session.>"}})
	if err != nil {
		return d, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return d, err
	}
	for left := info.NumPending; left > 0; {
		batch, err := cons.Fetch(int(min(left, 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return d, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var body struct {
				SID  string `json:"sid"`
				Flag string `json:"flag"`
			}
			if err := json.Unmarshal(m.Data(), &body); err != nil {
				return d, fmt.Errorf("derived message %s: %w", m.Subject(), err)
			}
			switch m.Subject() {
			case "agora.ncs.session.completed":
				d.completed[body.SID]++
			case "agora.ncs.session.flagged":
				d.flagged[body.SID+"/"+body.Flag]++
			default:
				return d, fmt.Errorf("unexpected derived subject %s", m.Subject())
			}
		}
		if got == 0 {
			return d, fmt.Errorf("read %d of %d derived messages", info.NumPending-left, info.NumPending)
		}
		left -= uint64(got)
	}
	return d, nil
}

// wantDerived waits until the stream holds exactly the derived
// notifications the sessions call for, and fails naming the difference.
func wantDerived(t testing.TB, natsURL string, sessions []*ledgerSession, within time.Duration) {
	t.Helper()
	want := ledgerDerived{completed: map[string]int{}, flagged: map[string]int{}}
	for _, s := range sessions {
		if s.completed {
			want.completed[s.sid] = 1
		}
		for _, f := range s.flags {
			want.flagged[s.sid+"/"+f] = 1
		}
	}
	var got ledgerDerived
	testenv.Eventually(t, within, 200*time.Millisecond, func() (bool, string) {
		var err error
		got, err = readDerived(t, natsURL)
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(got.completed) == fmt.Sprint(want.completed) && fmt.Sprint(got.flagged) == fmt.Sprint(want.flagged),
			fmt.Sprintf("got completed %v flagged %v, want completed %v flagged %v", got.completed, got.flagged, want.completed, want.flagged)
	})
}

// ledgerRecord is the part of a session record the tests check.
type ledgerRecord struct {
	SID     string         `json:"sid"`
	State   string         `json:"state"`
	Outcome string         `json:"outcome"`
	Flags   []string       `json:"flags"`
	Files   []string       `json:"files"`
	Uids    []string       `json:"uids"`
	Events  map[string]int `json:"events"`
}

// readRecord reads a session's record from the bucket as a reader would
// (nats kv get NCS_SESSIONS <sid>).
func readRecord(t testing.TB, natsURL, sid string) ledgerRecord {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "NCS_SESSIONS")
	if err != nil {
		t.Fatalf("bucket NCS_SESSIONS: %v", err)
	}
	e, err := kv.Get(ctx, sid)
	if err != nil {
		t.Fatalf("record of %s: %v", sid, err)
	}
	var r ledgerRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatalf("record of %s: %v", sid, err)
	}
	return r
}

// checkRecords compares each session's record with what it must say.
func checkRecords(t testing.TB, natsURL string, sessions []*ledgerSession) {
	t.Helper()
	for _, s := range sessions {
		r := readRecord(t, natsURL, s.sid)
		state := "exited"
		if !s.completed {
			state = "recording"
		}
		if r.SID != s.sid || r.State != state || r.Outcome != s.outcome {
			t.Errorf("record of %s: got sid %q state %q outcome %q, want %q %q %q", s.sid, r.SID, r.State, r.Outcome, s.sid, state, s.outcome)
		}
		if fmt.Sprint(r.Flags) != fmt.Sprint(append([]string{}, s.flags...)) {
			t.Errorf("record of %s: got flags %v, want %v", s.sid, r.Flags, s.flags)
		}
		if s.counts != nil && fmt.Sprint(r.Events) != fmt.Sprint(s.counts) {
			t.Errorf("record of %s: got events %v, want %v (each distinct event once, resends and redundant copies not counted)", s.sid, r.Events, s.counts)
		}
	}
}
