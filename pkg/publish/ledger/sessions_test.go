package ledger

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// note is one notification a test session sends: its body fields.
type note struct {
	eventType   int
	serviceType int
	uid         string
	details     map[string]any
	old         bool // pre-2021 format: notificationId, eventMs, sequence as a string
}

// testSession is a session's notifications in the order Agora meant them.
type testSession struct {
	kind  string
	base  int64 // unix ms of the first notification
	sid   string
	cname string
	notes []note
}

// body renders the i-th notification of s with a noticeId and notifyMs;
// resends change notifyMs, redundant copies the noticeId too.
func (s testSession) body(i int, noticeID string, notifyMs int64) []byte {
	n := s.notes[i]
	payload := map[string]any{
		"cname": s.cname, "uid": n.uid, "sid": s.sid,
		"sequence": i, "sendts": s.base + int64(i)*1000,
		"serviceType": n.serviceType, "details": n.details,
	}
	b := map[string]any{"eventType": n.eventType, "payload": payload}
	if n.old {
		payload["sequence"] = fmt.Sprint(i)
		b["notificationId"] = noticeID
		b["eventMs"] = notifyMs
	} else {
		b["noticeId"] = noticeID
		b["productId"] = 3
		b["notifyMs"] = notifyMs
	}
	out, err := json.Marshal(b)
	if err != nil {
		panic(err)
	}
	return out
}

// deliveries are the bodies of s as a hostile network delivers them: every
// notification once, some resent (new notifyMs), some copied (new
// noticeId), all shuffled.
func (s testSession) deliveries(rng *rand.Rand) [][]byte {
	var out [][]byte
	for i := range s.notes {
		id := fmt.Sprintf("%s-%d", s.sid, i)
		out = append(out, s.body(i, id, s.base+500+int64(i)*1000))
		for r := rng.IntN(3); r > 0; r-- {
			out = append(out, s.body(i, id, s.base+500+int64(i)*1000+int64(rng.IntN(100000))))
		}
		if rng.IntN(2) == 0 {
			out = append(out, s.body(i, id+"-copy", s.base+600+int64(i)*1000))
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func files(names ...string) []any {
	var out []any
	for _, n := range names {
		out = append(out, map[string]any{"fileName": n, "trackType": "audio_and_video", "uid": "0", "isPlayable": true})
	}
	return out
}

// testSessions are one session of every kind the ledger must get right.
func testSessions(tag string) []testSession {
	return testSessionsAt(tag, 1700000000000)
}

// testSessionsAt are testSessions whose first notification is at base.
func testSessionsAt(tag string, base int64) []testSession {
	sid := func(k string) string { return "sid" + tag + k }
	ss := []testSession{
		{kind: "composite", sid: sid("composite"), cname: "room1", notes: []note{
			{40, 1, "100", map[string]any{"msgName": "recorder_started", "status": 0}, false},
			{30, 2, "100", map[string]any{"msgName": "uploader_started", "status": 0}, false},
			{42, 1, "100", map[string]any{"msgName": "recorder_slice_start", "startUtcMs": 1, "mixedAllUser": true}, false},
			{3, 0, "100", map[string]any{"msgName": "cloud_recording_status_update", "status": 5, "recordingMode": 0, "fileList": "a.m3u8"}, false},
			{33, 2, "100", map[string]any{"msgName": "uploading_progress", "progress": 5000}, false},
			{41, 1, "100", map[string]any{"msgName": "recorder_leave", "leaveCode": 16}, false},
			{41, 1, "100", map[string]any{"msgName": "recorder_leave", "leaveCode": 8}, false},
			{31, 2, "100", map[string]any{"msgName": "uploaded", "status": 0, "fileList": files("x.m3u8", "x.mp4")}, false},
			{33, 2, "100", map[string]any{"msgName": "uploading_progress", "progress": 10000}, false},
			{11, 0, "100", map[string]any{"msgName": "session_exit", "exitStatus": 0}, false},
			{34, 2, "100", map[string]any{"msgName": "STSExpired"}, false},
		}},
		{kind: "individual", sid: sid("individual"), cname: "room2", notes: []note{
			{40, 1, "200", map[string]any{"msgName": "recorder_started", "status": 0}, true},
			{43, 1, "200", map[string]any{"msgName": "recorder_audio_stream_state_changed", "streamUid": "7", "state": 0, "UtcMs": 5}, true},
			{44, 1, "200", map[string]any{"msgName": "recorder_video_stream_state_changed", "streamUid": "7", "state": 1, "UtcMs": 6}, false},
			{32, 2, "200", map[string]any{"msgName": "backuped", "status": 0, "fileList": []any{map[string]any{"filename": "i_7.m3u8"}, map[string]any{"filename": "i_7.ts"}}}, false},
			{11, 0, "200", map[string]any{"msgName": "session_exit", "exitStatus": 0}, false},
			{110, 7, "200", map[string]any{"msgName": "cloud_transcoder_started"}, false},
		}},
		{kind: "web", sid: sid("web"), cname: "room3", notes: []note{
			{70, 6, "300", map[string]any{"msgName": "web_recorder_started", "recorderStartTime": 9}, false},
			{72, 6, "300", map[string]any{"msgName": "web_recorder_capability_limit", "limitType": 1}, false},
			{73, 6, "300", map[string]any{"msgName": "web_recorder_reload", "reason": "x"}, false},
			{71, 6, "300", map[string]any{"msgName": "web_recorder_stopped", "code": 0, "message": "ok", "fileList": files("w.mp4")}, false},
			{31, 2, "300", map[string]any{"msgName": "uploaded", "status": 0}, false},
			{1001, 0, "300", map[string]any{"msgName": "postpone_transcode_final_result", "result": "total_success", "fileList": "p1.mp4;p2.mp4"}, false},
		}},
		{kind: "failover", sid: sid("failover"), cname: "room4", notes: []note{
			{40, 1, "400", map[string]any{"msgName": "recorder_started", "status": 0}, false},
			{12, 0, "400", map[string]any{"msgName": "session_failover", "newUid": 401}, false},
			{40, 1, "401", map[string]any{"msgName": "recorder_started", "status": 0}, false},
			{31, 2, "401", map[string]any{"msgName": "uploaded", "status": 0, "fileList": files("bak0_f.m3u8")}, false},
			{31, 2, "400", map[string]any{"msgName": "uploaded", "status": 0, "fileList": files("f.m3u8")}, false},
			{11, 0, "401", map[string]any{"msgName": "session_exit", "exitStatus": 0}, false},
		}},
		{kind: "abnormal", sid: sid("abnormal"), cname: "room5", notes: []note{
			{40, 1, "500", map[string]any{"msgName": "recorder_started", "status": 0}, false},
			{1, 0, "500", map[string]any{"msgName": "cloud_recording_error", "module": 0, "errorLevel": 3, "errorCode": 53, "errorMsg": "x"}, false},
			{2, 0, "500", map[string]any{"msgName": "cloud_recording_warning", "module": 1, "warnCode": 32}, false},
			{11, 0, "500", map[string]any{"msgName": "session_exit", "exitStatus": 1}, false},
		}},
	}
	for i := range ss {
		ss[i].base = base
	}
	return ss
}
