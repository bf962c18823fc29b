package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Service types of Cloud Recording (payload.serviceType).
const (
	serviceCloudRecording = 0
	serviceRecorder       = 1
	serviceUploader       = 2
)

// Stream states of events 43 and 44.
const (
	streamReceiving = 0
	streamStopped   = 1
)

// healthCheckCname and healthCheckUID are what the Agora console's health
// check puts in its test notifications (agora/NCS.md section 3).
const (
	healthCheckCname = "test_webhook"
	healthCheckUID   = "12121212"
)

// session is one composite Cloud Recording session: a recorder joins channel
// cname as uid and records the users in streams.
type session struct {
	index   int
	cname   string
	uid     string
	sid     string
	streams []string
}

// newSession draws a session with a random channel, recorder uid, sid and
// one to three recorded users.
func newSession(rng *rand.Rand, index int) session {
	s := session{
		index: index,
		cname: fmt.Sprintf("room-%04d", rng.IntN(10000)),
		uid:   newUID(rng),
		sid:   newHex(rng, 32),
	}
	for range 1 + rng.IntN(3) {
		s.streams = append(s.streams, newUID(rng))
	}
	return s
}

// events returns the session's notifications in the order the events
// happen, with sequence 0, 1, 2, ... and sendts from start, step apart: the
// recorder starts (40), sees each user's video and audio (44, 43), starts a
// slice (42); the uploader starts (30), the playlist is written (4), upload
// progresses (33); the users' streams stop (44, 43), the recorder leaves
// (41), the upload completes (33, 31) and the session exits (11).
func (s session) events(rng *rand.Rand, start time.Time, step time.Duration) []*notification {
	var out []*notification
	at := start
	add := func(eventType, serviceType int, msgName string, details ...field) {
		sendts := at.UnixMilli()
		at = at.Add(step)
		n := &notification{
			session:   s.index,
			noticeID:  newNoticeID(rng),
			eventType: eventType,
			msgName:   msgName,
			sequence:  len(out),
		}
		n.payload = s.payload(n.sequence, sendts, serviceType, append(object{{"msgName", msgName}}, details...))
		out = append(out, n)
	}
	startMs := start.UnixMilli()
	playlist := s.sid + "_" + s.cname + ".m3u8"
	mp4 := s.sid + "_" + s.cname + "_0.mp4"

	add(40, serviceRecorder, "recorder_started", field{"status", 0})
	for _, uid := range s.streams {
		add(44, serviceRecorder, "recorder_video_stream_state_changed",
			field{"streamUid", uid}, field{"state", streamReceiving}, field{"UtcMs", at.UnixMilli()})
		add(43, serviceRecorder, "recorder_audio_stream_state_changed",
			field{"streamUid", uid}, field{"state", streamReceiving}, field{"UtcMs", at.UnixMilli()})
	}
	add(42, serviceRecorder, "recorder_slice_start",
		field{"startUtcMs", startMs}, field{"discontinueUtcMs", startMs},
		field{"mixedAllUser", true}, field{"streamUid", "0"}, field{"trackType", "audio_and_video"})
	add(30, serviceUploader, "uploader_started", field{"status", 0})
	add(4, serviceCloudRecording, "cloud_recording_file_infos", field{"fileList", playlist})
	progress := 1000 + rng.IntN(4000)
	for range 1 + rng.IntN(2) {
		add(33, serviceUploader, "uploading_progress", field{"progress", progress})
		progress += 1000 + rng.IntN(4000)
	}
	for _, uid := range s.streams {
		add(44, serviceRecorder, "recorder_video_stream_state_changed",
			field{"streamUid", uid}, field{"state", streamStopped}, field{"UtcMs", at.UnixMilli()})
		add(43, serviceRecorder, "recorder_audio_stream_state_changed",
			field{"streamUid", uid}, field{"state", streamStopped}, field{"UtcMs", at.UnixMilli()})
	}
	add(41, serviceRecorder, "recorder_leave", field{"leaveCode", 0})
	add(33, serviceUploader, "uploading_progress", field{"progress", 10000})
	file := func(name string) object {
		return object{
			{"fileName", name}, {"trackType", "audio_and_video"}, {"uid", "0"},
			{"mixedAllUser", true}, {"isPlayable", true}, {"sliceStartTime", startMs},
		}
	}
	add(31, serviceUploader, "uploaded", field{"fileList", []object{file(mp4), file(playlist)}}, field{"status", 0})
	add(11, serviceCloudRecording, "session_exit", field{"exitStatus", 0})
	return out
}

// payload renders the Cloud Recording payload of one event.
func (s session) payload(sequence int, sendts int64, serviceType int, details object) []byte {
	b, err := json.Marshal(object{
		{"cname", s.cname},
		{"uid", s.uid},
		{"sid", s.sid},
		{"sequence", sequence},
		{"sendts", sendts},
		{"serviceType", serviceType},
		{"details", details},
	})
	if err != nil {
		panic("agorasim: marshal payload: " + err.Error()) // strings, numbers and objects always marshal
	}
	return b
}

// healthCheck returns a test notification like the console's health check
// sends: channel test_webhook, uid 12121212. NCS.md does not say which event
// type the console uses; recorder_started is a plausible one.
func healthCheck(rng *rand.Rand, now time.Time) *notification {
	s := session{cname: healthCheckCname, uid: healthCheckUID, sid: newHex(rng, 32)}
	return &notification{
		noticeID:  newNoticeID(rng),
		eventType: 40,
		msgName:   "recorder_started",
		payload:   s.payload(0, now.UnixMilli(), serviceRecorder, object{{"msgName", "recorder_started"}, {"status", 0}}),
	}
}
