package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Dead-letter reasons: the values of Notification.DeadLetterReason, for
// signed bodies that cannot be routed but are kept rather than dropped.
const (
	// DeadLetterNotJSON marks a signed body that is not a JSON object.
	DeadLetterNotJSON = "not_json"
	// DeadLetterNoID marks a JSON object without a usable noticeId or notificationId.
	DeadLetterNoID = "no_id"
)

// unknownToken replaces a missing or unsafe product or event token.
const unknownToken = "unknown"

// Limits on what is copied from the body into tokens and header-safe values.
const (
	maxTokenLen       = 64
	maxHeaderValueLen = 256
)

// Notification is a verified Agora notification: the routing fields read from
// its envelope and the raw body, byte for byte.
type Notification struct {
	// ID is the noticeId (or legacy notificationId); empty for a dead letter.
	ID string
	// ProductID is the productId as a safe token (1 to 64 of A-Z a-z 0-9
	// _ -, fit for a NATS subject): "unknown" when absent or unsafe.
	ProductID string
	// EventType is the eventType as a safe token, like ProductID.
	EventType string
	// EventName is payload.details.msgName when present and header-safe.
	EventName string
	// SID is the top-level sid, else payload.sid, when present and header-safe.
	SID string
	// Cname is payload.cname when present and header-safe.
	Cname string
	// NotifyAt is the body's notifyMs (Agora's send time of this attempt);
	// zero when the body has none (legacy bodies) or it is not a number.
	NotifyAt time.Time
	// ReceivedAt is when the request reached the handler.
	ReceivedAt time.Time
	// Body is the raw request body as signed.
	Body []byte
	// DeadLetterReason is DeadLetterNotJSON or DeadLetterNoID when the
	// notification cannot be routed; empty otherwise.
	DeadLetterReason string
}

// Parse reads the envelope of an already verified body. It never fails: a
// body that cannot be routed comes back with DeadLetterReason set, so that
// it is kept rather than dropped.
func Parse(body []byte, receivedAt time.Time) Notification {
	n := Notification{
		ProductID:  unknownToken,
		EventType:  unknownToken,
		ReceivedAt: receivedAt,
		Body:       body,
	}
	env, ok := scanEnvelope(body)
	if !ok {
		n.DeadLetterReason = DeadLetterNotJSON
		return n
	}
	n.NotifyAt = notifyTime(env.notifyMs)
	n.ProductID = subjectToken(env.productID)
	n.EventType = subjectToken(env.eventType)
	n.EventName = headerValue(env.msgName)
	n.Cname = headerValue(env.payloadCname)
	n.SID = headerValue(env.sid)
	if n.SID == "" {
		n.SID = headerValue(env.payloadSID)
	}
	id := env.noticeID
	if id == "" {
		id = env.notificationID
	}
	n.ID = headerValue(id)
	if n.ID == "" {
		n.DeadLetterReason = DeadLetterNoID
	}
	return n
}

// Key is the notification's deduplication key: its ID, or for a dead
// letter "deadletter-" and the first 32 hex digits of sha256(body), so that
// an exact re-send of an unroutable body deduplicates.
func (n Notification) Key() string {
	if n.DeadLetterReason == "" {
		return n.ID
	}
	sum := sha256.Sum256(n.Body)
	const prefix = "deadletter-"
	var buf [len(prefix) + 32]byte
	copy(buf[:], prefix)
	hex.Encode(buf[len(prefix):], sum[:16])
	return string(buf[:])
}

// notifyTime reads a notifyMs literal (a JSON number or a string holding
// one); the zero time when it is empty or not a finite number of ms.
func notifyTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > 1<<62 {
		return time.Time{}
	}
	return time.UnixMilli(int64(f))
}

// subjectToken returns s when it is a safe subject token (1 to 64 of
// A-Z a-z 0-9 _ -), else "unknown", so a hostile value such as "a.>" cannot
// add tokens or wildcards.
func subjectToken(s string) string {
	s = strings.TrimSpace(s)
	if !safeToken(s) {
		return unknownToken
	}
	return s
}

// safeToken reports whether s is 1 to 64 of A-Z a-z 0-9 _ -.
func safeToken(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// headerValue returns s when it can travel in a NATS header (valid UTF-8,
// no control characters such as CR or LF, at most 256 bytes), else "".
func headerValue(s string) string {
	if len(s) > maxHeaderValueLen || !utf8.ValidString(s) {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return ""
		}
	}
	return s
}
