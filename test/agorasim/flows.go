package main

import "math/rand/v2"

// Service types of web page recording (payload.serviceType).
const serviceWebRecorder = 6

// newSessionOf draws a session of kind k.
func newSessionOf(rng *rand.Rand, index int, k kind) session {
	s := newSession(rng, index)
	s.kind = k
	if k == kindFailover {
		s.newUID = newUID(rng)
	}
	return s
}

// build returns the events of the builder's session, as its kind goes.
func (b *builder) build() []*notification {
	switch b.s.kind {
	case kindAbnormal:
		b.abnormal()
	case kindFailover:
		b.failover()
	case kindLost31:
		b.started()
		b.stopped()
		b.exit(0)
	case kindLost11:
		b.started()
		b.stopped()
		b.add(31, serviceUploader, "uploaded", field{"fileList", b.composite("")}, field{"status", 0})
	case kindSilent:
		b.started() // then nothing: the recorder went quiet, or its notices were lost
	case kindWeb:
		b.web(0)
	case kindWebFail:
		b.web(1)
	case kindIndividual:
		b.individual()
	case kindError:
		b.withError()
	case kindOld:
		b.old = true
		b.normal()
	default:
		b.normal()
	}
	return b.out
}

// abnormal: the recording ran, a warning came (2), the recorder left
// (leaveCode 4), the files could only go to Agora's backup storage (32),
// and the service exited with exitStatus 1.
func (b *builder) abnormal() {
	b.started()
	b.add(2, serviceCloudRecording, "cloud_recording_warning", field{"module", 1}, field{"warnCode", 32})
	b.add(41, serviceRecorder, "recorder_leave", field{"leaveCode", 4})
	b.add(32, serviceUploader, "backuped", field{"fileList", b.composite("")}, field{"status", 0})
	b.exit(1)
}

// failover: the task moves to another server (12 with newUid, a number),
// the recorder and uploader start again as the new uid, one stream state
// is told twice (once by each uid), and the new server's files are named
// bak1_<sid>_<cname>...; the upload notice lists the files of both.
func (b *builder) failover() {
	b.started()
	newUID := b.s.newUID
	b.add(12, serviceCloudRecording, "session_failover", field{"newUid", atoi(newUID)})
	b.uid = newUID
	b.add(40, serviceRecorder, "recorder_started", field{"status", 0})
	b.streamState(b.s.streams[0], streamReceiving) // the new uid tells it again
	b.add(42, serviceRecorder, "recorder_slice_start",
		field{"startUtcMs", b.at.UnixMilli()}, field{"discontinueUtcMs", b.startMs},
		field{"mixedAllUser", true}, field{"streamUid", "0"}, field{"trackType", "audio_and_video"})
	b.add(30, serviceUploader, "uploader_started", field{"status", 0})
	b.add(4, serviceCloudRecording, "cloud_recording_file_infos", field{"fileList", b.s.playlist("bak1_")})
	b.stopped()
	files := append(b.composite(""), b.composite("bak1_")...)
	b.add(31, serviceUploader, "uploaded", field{"fileList", files}, field{"status", 0})
	b.exit(0)
}

// web is web page recording: the web recorder starts (70), the uploader
// starts (30) and progresses (33), the web recorder stops (71) with code
// and the file list (an array, "filename" spelled in lower case as one of
// Agora's samples does), then 31 without fileList and 11. With code 1 it
// stopped abnormally and only the MP4 was written.
func (b *builder) web(code int) {
	b.add(70, serviceWebRecorder, "web_recorder_started", field{"recorderStartTime", b.startMs})
	b.add(30, serviceUploader, "uploader_started", field{"status", 0})
	b.progress(1)
	webFile := func(name string) object {
		return object{{"filename", name}, {"sliceStartTime", b.startMs}}
	}
	files := []object{webFile(b.s.mp4("")), webFile(b.s.playlist(""))}
	message, details := "ok", "stop_by_user"
	if code != 0 {
		files, message, details = files[:1], "page crashed", "web_page_crashed"
	}
	b.add(71, serviceWebRecorder, "web_recorder_stopped",
		field{"code", code}, field{"message", message}, field{"details", details}, field{"fileList", files})
	b.add(33, serviceUploader, "uploading_progress", field{"progress", 10000})
	b.add(31, serviceUploader, "uploaded", field{"status", 0})
	b.exit(0)
}

// individual is individual recording: one slice and one pair of files per
// recorded user, each entry naming its uid.
func (b *builder) individual() {
	b.add(40, serviceRecorder, "recorder_started", field{"status", 0})
	for _, uid := range b.s.streams {
		b.streamState(uid, streamReceiving)
		b.add(42, serviceRecorder, "recorder_slice_start",
			field{"startUtcMs", b.startMs}, field{"discontinueUtcMs", b.startMs},
			field{"mixedAllUser", false}, field{"streamUid", uid}, field{"trackType", "audio_and_video"})
	}
	b.add(30, serviceUploader, "uploader_started", field{"status", 0})
	b.progress(1)
	b.stopped()
	var files []object
	for _, uid := range b.s.streams {
		files = append(files, b.file(b.s.individual(uid, ".m3u8"), uid, false), b.file(b.s.individual(uid, "_0.mp4"), uid, false))
	}
	b.add(31, serviceUploader, "uploaded", field{"fileList", files}, field{"status", 0})
	b.exit(0)
}

// withError is a normal session that reports a recoverable error (1) while
// recording; it still ends well.
func (b *builder) withError() {
	b.started()
	b.add(1, serviceCloudRecording, "cloud_recording_error",
		field{"module", 2}, field{"errorLevel", 3}, field{"errorCode", 50}, field{"stat", 0}, field{"errorMsg", "upload timeout"})
	b.stopped()
	b.add(31, serviceUploader, "uploaded", field{"fileList", b.composite("")}, field{"status", 0})
	b.exit(0)
}

// individual is the name of one user's file in individual recording.
func (s session) individual(uid, suffix string) string {
	return s.sid + "_" + s.cname + "__uid_s_" + uid + "__uid_e_av" + suffix
}

// atoi reads a uid drawn by newUID; newUid is a number in event 12.
func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
