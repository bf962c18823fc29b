package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// idPlaceholder marks where each request's noticeId is written into a
// template; it has the length of a UUID, the form Agora uses most.
const idPlaceholder = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"

// idLen is the length of every generated noticeId.
const idLen = len(idPlaceholder)

// sizeRange is the spread of body sizes, in bytes.
type sizeRange struct{ Min, Max int }

// parseSizeRange reads "MIN:MAX" (bytes), e.g. "200:8192".
func parseSizeRange(s string) (sizeRange, error) {
	lo, hi, ok := strings.Cut(s, ":")
	if !ok {
		return sizeRange{}, fmt.Errorf("sizes %q: want MIN:MAX in bytes, e.g. 200:8192", s)
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err := errors.Join(err1, err2); err != nil {
		return sizeRange{}, fmt.Errorf("sizes %q: %w", s, err)
	}
	if a < 1 || b < a || b > 1<<20 {
		return sizeRange{}, fmt.Errorf("sizes %q: want 1 <= MIN <= MAX <= 1048576", s)
	}
	return sizeRange{a, b}, nil
}

func (r sizeRange) String() string { return fmt.Sprintf("%d:%d", r.Min, r.Max) }

// pick draws a target size log-uniformly from the range: as in real traffic,
// most notifications are small and a few (long file lists) are large.
func (r sizeRange) pick(rng *rand.Rand) int {
	if r.Min == r.Max {
		return r.Min
	}
	lo, hi := math.Log(float64(r.Min)), math.Log(float64(r.Max))
	return int(math.Round(math.Exp(lo + rng.Float64()*(hi-lo))))
}

// template is one pre-built notification body with the offsets of its
// noticeId placeholder and of its notifyMs digits.
type template struct {
	body      []byte
	idOff     int
	notifyOff int
	eventType int
}

// notifyKey precedes the notifyMs digits in a template.
const notifyKey = `"notifyMs":`

// notifyDigits is the width of every notifyMs written: ms since 1970 have
// 13 digits from 2001 to 2286.
const notifyDigits = 13

// corpus holds the pre-built notification templates a generator cycles
// through; each request gets a fresh noticeId written into a copy.
type corpus struct {
	templates []template
}

// newCorpus builds n templates with sizes spread over sizes, reproducibly
// from seed. Event types and their details follow agora/NCS.md section 4.
func newCorpus(n int, sizes sizeRange, seed uint64) (*corpus, error) {
	if n < 1 {
		return nil, fmt.Errorf("build corpus: %d templates, want at least 1", n)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c := &corpus{templates: make([]template, 0, n)}
	for i := range n {
		target := sizes.pick(rng)
		kind := eventKinds[rng.IntN(len(eventKinds))]
		if kind.fileList == noFileList && target > 600 {
			// Only a file list grows a notification: big ones carry one.
			kind = paddableKinds[rng.IntN(len(paddableKinds))]
		}
		body, err := buildBody(kind, target, i, rng)
		if err != nil {
			return nil, fmt.Errorf("build corpus: %w", err)
		}
		off := bytes.Index(body, []byte(idPlaceholder))
		if off < 0 || bytes.Count(body, []byte(idPlaceholder)) != 1 {
			return nil, fmt.Errorf("build corpus: template %d has no single noticeId placeholder", i)
		}
		noff := bytes.Index(body, []byte(notifyKey)) + len(notifyKey)
		if noff < len(notifyKey) || len(body) < noff+notifyDigits {
			return nil, fmt.Errorf("build corpus: template %d has no notifyMs", i)
		}
		c.templates = append(c.templates, template{body: body, idOff: off, notifyOff: noff, eventType: kind.eventType})
	}
	return c, nil
}

// body returns a new body made from template i (mod the corpus size) with id
// as its noticeId and the current time as its notifyMs, as Agora sends
// every attempt (the gateway refuses stale ones). The result is never
// shared, so a transport may hold it.
func (c *corpus) body(i uint64, id *[idLen]byte) []byte {
	t := &c.templates[i%uint64(len(c.templates))]
	b := bytes.Clone(t.body)
	copy(b[t.idOff:], id[:])
	var ms [20]byte
	copy(b[t.notifyOff:t.notifyOff+notifyDigits], strconv.AppendInt(ms[:0], time.Now().UnixMilli(), 10))
	return b
}

// sizeStats summarises the template sizes: min, median, mean and max bytes.
func (c *corpus) sizeStats() (lo, median, mean, hi int) {
	sizes := make([]int, len(c.templates))
	sum := 0
	for i, t := range c.templates {
		sizes[i] = len(t.body)
		sum += len(t.body)
	}
	slices.Sort(sizes)
	return sizes[0], sizes[len(sizes)/2], sum / len(sizes), sizes[len(sizes)-1]
}

// noticeID writes a UUID-shaped id that is unique per (run, seq): the first
// 16 hex digits are the run's random id, the last 16 the sequence number.
func noticeID(run, seq uint64, out *[idLen]byte) {
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(run >> (56 - 8*i))
		raw[8+i] = byte(seq >> (56 - 8*i))
	}
	var h [32]byte
	hex.Encode(h[:], raw[:])
	// 8-4-4-4-12
	copy(out[0:8], h[0:8])
	out[8] = '-'
	copy(out[9:13], h[8:12])
	out[13] = '-'
	copy(out[14:18], h[12:16])
	out[18] = '-'
	copy(out[19:23], h[16:20])
	out[23] = '-'
	copy(out[24:36], h[20:32])
}

// signer computes Agora-Signature-V2 values; one per worker, not safe for
// concurrent use.
type signer struct {
	mac hash.Hash
	sum []byte
	hex [2 * sha256.Size]byte
}

func newSigner(secret string) *signer {
	return &signer{mac: hmac.New(sha256.New, []byte(secret)), sum: make([]byte, 0, sha256.Size)}
}

// sign returns the lowercase hex HMAC-SHA256 of body.
func (s *signer) sign(body []byte) string {
	s.mac.Reset()
	s.mac.Write(body)
	s.sum = s.mac.Sum(s.sum[:0])
	hex.Encode(s.hex[:], s.sum)
	return string(s.hex[:])
}

// fileListForm says how an event type carries its fileList.
type fileListForm int

const (
	noFileList fileListForm = iota
	fileListString
	fileListArray
)

// eventKind is one Cloud Recording event type of NCS.md section 4.
type eventKind struct {
	eventType   int
	serviceType int
	msgName     string
	fileList    fileListForm
	details     func(rng *rand.Rand) map[string]any
}

func ms(rng *rand.Rand) int64 { return 1_700_000_000_000 + rng.Int64N(100_000_000_000) }

// eventKinds is a realistic subset of the Cloud Recording event table.
var eventKinds = []eventKind{
	{1, 0, "cloud_recording_error", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"module": r.IntN(3), "errorLevel": 3, "errorCode": 50 + r.IntN(10), "stat": 0, "errorMsg": "upload failed, retrying"}
	}},
	{2, 0, "cloud_recording_warning", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"module": r.IntN(3), "warnCode": 31 + r.IntN(3)}
	}},
	{3, 0, "cloud_recording_status_update", fileListString, func(r *rand.Rand) map[string]any {
		return map[string]any{"status": 5, "recordingMode": 0}
	}},
	{4, 0, "cloud_recording_file_infos", fileListString, func(r *rand.Rand) map[string]any { return map[string]any{} }},
	{11, 0, "session_exit", noFileList, func(r *rand.Rand) map[string]any { return map[string]any{"exitStatus": 0} }},
	{12, 0, "session_failover", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"newUid": 100000 + r.IntN(900000)}
	}},
	{30, 2, "uploader_started", noFileList, func(r *rand.Rand) map[string]any { return map[string]any{"status": 0} }},
	{31, 2, "uploaded", fileListArray, func(r *rand.Rand) map[string]any { return map[string]any{"status": 0} }},
	{32, 2, "backuped", fileListArray, func(r *rand.Rand) map[string]any { return map[string]any{"status": 0} }},
	{33, 2, "uploading_progress", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"progress": r.IntN(10001)}
	}},
	{40, 1, "recorder_started", noFileList, func(r *rand.Rand) map[string]any { return map[string]any{"status": 0} }},
	{41, 1, "recorder_leave", noFileList, func(r *rand.Rand) map[string]any { return map[string]any{"leaveCode": 0} }},
	{42, 1, "recorder_slice_start", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"startUtcMs": ms(r), "discontinueUtcMs": ms(r), "mixedAllUser": true, "streamUid": "0", "trackType": "audio_and_video"}
	}},
	{43, 1, "recorder_audio_stream_state_changed", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"streamUid": strconv.Itoa(100000 + r.IntN(900000)), "state": r.IntN(2), "UtcMs": ms(r)}
	}},
	{44, 1, "recorder_video_stream_state_changed", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"streamUid": strconv.Itoa(100000 + r.IntN(900000)), "state": r.IntN(2), "UtcMs": ms(r)}
	}},
	{45, 1, "recorder_snapshot_file", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"fileName": fmt.Sprintf("snapshots/%x.jpg", r.Uint64())}
	}},
	{71, 6, "web_recorder_stopped", fileListArray, func(r *rand.Rand) map[string]any {
		return map[string]any{"code": 0, "message": "stopped", "details": map[string]any{}}
	}},
	{81, 7, "transcoder_completed", noFileList, func(r *rand.Rand) map[string]any {
		return map[string]any{"result": "all_success", "uids": []string{"0"}}
	}},
	{1001, 0, "postpone_transcode_final_result", fileListArray, func(r *rand.Rand) map[string]any {
		return map[string]any{"result": "total_success"}
	}},
}

// paddableKinds are the event kinds with a fileList, which grows a body.
var paddableKinds = func() []eventKind {
	var out []eventKind
	for _, k := range eventKinds {
		if k.fileList != noFileList {
			out = append(out, k)
		}
	}
	return out
}()

// envelope is the top level of a notification, in Agora's field order.
type envelope struct {
	NoticeID  string         `json:"noticeId"`
	ProductID int            `json:"productId"`
	EventType int            `json:"eventType"`
	NotifyMs  int64          `json:"notifyMs"`
	SID       string         `json:"sid,omitempty"`
	Payload   map[string]any `json:"payload"`
}

// buildBody makes one notification of kind, as close to target bytes as
// the kind allows: a kind with a file list is padded to target exactly by
// adding files and lengthening the first file's name; others keep their
// natural size.
func buildBody(kind eventKind, target, seq int, rng *rand.Rand) ([]byte, error) {
	sid := fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
	cname := fmt.Sprintf("room-%d", rng.IntN(100000))
	now := ms(rng)
	files := func(n, pad int) any {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("%s_%s_%04d.ts", sid, cname, i) // fixed width: every file adds the same bytes
		}
		if n > 0 {
			names[0] = fmt.Sprintf("%s_%s%s.m3u8", sid, cname, strings.Repeat("0", pad))
		}
		if kind.fileList == fileListString {
			return strings.Join(names, ";")
		}
		list := make([]map[string]any, n)
		for i, name := range names {
			list[i] = map[string]any{"fileName": name, "trackType": "audio_and_video", "uid": "0",
				"mixedAllUser": true, "isPlayable": true, "sliceStartTime": now + int64(i)*15000}
		}
		return list
	}
	uid := strconv.Itoa(100000 + rng.IntN(900000))
	details := kind.details(rng)
	details["msgName"] = kind.msgName
	// Only the file list changes between the trial marshals below, so the
	// sizes they measure add up.
	marshal := func(nFiles, pad int) ([]byte, error) {
		if kind.fileList != noFileList {
			details["fileList"] = files(nFiles, pad)
		}
		env := envelope{
			NoticeID: idPlaceholder, ProductID: 3, EventType: kind.eventType, NotifyMs: now,
			Payload: map[string]any{
				"cname": cname, "uid": uid, "sid": sid,
				"sequence": seq, "sendts": now - 3, "serviceType": kind.serviceType, "details": details,
			},
		}
		if seq%2 == 0 {
			env.SID = sid // "sometimes a top-level sid"
		}
		b, err := json.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("marshal event %d: %w", kind.eventType, err)
		}
		return b, nil
	}
	base, err := marshal(1, 0)
	if err != nil || kind.fileList == noFileList || len(base) >= target {
		return base, err
	}
	two, err := marshal(2, 0)
	if err != nil {
		return nil, err
	}
	perFile := len(two) - len(base)
	n := 1 + (target-len(base))/perFile
	b, err := marshal(n, 0)
	if err != nil {
		return nil, err
	}
	if pad := target - len(b); pad > 0 {
		return marshal(n, pad)
	}
	return b, nil
}
