package webhook

import "strings"

// Indexes of the routing fields in scanner.found.
const (
	fNoticeID = iota
	fNotificationID
	fProductID
	fEventType
	fSID
	fNotifyMs
	fPayloadCname
	fPayloadSID
	fMsgName
	nFields
)

// span is where a field's value lies in the body, or its decoded text when
// it needed decoding (escapes, invalid UTF-8).
type span struct {
	lo, hi  int
	set     bool
	decoded bool
	text    string
}

// fields copies the routing fields found out of the body: one allocation
// for all of them, instead of one each.
func (s *scanner) fields() envelopeFields {
	n := 0
	for _, sp := range s.found {
		if sp.set && !sp.decoded {
			n += sp.hi - sp.lo
		}
	}
	var b strings.Builder
	b.Grow(n)
	var offs [nFields][2]int
	for i, sp := range s.found {
		if sp.set && !sp.decoded {
			offs[i][0] = b.Len()
			b.Write(s.b[sp.lo:sp.hi])
			offs[i][1] = b.Len()
		}
	}
	all := b.String()
	var out [nFields]string
	for i, sp := range s.found {
		switch {
		case sp.decoded:
			out[i] = sp.text
		case sp.set:
			out[i] = all[offs[i][0]:offs[i][1]]
		}
	}
	return envelopeFields{
		noticeID: out[fNoticeID], notificationID: out[fNotificationID], productID: out[fProductID],
		eventType: out[fEventType], sid: out[fSID], notifyMs: out[fNotifyMs],
		payloadCname: out[fPayloadCname], payloadSID: out[fPayloadSID], msgName: out[fMsgName],
	}
}

// fieldOf says what the envelope reads under key at level: the field
// index dst (or -1), or the level of the object nested there (or ignored).
func fieldOf(level fieldSet, key []byte) (dst int, nested fieldSet) {
	dst, nested = -1, ignored
	switch level {
	case topLevel:
		switch string(key) {
		case "noticeId":
			dst = fNoticeID
		case "notificationId":
			dst = fNotificationID
		case "productId":
			dst = fProductID
		case "eventType":
			dst = fEventType
		case "sid":
			dst = fSID
		case "notifyMs":
			dst = fNotifyMs
		case "payload":
			nested = payloadLevel
		}
	case payloadLevel:
		switch string(key) {
		case "cname":
			dst = fPayloadCname
		case "sid":
			dst = fPayloadSID
		case "details":
			nested = detailsLevel
		}
	case detailsLevel:
		if string(key) == "msgName" {
			dst = fMsgName
		}
	}
	return dst, nested
}
