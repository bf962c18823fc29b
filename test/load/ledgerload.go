package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ledgerNote is one notification of the ledger benchmark, pre-rendered:
// its body is pre + notifyMs + post, so each send only writes the current
// time (the gateway refuses stale notifyMs) and signs.
type ledgerNote struct {
	sid       string
	eventType int
	pre, post []byte
}

// body renders the note sent at notifyMs into buf.
func (n ledgerNote) body(buf []byte, notifyMs int64) []byte {
	buf = append(buf[:0], n.pre...)
	buf = strconv.AppendInt(buf, notifyMs, 10)
	return append(buf, n.post...)
}

// ledgerWorkload is what the benchmark sends and what a ledger should make
// of it once applied.
type ledgerWorkload struct {
	notes         []ledgerNote
	sessions      int
	wantCompleted int // session.completed due at once: every session exits with an upload notice
	wantFailed    int // of them with outcome failed (11 with exitStatus 1)
	wantAbnormal  int // session.flagged abnormal_exit
}

// abnormalEvery makes one session in this many exit abnormally (11 with
// exitStatus 1 after its files went to backup storage, 32).
const abnormalEvery = 10

// sessionEvents is the number of notifications of one benchmark session.
const sessionEvents = 10

// newLedgerWorkload draws sessions whole Cloud Recording sessions of
// sessionEvents notifications each, interleaved as concurrent recordings
// arrive: about active sessions at a time, each one's events in order.
// Every noticeId is distinct. The same seed gives the same workload, so the
// ledger-on and ledger-off phases send the same bodies.
func newLedgerWorkload(sessions, active int, seed uint64) ledgerWorkload {
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	w := ledgerWorkload{sessions: sessions, wantCompleted: sessions}
	all := make([][]ledgerNote, sessions)
	for i := range all {
		abnormal := i%abnormalEvery == abnormalEvery-1
		all[i] = benchSession(rng, i, abnormal)
		if abnormal {
			w.wantFailed++
			w.wantAbnormal++
		}
	}
	// Interleave: keep up to active sessions open, draw the next event
	// from a random open one.
	var open []int
	next := make([]int, sessions)
	started := 0
	for len(w.notes) < sessions*sessionEvents {
		for len(open) < active && started < sessions {
			open = append(open, started)
			started++
		}
		k := rng.IntN(len(open))
		s := open[k]
		w.notes = append(w.notes, all[s][next[s]])
		next[s]++
		if next[s] == len(all[s]) {
			open[k] = open[len(open)-1]
			open = open[:len(open)-1]
		}
	}
	return w
}

// benchSession returns one composite session's notifications in the order
// the events happen: 40, 44, 43, 42, 30, 4, 33, 41, then 31 and 11
// exitStatus 0, or for an abnormal one 32 and 11 exitStatus 1.
func benchSession(rng *rand.Rand, index int, abnormal bool) []ledgerNote {
	sid := fmt.Sprintf("%016x%016x", rng.Uint64(), uint64(index))
	cname := fmt.Sprintf("bench-%05d", index)
	uid := strconv.Itoa(100000 + rng.IntN(900_000_000))
	user := strconv.Itoa(100000 + rng.IntN(900_000_000))
	startMs := int64(1_700_000_000_000) + int64(index)*1000
	files := []map[string]any{
		{"fileName": sid + "_" + cname + "_0.mp4", "trackType": "audio_and_video", "uid": "0", "mixedAllUser": true, "isPlayable": true, "sliceStartTime": startMs},
		{"fileName": sid + "_" + cname + ".m3u8", "trackType": "audio_and_video", "uid": "0", "mixedAllUser": true, "isPlayable": true, "sliceStartTime": startMs},
	}
	type ev struct {
		eventType, serviceType int
		msgName                string
		details                map[string]any
	}
	upload, exit := ev{31, 2, "uploaded", map[string]any{"fileList": files, "status": 0}}, 0
	if abnormal {
		upload, exit = ev{32, 2, "backuped", map[string]any{"fileList": files, "status": 0}}, 1
	}
	events := []ev{
		{40, 1, "recorder_started", map[string]any{"status": 0}},
		{44, 1, "recorder_video_stream_state_changed", map[string]any{"streamUid": user, "state": 0, "UtcMs": startMs}},
		{43, 1, "recorder_audio_stream_state_changed", map[string]any{"streamUid": user, "state": 0, "UtcMs": startMs}},
		{42, 1, "recorder_slice_start", map[string]any{"startUtcMs": startMs, "discontinueUtcMs": startMs, "mixedAllUser": true, "streamUid": "0", "trackType": "audio_and_video"}},
		{30, 2, "uploader_started", map[string]any{"status": 0}},
		{4, 0, "cloud_recording_file_infos", map[string]any{"fileList": sid + "_" + cname + ".m3u8"}},
		{33, 2, "uploading_progress", map[string]any{"progress": 2000 + rng.IntN(6000)}},
		{41, 1, "recorder_leave", map[string]any{"leaveCode": 16}},
		upload,
		{11, 0, "session_exit", map[string]any{"exitStatus": exit}},
	}
	notes := make([]ledgerNote, len(events))
	for seq, e := range events {
		e.details["msgName"] = e.msgName
		notes[seq] = renderNote(rng, sid, e.eventType, map[string]any{
			"cname": cname, "uid": uid, "sid": sid, "sequence": seq, "sendts": startMs + int64(seq)*1000,
			"serviceType": e.serviceType, "details": e.details,
		})
	}
	return notes
}

// renderNote renders one notification around its notifyMs.
func renderNote(rng *rand.Rand, sid string, eventType int, payload map[string]any) ledgerNote {
	p, err := json.Marshal(payload)
	if err != nil {
		panic("load: marshal payload: " + err.Error()) // maps of strings and numbers always marshal
	}
	id := fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), 0x8000|rng.IntN(1<<14), rng.Int64N(1<<48))
	pre := fmt.Sprintf(`{"noticeId":%q,"productId":3,"eventType":%d,"notifyMs":`, id, eventType)
	return ledgerNote{sid: sid, eventType: eventType, pre: []byte(pre), post: []byte(`,"payload":` + string(p) + `}`)}
}

// openSessionNotes returns n recorder_started (40) notifications of n
// distinct sids: each opens one session that stays recording.
func openSessionNotes(n int, seed uint64) []ledgerNote {
	rng := rand.New(rand.NewPCG(seed, ^seed))
	notes := make([]ledgerNote, n)
	for i := range notes {
		sid := fmt.Sprintf("%016x%016x", rng.Uint64(), uint64(i))
		notes[i] = renderNote(rng, sid, 40, map[string]any{
			"cname": fmt.Sprintf("open-%06d", i), "uid": strconv.Itoa(100000 + rng.IntN(900_000_000)), "sid": sid,
			"sequence": 0, "sendts": time.Now().UnixMilli(), "serviceType": 1,
			"details": map[string]any{"msgName": "recorder_started", "status": 0},
		})
	}
	return notes
}

// burstResult is one burst: every note sent once, as fast as c workers get
// answers.
type burstResult struct {
	sent, ok, errors int
	firstError       string
	wall             time.Duration   // first send to last answer
	samples          []time.Duration // every 200's latency, sorted
	latency          latencySummary
}

// eventsPerSecond is the burst's throughput of 200s.
func (r burstResult) eventsPerSecond() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.ok) / r.wall.Seconds()
}

// sendBurst posts every note once to url with c workers on keep-alive
// connections, each note signed with secret at the moment it is sent.
func sendBurst(ctx context.Context, url, secret string, c int, notes []ledgerNote) (burstResult, error) {
	if err := checkLoopback(url); err != nil {
		return burstResult{}, err
	}
	client := &http.Client{Transport: newTransport(c), Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	type part struct {
		lat        []time.Duration
		ok, errs   int
		firstError string
	}
	parts := make([]part, c)
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[w]
			sign := newSigner(secret)
			var buf []byte
			var answer bytes.Buffer
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(notes)) {
					return
				}
				buf = notes[i].body(buf, time.Now().UnixMilli())
				t0 := time.Now()
				err := postNote(ctx, client, url, buf, sign.sign(buf), &answer)
				if err != nil {
					p.errs++
					if p.firstError == "" {
						p.firstError = err.Error()
					}
					continue
				}
				p.ok++
				p.lat = append(p.lat, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	res := burstResult{wall: time.Since(begin)}
	var all []time.Duration
	for _, p := range parts {
		res.ok += p.ok
		res.errors += p.errs
		all = append(all, p.lat...)
		if res.firstError == "" {
			res.firstError = p.firstError
		}
	}
	res.sent = res.ok + res.errors
	res.latency = summarize(all)
	res.samples = all
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("burst interrupted: %w", err)
	}
	return res, nil
}

// postNote sends one signed body; any answer but 200 is an error.
func postNote(ctx context.Context, client *http.Client, url string, body []byte, sig string, answer *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Agora-Signature-V2", sig)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	answer.Reset()
	_, err = answer.ReadFrom(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, answer.Bytes())
	}
	return nil
}
