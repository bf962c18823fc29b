package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// referenceEnvelope is the envelope decoded by encoding/json, the
// implementation scanEnvelope replaced; the differential fuzz target holds
// the scanner to its answers.
type referenceEnvelope struct {
	NoticeID       refScalar `json:"noticeId"`
	NotificationID refScalar `json:"notificationId"`
	ProductID      refScalar `json:"productId"`
	EventType      refScalar `json:"eventType"`
	SID            refScalar `json:"sid"`
	NotifyMs       refScalar `json:"notifyMs"`
	Payload        struct {
		Cname   refScalar `json:"cname"`
		SID     refScalar `json:"sid"`
		Details struct {
			MsgName refScalar `json:"msgName"`
		} `json:"details"`
	} `json:"payload"`
}

// refScalar keeps a string's decoded contents or a number's literal text.
type refScalar string

func (s *refScalar) UnmarshalJSON(b []byte) error {
	switch {
	case b[0] == '"':
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = refScalar(str)
	case b[0] == '-' || ('0' <= b[0] && b[0] <= '9'):
		*s = refScalar(b)
	}
	return nil
}

// referenceScan decodes body with encoding/json; ok is false for what is not
// a JSON object.
func referenceScan(body []byte) (envelopeFields, bool) {
	if !json.Valid(body) || !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return envelopeFields{}, false
	}
	var env referenceEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return envelopeFields{}, false
		}
	}
	return envelopeFields{
		noticeID: string(env.NoticeID), notificationID: string(env.NotificationID),
		productID: string(env.ProductID), eventType: string(env.EventType), sid: string(env.SID),
		notifyMs:     string(env.NotifyMs),
		payloadCname: string(env.Payload.Cname), payloadSID: string(env.Payload.SID),
		msgName: string(env.Payload.Details.MsgName),
	}, true
}

// caseFolded reports whether body has a key that encoding/json would match
// to one of ours only by case folding ("NOTICEID"); the scanner matches
// keys exactly, on purpose.
func caseFolded(body []byte) bool {
	names := []string{"noticeId", "notificationId", "productId", "eventType", "sid", "notifyMs", "payload", "cname", "details", "msgName"}
	var walk func(raw json.RawMessage) bool
	walk = func(raw json.RawMessage) bool {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			var arr []json.RawMessage
			if json.Unmarshal(raw, &arr) == nil {
				for _, v := range arr {
					if walk(v) {
						return true
					}
				}
			}
			return false
		}
		for k, v := range obj {
			for _, n := range names {
				if k != n && strings.EqualFold(k, n) {
					return true
				}
			}
			if walk(v) {
				return true
			}
		}
		return false
	}
	return walk(body)
}

var scanCases = []string{
	vectorA, vectorB,
	`{"noticeId":"a","noticeId":null}`,
	`{"noticeId":"a","noticeId":7}`,
	`{"payload":{"cname":"c"},"payload":{"sid":"s"}}`,
	`{"payload":"x","noticeId":"after-type-error"}`,
	`{"payload":{"details":[1,2]},"eventType":31}`,
	`{"noticeI\u0064":"escaped-key","sid":"\u00e9t\u00e9"}`,
	`{"noticeId":"bad-utf8-` + "\xff" + `"}`,
	`{"productId":-0.5e+3,"eventType":1E2}`,
	`{"notifyMs":"1560408533119","noticeId":"x","payload":{"notifyMs":1}}`,
	`{"notifyMs":1.560408533119e12,"notifyMs":null}`,
	` {"a":[{"b":{"c":[true,false,null]}}],"noticeId":"x"} `,
	`{"noticeId":"x"} trailing`,
	`{"noticeId":"x",}`,
	`{"noticeId":01}`,
	`{"noticeId":"\x"}`,
	`{"noticeId":"` + "\x01" + `"}`,
	`{"noticeId":tru}`,
	`[{"noticeId":"x"}]`,
	`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	`{"a":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `,"noticeId":"deep"}`,
	``, `{`, `{"`, `{"a"`, `{"a":`, `{"a":1`, `{"a":"\u12`,
}

func TestScanEnvelopeMatchesEncodingJSON(t *testing.T) {
	for _, c := range scanCases {
		gotF, gotOK := scanEnvelope([]byte(c))
		wantF, wantOK := referenceScan([]byte(c))
		if gotOK != wantOK || gotF != wantF {
			t.Errorf("%.60q: got %+v ok=%v, want %+v ok=%v", c, gotF, gotOK, wantF, wantOK)
		}
	}
}

// FuzzScanEnvelope holds the single-pass scanner to encoding/json: the same
// verdict on validity and the same fields, for any input.
func FuzzScanEnvelope(f *testing.F) {
	for _, c := range scanCases {
		f.Add([]byte(c))
	}
	f.Add(fixture(f, "uploaded.json"))
	f.Add(fixture(f, "legacy.json"))
	f.Fuzz(func(t *testing.T, body []byte) {
		gotF, gotOK := scanEnvelope(body)
		wantF, wantOK := referenceScan(body)
		if gotOK != wantOK {
			t.Fatalf("%q: valid object: got %v, want %v", body, gotOK, wantOK)
		}
		if gotF != wantF && !caseFolded(body) {
			t.Fatalf("%q: got %+v, want %+v", body, gotF, wantF)
		}
	})
}
