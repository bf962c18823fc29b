package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
)

// Dead-letter reasons, carried in the Agora-Deadletter-Reason header.
const (
	// DeadLetterNotJSON marks a signed body that is not a JSON object.
	DeadLetterNotJSON = "not_json"
	// DeadLetterNoID marks a JSON object without a usable noticeId or notificationId.
	DeadLetterNoID = "no_id"
)

// NATS headers set on published messages; each is omitted when its value
// is absent or not header-safe.
const (
	// HeaderNoticeID carries the noticeId (or legacy notificationId).
	HeaderNoticeID = "Agora-Notice-Id"
	// HeaderProductID carries the productId subject token ("unknown" when absent).
	HeaderProductID = "Agora-Product-Id"
	// HeaderEventType carries the eventType subject token ("unknown" when absent).
	HeaderEventType = "Agora-Event-Type"
	// HeaderEventName carries payload.details.msgName.
	HeaderEventName = "Agora-Event-Name"
	// HeaderSID carries the top-level sid, else payload.sid.
	HeaderSID = "Agora-Sid"
	// HeaderCname carries payload.cname.
	HeaderCname = "Agora-Cname"
	// HeaderReceivedAt carries the arrival time, RFC 3339 with nanoseconds, UTC.
	HeaderReceivedAt = "Agora-Received-At"
	// HeaderDeadletterReason carries DeadLetterNotJSON or DeadLetterNoID on dead letters.
	HeaderDeadletterReason = "Agora-Deadletter-Reason"
)

// unknownToken replaces a missing or unsafe subject token.
const unknownToken = "unknown"

// deadletterToken is the subject token for notifications that cannot be routed.
const deadletterToken = "deadletter"

// Limits on what is copied from the body into subjects and headers.
const (
	maxTokenLen       = 64
	maxHeaderValueLen = 256
)

// Notification is a verified Agora notification: the routing fields read from
// its envelope and the raw body, byte for byte.
type Notification struct {
	// ID is the noticeId (or legacy notificationId); empty for a dead letter.
	ID string
	// ProductID and EventType are safe subject tokens: "unknown" when absent or unsafe.
	ProductID string
	// EventType is the eventType as a safe subject token.
	EventType string
	// EventName is payload.details.msgName when present and header-safe.
	EventName string
	// SID is the top-level sid, else payload.sid, when present and header-safe.
	SID string
	// Cname is payload.cname when present and header-safe.
	Cname string
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

// Message turns the notification into a JetStream message under
// subjectPrefix: "<prefix>.<productId>.<eventType>" keyed by the notice id,
// or "<prefix>.deadletter" keyed by a hash of the body so that an exact
// re-send deduplicates.
func (n Notification) Message(subjectPrefix string) publish.Message {
	// One backing array for all header values saves an allocation per header.
	vals := make([]string, 0, 8)
	h := make(nats.Header, 8)
	set := func(k, v string) {
		if v == "" {
			return
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderReceivedAt, n.ReceivedAt.UTC().Format(time.RFC3339Nano))
	set(HeaderNoticeID, n.ID)
	set(HeaderProductID, n.ProductID)
	set(HeaderEventType, n.EventType)
	set(HeaderEventName, n.EventName)
	set(HeaderSID, n.SID)
	set(HeaderCname, n.Cname)
	m := publish.Message{Header: h, Data: n.Body}
	if n.DeadLetterReason != "" {
		set(HeaderDeadletterReason, n.DeadLetterReason)
		m.Subject = subjectPrefix + "." + deadletterToken
		m.ID = deadletterID(n.Body)
		return m
	}
	m.Subject = subjectPrefix + "." + n.ProductID + "." + n.EventType
	m.ID = n.ID
	return m
}

// deadletterID is "deadletter-" and the first 32 hex digits of sha256(body).
func deadletterID(body []byte) string {
	sum := sha256.Sum256(body)
	const prefix = "deadletter-"
	var buf [len(prefix) + 32]byte
	copy(buf[:], prefix)
	hex.Encode(buf[len(prefix):], sum[:16])
	return string(buf[:])
}

// subjectToken returns s when it is a safe NATS subject token (1 to 64 of
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
