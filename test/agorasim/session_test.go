package main

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// wireBody is the part of a notification body the tests read.
type wireBody struct {
	NoticeID  string `json:"noticeId"`
	ProductID int    `json:"productId"`
	EventType int    `json:"eventType"`
	NotifyMs  int64  `json:"notifyMs"`
	Payload   struct {
		Cname       string         `json:"cname"`
		UID         string         `json:"uid"`
		SID         string         `json:"sid"`
		Sequence    int            `json:"sequence"`
		Sendts      int64          `json:"sendts"`
		ServiceType int            `json:"serviceType"`
		Details     map[string]any `json:"details"`
	} `json:"payload"`
}

func decodeBody(t *testing.T, b []byte) wireBody {
	t.Helper()
	var w wireBody
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return w
}

// eventSpec is one row of NCS.md section 4.
type eventSpec struct {
	msgName     string
	serviceType int
	keys        []string
}

// eventTable is NCS.md section 4 for the events a session sends:
// msgName, serviceType and the details keys beyond msgName.
var eventTable = map[int]eventSpec{
	4:  {"cloud_recording_file_infos", 0, []string{"fileList"}},
	11: {"session_exit", 0, []string{"exitStatus"}},
	30: {"uploader_started", 2, []string{"status"}},
	31: {"uploaded", 2, []string{"fileList", "status"}},
	33: {"uploading_progress", 2, []string{"progress"}},
	40: {"recorder_started", 1, []string{"status"}},
	41: {"recorder_leave", 1, []string{"leaveCode"}},
	42: {"recorder_slice_start", 1, []string{"discontinueUtcMs", "mixedAllUser", "startUtcMs", "streamUid", "trackType"}},
	43: {"recorder_audio_stream_state_changed", 1, []string{"UtcMs", "state", "streamUid"}},
	44: {"recorder_video_stream_state_changed", 1, []string{"UtcMs", "state", "streamUid"}},
}

func TestSessionEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.UnixMilli(1_700_000_000_000)
	ids := map[string]bool{}
	for i := 1; i <= 20; i++ {
		s := newSession(rng, i)
		events := s.events(rng, start, 200*time.Millisecond)
		var types []int
		var lastSendts int64
		for seq, n := range events {
			w := decodeBody(t, n.body(start.UnixMilli()))
			types = append(types, w.EventType)
			if ids[w.NoticeID] {
				t.Errorf("session %d: noticeId %s repeated", i, w.NoticeID)
			}
			ids[w.NoticeID] = true
			if w.NoticeID != n.noticeID || w.EventType != n.eventType || w.Payload.Sequence != n.sequence {
				t.Errorf("session %d seq %d: body %+v disagrees with %+v", i, seq, w, n)
			}
			if w.ProductID != 3 {
				t.Errorf("productId = %d, want 3", w.ProductID)
			}
			if w.Payload.Sequence != seq || n.session != i {
				t.Errorf("sequence = %d session = %d, want %d and %d", w.Payload.Sequence, n.session, seq, i)
			}
			if w.Payload.Cname != s.cname || w.Payload.UID != s.uid || w.Payload.SID != s.sid {
				t.Errorf("seq %d: cname/uid/sid = %s/%s/%s, want %s/%s/%s", seq, w.Payload.Cname, w.Payload.UID, w.Payload.SID, s.cname, s.uid, s.sid)
			}
			if w.Payload.Sendts < lastSendts {
				t.Errorf("seq %d: sendts %d before the previous %d", seq, w.Payload.Sendts, lastSendts)
			}
			lastSendts = w.Payload.Sendts
			want, ok := eventTable[w.EventType]
			if !ok {
				t.Fatalf("seq %d: event type %d not in the table", seq, w.EventType)
			}
			if w.Payload.Details["msgName"] != want.msgName || n.msgName != want.msgName {
				t.Errorf("event %d: msgName = %v, want %s", w.EventType, w.Payload.Details["msgName"], want.msgName)
			}
			if w.Payload.ServiceType != want.serviceType {
				t.Errorf("event %d: serviceType = %d, want %d", w.EventType, w.Payload.ServiceType, want.serviceType)
			}
			var keys []string
			for k := range w.Payload.Details {
				if k != "msgName" {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, want.keys) {
				t.Errorf("event %d: details keys %v, want %v", w.EventType, keys, want.keys)
			}
			switch w.EventType {
			case 4:
				if _, ok := w.Payload.Details["fileList"].(string); !ok {
					t.Errorf("event 4: fileList is %T, want a string", w.Payload.Details["fileList"])
				}
			case 31:
				if l, ok := w.Payload.Details["fileList"].([]any); !ok || len(l) == 0 {
					t.Errorf("event 31: fileList is %v, want a non-empty array", w.Payload.Details["fileList"])
				}
			}
		}
		checkOrder(t, i, types, len(s.streams))
	}
}

// checkOrder checks the life cycle of one session's event types.
func checkOrder(t *testing.T, session int, types []int, streams int) {
	t.Helper()
	if types[0] != 40 || types[len(types)-1] != 11 {
		t.Errorf("session %d: starts with %d and ends with %d, want 40 and 11: %v", session, types[0], types[len(types)-1], types)
	}
	before := [][2]int{{40, 42}, {42, 30}, {30, 4}, {4, 41}, {41, 31}, {31, 11}}
	for _, p := range before {
		a, b := slices.Index(types, p[0]), slices.Index(types, p[1])
		if a < 0 || b < 0 || a > b {
			t.Errorf("session %d: event %d at %d, event %d at %d, want the first before the second: %v", session, p[0], a, p[1], b, types)
		}
	}
	for _, et := range []int{43, 44} {
		if got := count(types, et); got != 2*streams {
			t.Errorf("session %d: %d events %d for %d streams, want %d", session, got, et, streams, 2*streams)
		}
	}
}

func count(s []int, v int) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func TestSessionSeedReproduces(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	gen := func() []string {
		rng := rand.New(rand.NewPCG(7, 7))
		var ids []string
		for _, n := range newSession(rng, 1).events(rng, start, time.Second) {
			ids = append(ids, string(n.body(1)))
		}
		return ids
	}
	if a, b := gen(), gen(); !slices.Equal(a, b) {
		t.Errorf("same seed, different sessions:\n%v\n%v", a, b)
	}
}

func TestHealthCheck(t *testing.T) {
	n := healthCheck(rand.New(rand.NewPCG(1, 1)), time.UnixMilli(1_700_000_000_000))
	w := decodeBody(t, n.body(1_700_000_000_001))
	if w.Payload.Cname != "test_webhook" || w.Payload.UID != "12121212" {
		t.Errorf("cname/uid = %s/%s, want test_webhook/12121212", w.Payload.Cname, w.Payload.UID)
	}
	if w.ProductID != 3 || w.NoticeID == "" || w.Payload.Details["msgName"] == nil {
		t.Errorf("health check body %+v lacks productId 3, noticeId or msgName", w)
	}
}

func TestBodyChangesOnlyNotifyMs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	n := newSession(rng, 1).events(rng, time.UnixMilli(1_700_000_000_000), time.Second)[0]
	a, b := decodeBody(t, n.body(100)), decodeBody(t, n.body(200))
	if a.NotifyMs != 100 || b.NotifyMs != 200 {
		t.Errorf("notifyMs = %d, %d, want 100, 200", a.NotifyMs, b.NotifyMs)
	}
	a.NotifyMs, b.NotifyMs = 0, 0
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("bodies differ beyond notifyMs:\n%s\n%s", ja, jb)
	}
}
