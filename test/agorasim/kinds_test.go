package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func init() {
	// NCS.md section 4 for the events only some kinds send.
	eventTable[1] = eventSpec{"cloud_recording_error", 0, []string{"errorCode", "errorLevel", "errorMsg", "module", "stat"}}
	eventTable[2] = eventSpec{"cloud_recording_warning", 0, []string{"module", "warnCode"}}
	eventTable[12] = eventSpec{"session_failover", 0, []string{"newUid"}}
	eventTable[32] = eventSpec{"backuped", 2, []string{"fileList", "status"}}
	eventTable[70] = eventSpec{"web_recorder_started", 6, []string{"recorderStartTime"}}
	eventTable[71] = eventSpec{"web_recorder_stopped", 6, []string{"code", "details", "fileList", "message"}}
}

// oldBody is the pre-2021 envelope.
type oldBody struct {
	NotificationID string          `json:"notificationId"`
	EventMs        int64           `json:"eventMs"`
	ProductID      *int            `json:"productId"`
	NoticeID       *string         `json:"noticeId"`
	Payload        json.RawMessage `json:"payload"`
}

// kindSession draws a session of kind k with exactly one recorded user, so
// its event types have a fixed order.
func kindSession(rng *rand.Rand, k kind) session {
	s := newSessionOf(rng, 1, k)
	s.streams = s.streams[:1]
	return s
}

func TestKindEvents(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	// Runs of one type are collapsed (uploading_progress comes once or twice).
	composite := []int{40, 44, 43, 42, 30, 4, 33}
	end := []int{44, 43, 41, 33}
	join := func(parts ...[]int) []int { return slices.Concat(parts...) }
	tests := []struct {
		kind  kind
		types []int
	}{
		{kindNormal, join(composite, end, []int{31, 11})},
		{kindOld, join(composite, end, []int{31, 11})},
		{kindAbnormal, join(composite, []int{2, 41, 32, 11})},
		{kindFailover, join(composite, []int{12, 40, 44, 43, 42, 30, 4}, end, []int{31, 11})},
		{kindLost31, join(composite, end, []int{11})},
		{kindLost11, join(composite, end, []int{31})},
		{kindSilent, composite},
		{kindWeb, []int{70, 30, 33, 71, 33, 31, 11}},
		{kindWebFail, []int{70, 30, 33, 71, 33, 31, 11}},
		{kindIndividual, []int{40, 44, 43, 42, 30, 33, 44, 43, 41, 33, 31, 11}},
		{kindError, join(composite, []int{1}, end, []int{31, 11})},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, uint64(len(tt.kind))))
			s := kindSession(rng, tt.kind)
			events := s.events(rng, start, time.Second)
			var types []int
			for seq, n := range events {
				if n.sequence != seq {
					t.Errorf("event %d: sequence %d, want %d", seq, n.sequence, seq)
				}
				w := decodeAny(t, n, start.UnixMilli()+int64(seq))
				checkFields(t, tt.kind, w)
				if len(types) == 0 || types[len(types)-1] != n.eventType {
					types = append(types, n.eventType)
				}
			}
			if !slices.Equal(types, tt.types) {
				t.Errorf("event types (runs collapsed) %v, want %v", types, tt.types)
			}
		})
	}
}

// decodeAny decodes a body of either format into the new one's shape and
// checks the envelope of its format.
func decodeAny(t *testing.T, n *notification, notifyMs int64) wireBody {
	t.Helper()
	b := n.body(notifyMs)
	if !n.old {
		w := decodeBody(t, b)
		if w.NotifyMs != notifyMs || w.ProductID != 3 {
			t.Errorf("notifyMs/productId = %d/%d, want %d/3", w.NotifyMs, w.ProductID, notifyMs)
		}
		return w
	}
	var o oldBody
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("old body %s: %v", b, err)
	}
	if o.NotificationID != n.noticeID || o.ProductID != nil || o.NoticeID != nil || o.EventMs == 0 {
		t.Errorf("old body %s: want notificationId %s, eventMs, no productId, no noticeId", b, n.noticeID)
	}
	// payload.sequence is a string in the old format.
	fixed := bytes.Replace(o.Payload, []byte(`"sequence":"`+strconv.Itoa(n.sequence)+`"`), []byte(`"sequence":`+strconv.Itoa(n.sequence)), 1)
	if bytes.Equal(fixed, o.Payload) {
		t.Errorf("old payload %s: sequence is not the string %q", o.Payload, strconv.Itoa(n.sequence))
	}
	w := wireBody{NoticeID: o.NotificationID, ProductID: 3, EventType: n.eventType}
	if err := json.Unmarshal(fixed, &w.Payload); err != nil {
		t.Fatalf("old payload %s: %v", fixed, err)
	}
	return w
}

// checkFields holds one event against NCS.md section 4.
func checkFields(t *testing.T, k kind, w wireBody) {
	t.Helper()
	want, ok := eventTable[w.EventType]
	if !ok {
		t.Fatalf("event type %d not in the table", w.EventType)
	}
	if w.Payload.Details["msgName"] != want.msgName || w.Payload.ServiceType != want.serviceType {
		t.Errorf("event %d: msgName/serviceType = %v/%d, want %s/%d", w.EventType, w.Payload.Details["msgName"], w.Payload.ServiceType, want.msgName, want.serviceType)
	}
	var keys []string
	for key := range w.Payload.Details {
		if key != "msgName" {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	wantKeys := want.keys
	if w.EventType == 31 && (k == kindWeb || k == kindWebFail) {
		wantKeys = []string{"status"} // web page recording's files come in 71
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("event %d: details keys %v, want %v", w.EventType, keys, wantKeys)
	}
	if w.EventType == 12 {
		if _, ok := w.Payload.Details["newUid"].(float64); !ok {
			t.Errorf("event 12: newUid is %T, want a number", w.Payload.Details["newUid"])
		}
	}
}

// derived is what a reader of the events concludes, by the rules,
// with every due time passed: the test's own reference ledger.
func derive(t *testing.T, s session, events []*notification) expectation {
	t.Helper()
	e := expectation{Session: s.index, Kind: s.kind, SID: s.sid, Cname: s.cname, Files: []string{}, Flags: map[string]string{}}
	var exited, abnormal, upload bool
	for _, n := range events {
		w := decodeAny(t, n, 1)
		d := w.Payload.Details
		if !slices.Contains(e.UIDs, w.Payload.UID) {
			e.UIDs = append(e.UIDs, w.Payload.UID)
		}
		switch w.EventType {
		case 1:
			e.Flags["error"] = dueNow
		case 12:
			e.Failovers++
		case 11:
			exited = true
			abnormal = abnormal || d["exitStatus"] != 0.0
		case 71:
			exited = true
			abnormal = abnormal || d["code"] != 0.0
		case 31, 32:
			upload = true
		}
		if w.EventType == 31 || w.EventType == 32 || w.EventType == 71 {
			list, _ := d["fileList"].([]any)
			for _, f := range list {
				m := f.(map[string]any)
				name, _ := m["fileName"].(string)
				if name == "" {
					name, _ = m["filename"].(string)
				}
				e.Files = append(e.Files, name)
			}
		}
	}
	slices.Sort(e.Files)
	e.State, e.Outcome, e.Completed = "exited", "ok", dueNow
	switch {
	case abnormal:
		e.Outcome = "failed"
		e.Flags["abnormal_exit"] = dueNow
	case exited && !upload:
		e.Completed = dueUploadGrace
		e.Flags["no_upload"] = dueUploadGrace
	case !exited && upload:
		e.Completed = dueUploadGrace
	case !exited:
		e.State, e.Outcome, e.Completed = "recording", "", dueNever
		e.Flags["silent"] = dueStallAfter
	}
	return e
}

// TestExpectations holds each kind's expect() against what its events say.
func TestExpectations(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, k := range allKinds {
		for i := range 5 {
			s := newSessionOf(rng, i+1, k)
			got, want := s.expect(), derive(t, s, s.events(rng, time.UnixMilli(1_700_000_000_000), time.Second))
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			if !bytes.Equal(gj, wj) {
				t.Errorf("%s: expect() = %s, want (from its events) %s", k, gj, wj)
			}
		}
	}
}

func TestParseKinds(t *testing.T) {
	got, err := parseKinds("normal, failover,all")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2+len(allKinds) || got[1] != kindFailover {
		t.Errorf("got %v, want normal, failover and every kind", got)
	}
	def, err := parseKinds(defaultKinds)
	if err != nil {
		t.Fatalf("default kinds: %v", err)
	}
	for _, k := range allKinds {
		if !slices.Contains(def, k) {
			t.Errorf("default mix %v lacks %s", def, k)
		}
	}
	if _, err := parseKinds("normal,bogus"); err == nil || !strings.Contains(err.Error(), `unknown kind "bogus"`) {
		t.Errorf("got %v, want an error naming bogus", err)
	}
}

// TestRunKinds runs every kind against the fake gateway and checks the
// summary and the JSON file of expectations.
func TestRunKinds(t *testing.T) {
	g, srv := newFakeGateway(t, nil)
	file := filepath.Join(t.TempDir(), "expect.json")
	var out bytes.Buffer
	args := []string{"-webhook", srv.URL, "-secret", testSecret, "-sessions", strconv.Itoa(len(allKinds)), "-interval", "0",
		"-seed", "3", "-ip-listen", "", "-kinds", "all", "-expect", file, "-resends", "0"}
	if err := run(t.Context(), args, &out, &out, noEnv); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"kind=failover", "kind=old", "expect s2 sid=", "kind=abnormal state=exited outcome=\"failed\" flags=[abnormal_exit(now)] completed=1 (now)",
		"kind=silent state=recording outcome=\"\" flags=[silent(after stall_after)] completed=0",
		"expect: 8 session.completed now, 2 more after their due time; session.flagged abnormal_exit=2 error=1 no_upload=1 silent=1"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	var es []expectation
	b := readFile(t, file)
	if err := json.Unmarshal(b, &es); err != nil || len(es) != len(allKinds) {
		t.Fatalf("expectations %s: %v, want %d", b, err, len(allKinds))
	}
	sids := map[string]bool{}
	for _, p := range g.received() {
		if bytes.Contains(p.body, []byte(`"notificationId"`)) {
			sids["old"] = true
		}
		for _, e := range es {
			if bytes.Contains(p.body, []byte(e.SID)) {
				sids[e.SID] = true
			}
		}
	}
	if len(sids) != len(allKinds)+1 {
		t.Errorf("the gateway saw %d of %d sids (and an old body: %v)", len(sids)-1, len(allKinds), sids["old"])
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFailoverEvents: after 12 the recorder speaks as newUid, one stream
// state is told twice (once by each uid, so not a duplicate), and the new
// server's files are bak1_ ones.
func TestFailoverEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	s := kindSession(rng, kindFailover)
	after := false
	tellers := map[string][]string{} // "44/state" to the uids that told it
	for _, n := range s.events(rng, time.UnixMilli(1_700_000_000_000), time.Second) {
		w := decodeBody(t, n.body(1))
		switch {
		case n.eventType == 12:
			if w.Payload.UID != s.uid || w.Payload.Details["newUid"] != float64(atoi(s.newUID)) {
				t.Errorf("12: uid %s newUid %v, want %s and %s", w.Payload.UID, w.Payload.Details["newUid"], s.uid, s.newUID)
			}
			after = true
		case after && w.Payload.UID != s.newUID:
			t.Errorf("event %d after the failover: uid %s, want %s", n.eventType, w.Payload.UID, s.newUID)
		case !after && w.Payload.UID != s.uid:
			t.Errorf("event %d before the failover: uid %s, want %s", n.eventType, w.Payload.UID, s.uid)
		}
		if n.eventType == 44 {
			k := strconv.Itoa(int(w.Payload.Details["state"].(float64)))
			tellers[k] = append(tellers[k], w.Payload.UID)
		}
		if n.eventType == 4 && after && !strings.HasPrefix(w.Payload.Details["fileList"].(string), "bak1_") {
			t.Errorf("4 after the failover: fileList %v, want a bak1_ name", w.Payload.Details["fileList"])
		}
	}
	if got := tellers["0"]; !slices.Equal(got, []string{s.uid, s.newUID}) {
		t.Errorf("video stream started told by %v, want %s then %s", got, s.uid, s.newUID)
	}
}
