package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// productCloudRecording is Agora's productId of Cloud Recording.
const productCloudRecording = 3

// notification is one event as Agora's notification service sends it. Its
// payload is fixed when the event happens; notifyMs is not part of it
// because Agora refreshes it on every attempt, which changes the body and
// its signature while the noticeId stays.
type notification struct {
	session   int    // 1-based session number in this run, 0 for the health check
	noticeID  string // shared by every attempt and duplicate
	eventType int
	msgName   string
	sequence  int // payload.sequence, from 0 per recording session
	payload   []byte
	old       bool  // pre-2021 body: notificationId, eventMs, no productId
	eventMs   int64 // the old body's event time (its sendts)
}

// body renders the request body sent at notifyMs, with the envelope keys in
// the order Agora's samples show (consumers must not rely on it).
func (n *notification) body(notifyMs int64) []byte {
	env := object{
		{"noticeId", n.noticeID},
		{"productId", productCloudRecording},
		{"eventType", n.eventType},
		{"notifyMs", notifyMs},
		{"payload", json.RawMessage(n.payload)},
	}
	if n.old {
		// Old accounts' format (agora/NCS.md section 4): the gateway
		// publishes it under the product token "unknown".
		env = object{
			{"notificationId", n.noticeID},
			{"eventType", n.eventType},
			{"notifyMs", notifyMs},
			{"eventMs", n.eventMs},
			{"payload", json.RawMessage(n.payload)},
		}
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic("agorasim: marshal notification: " + err.Error()) // strings, numbers and valid JSON always marshal
	}
	return b
}

// field is one key of an object.
type field struct {
	key   string
	value any
}

// object is a JSON object that keeps its keys in the order given, so bodies
// read like Agora's documented samples (msgName first in details).
type object []field

// MarshalJSON writes the fields in order.
func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, fmt.Errorf("marshal key %q: %w", f.key, err)
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("marshal %s: %w", f.key, err)
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// newNoticeID returns a random UUID (version 4 layout), the noticeId form
// Agora uses most; drawn from rng so that a seed reproduces a run.
func newNoticeID(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newHex returns n random lowercase hex digits, the shape of a Cloud
// Recording sid.
func newHex(rng *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}

// newUID returns a random Agora user ID as the decimal string Cloud
// Recording puts in payload.uid and streamUid.
func newUID(rng *rand.Rand) string {
	return strconv.FormatUint(uint64(100000+rng.IntN(900_000_000)), 10)
}
