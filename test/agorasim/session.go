package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
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

// session is one Cloud Recording session: a recorder joins channel cname as
// uid and records the users in streams; kind says how its life goes.
type session struct {
	index   int
	kind    kind
	cname   string
	uid     string
	sid     string
	streams []string
	newUID  string // the recorder's uid after a failover (kind failover)
}

// newSession draws a normal session with a random channel, recorder uid,
// sid and one to three recorded users.
func newSession(rng *rand.Rand, index int) session {
	s := session{
		index: index,
		kind:  kindNormal,
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
// happen, with sequence 0, 1, 2, ... and sendts from start, step apart,
// shaped by the session's kind (kinds.go).
func (s session) events(rng *rand.Rand, start time.Time, step time.Duration) []*notification {
	b := &builder{s: s, rng: rng, at: start, step: step, startMs: start.UnixMilli(), uid: s.uid}
	return b.build()
}

// builder accumulates one session's notifications.
type builder struct {
	s       session
	rng     *rand.Rand
	at      time.Time // sendts of the next event
	step    time.Duration
	startMs int64
	uid     string // payload.uid: the recorder's uid, a new one after a failover
	old     bool   // pre-2021 bodies (notificationId, eventMs, no productId)
	out     []*notification
}

// add appends one event sent by the builder's current uid.
func (b *builder) add(eventType, serviceType int, msgName string, details ...field) {
	sendts := b.at.UnixMilli()
	b.at = b.at.Add(b.step)
	n := &notification{
		session:   b.s.index,
		noticeID:  newNoticeID(b.rng),
		eventType: eventType,
		msgName:   msgName,
		sequence:  len(b.out),
		old:       b.old,
		eventMs:   sendts,
	}
	n.payload = b.s.payload(b.uid, n.sequence, sendts, serviceType, append(object{{"msgName", msgName}}, details...), b.old)
	b.out = append(b.out, n)
}

// normal is the composite session of a healthy recording: the recorder
// starts (40), sees each user's video and audio (44, 43), starts a slice
// (42); the uploader starts (30), the playlist is written (4), upload
// progresses (33); the users' streams stop (44, 43), the recorder leaves
// (41), the upload completes (33, 31) and the session exits (11).
func (b *builder) normal() {
	b.started()
	b.stopped()
	b.add(31, serviceUploader, "uploaded", field{"fileList", b.composite("")}, field{"status", 0})
	b.exit(0)
}

// started is a composite session's start side, up to its upload progress.
func (b *builder) started() {
	b.add(40, serviceRecorder, "recorder_started", field{"status", 0})
	for _, uid := range b.s.streams {
		b.streamState(uid, streamReceiving)
	}
	b.add(42, serviceRecorder, "recorder_slice_start",
		field{"startUtcMs", b.startMs}, field{"discontinueUtcMs", b.startMs},
		field{"mixedAllUser", true}, field{"streamUid", "0"}, field{"trackType", "audio_and_video"})
	b.add(30, serviceUploader, "uploader_started", field{"status", 0})
	b.add(4, serviceCloudRecording, "cloud_recording_file_infos", field{"fileList", b.s.playlist("")})
	b.progress(1 + b.rng.IntN(2))
}

// stopped is the end side before the upload notice: the streams stop, the
// recorder leaves (leaveCode 16: stop was called), the upload reaches 10000.
func (b *builder) stopped() {
	for _, uid := range b.s.streams {
		b.streamState(uid, streamStopped)
	}
	b.add(41, serviceRecorder, "recorder_leave", field{"leaveCode", 16})
	b.add(33, serviceUploader, "uploading_progress", field{"progress", 10000})
}

// streamState sends the video and audio state of one recorded user.
func (b *builder) streamState(uid string, state int) {
	b.add(44, serviceRecorder, "recorder_video_stream_state_changed",
		field{"streamUid", uid}, field{"state", state}, field{"UtcMs", b.at.UnixMilli()})
	b.add(43, serviceRecorder, "recorder_audio_stream_state_changed",
		field{"streamUid", uid}, field{"state", state}, field{"UtcMs", b.at.UnixMilli()})
}

// progress sends n uploading_progress events below 10000.
func (b *builder) progress(n int) {
	p := 1000 + b.rng.IntN(4000)
	for range n {
		b.add(33, serviceUploader, "uploading_progress", field{"progress", p})
		p += 1000 + b.rng.IntN(4000)
	}
}

// exit sends session_exit with exitStatus.
func (b *builder) exit(status int) {
	b.add(11, serviceCloudRecording, "session_exit", field{"exitStatus", status})
}

// composite is the fileList of a composite recording's 31 or 32: the MP4
// and the playlist, named with prefix ("bak1_" after a failover).
func (b *builder) composite(prefix string) []object {
	return []object{b.file(b.s.mp4(prefix), "0", true), b.file(b.s.playlist(prefix), "0", true)}
}

// file is one fileList entry of 31 or 32 as Agora documents it.
func (b *builder) file(name, uid string, mixed bool) object {
	return object{
		{"fileName", name}, {"trackType", "audio_and_video"}, {"uid", uid},
		{"mixedAllUser", mixed}, {"isPlayable", true}, {"sliceStartTime", b.startMs},
	}
}

// playlist and mp4 are a composite recording's file names.
func (s session) playlist(prefix string) string { return prefix + s.sid + "_" + s.cname + ".m3u8" }
func (s session) mp4(prefix string) string      { return prefix + s.sid + "_" + s.cname + "_0.mp4" }

// payload renders the Cloud Recording payload of one event sent by uid;
// old is the pre-2021 form, whose sequence is a string.
func (s session) payload(uid string, sequence int, sendts int64, serviceType int, details object, old bool) []byte {
	var seq any = sequence
	if old {
		seq = strconv.Itoa(sequence)
	}
	b, err := json.Marshal(object{
		{"cname", s.cname},
		{"uid", uid},
		{"sid", s.sid},
		{"sequence", seq},
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
		payload:   s.payload(s.uid, 0, now.UnixMilli(), serviceRecorder, object{{"msgName", "recorder_started"}, {"status", 0}}, false),
	}
}
