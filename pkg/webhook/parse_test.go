package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	type want struct {
		id, product, event, name, sid, cname, dead string
	}
	long := strings.Repeat("9", maxTokenLen+1)
	tests := []struct {
		name string
		body string
		want want
	}{
		{"vector A", vectorA, want{id: testNoticeID, product: "1", event: "10"}},
		{"vector B", vectorB, want{id: testNoticeID, product: "1", event: "10"}},
		{"cloud recording uploaded", string(fixture(t, "uploaded.json")), want{
			id: "2000001428:4330:107", product: "3", event: "31", name: "uploaded",
			sid: "38f8e3cfdc474cd56fc1ceba380d7e1a", cname: "class_room_4821"}},
		{"legacy format", string(fixture(t, "legacy.json")), want{
			id: "f5e1c2a0-3b7d-11eb-8f2a-7b5e4c9d1a22", product: "unknown", event: "40",
			name: "recorder_started", sid: "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5", cname: "legacy_room"}},
		{"numeric strings", `{"noticeId":"n1","productId":"3","eventType":" 31 "}`,
			want{id: "n1", product: "3", event: "31"}},
		{"numeric id", `{"noticeId":12345,"productId":17,"eventType":101}`,
			want{id: "12345", product: "17", event: "101"}},
		{"32-hex id", `{"noticeId":"0123456789abcdef0123456789abcdef","productId":4,"eventType":1}`,
			want{id: "0123456789abcdef0123456789abcdef", product: "4", event: "1"}},
		{"escaped id", `{"noticeId":"caf\u00e9-\"q\"","productId":1,"eventType":1}`,
			want{id: `café-"q"`, product: "1", event: "1"}},
		{"noticeId wins over notificationId", `{"noticeId":"new","notificationId":"old","eventType":1}`,
			want{id: "new", product: "unknown", event: "1"}},
		{"unknown product passes", `{"noticeId":"n","productId":999,"eventType":12345}`,
			want{id: "n", product: "999", event: "12345"}},
		{"hostile product", `{"noticeId":"n","productId":"a.>","eventType":"*"}`,
			want{id: "n", product: "unknown", event: "unknown"}},
		{"product with space", `{"noticeId":"n","productId":"3 4","eventType":"x.y"}`,
			want{id: "n", product: "unknown", event: "unknown"}},
		{"product too long", `{"noticeId":"n","productId":` + long + `,"eventType":1}`,
			want{id: "n", product: "unknown", event: "1"}},
		{"float product", `{"noticeId":"n","productId":3.5,"eventType":true}`,
			want{id: "n", product: "unknown", event: "unknown"}},
		{"missing product and event", `{"noticeId":"n"}`, want{id: "n", product: "unknown", event: "unknown"}},
		{"top sid wins", `{"noticeId":"n","sid":"top","payload":{"sid":"inner"}}`,
			want{id: "n", product: "unknown", event: "unknown", sid: "top"}},
		{"hostile sid falls back", `{"noticeId":"n","sid":"a\r\nX: y","payload":{"sid":"inner","cname":"c\nd"}}`,
			want{id: "n", product: "unknown", event: "unknown", sid: "inner"}},
		{"payload not an object", `{"noticeId":"n","productId":3,"payload":"text","eventType":1}`,
			want{id: "n", product: "3", event: "1"}},
		{"details not an object", `{"noticeId":"n","payload":{"cname":"c","details":[1,2]},"productId":3}`,
			want{id: "n", product: "3", event: "unknown", cname: "c"}},
		{"cname a number", `{"noticeId":"n","payload":{"cname":42}}`,
			want{id: "n", product: "unknown", event: "unknown", cname: "42"}},
		{"leading whitespace", "\r\n\t " + vectorA, want{id: testNoticeID, product: "1", event: "10"}},
		{"id with CRLF", `{"noticeId":"a\r\nNats-Msg-Id: x","productId":1,"eventType":1}`,
			want{product: "1", event: "1", dead: DeadLetterNoID}},
		{"id too long", `{"noticeId":"` + strings.Repeat("a", maxHeaderValueLen+1) + `","eventType":1}`,
			want{product: "unknown", event: "1", dead: DeadLetterNoID}},
		{"id object", `{"noticeId":{"a":1},"productId":1}`, want{product: "1", event: "unknown", dead: DeadLetterNoID}},
		{"id empty", `{"noticeId":"","productId":1,"eventType":2}`, want{product: "1", event: "2", dead: DeadLetterNoID}},
		{"id absent", `{"productId":1,"eventType":2}`, want{product: "1", event: "2", dead: DeadLetterNoID}},
		{"id null", `{"noticeId":null}`, want{product: "unknown", event: "unknown", dead: DeadLetterNoID}},
		{"empty object", `{}`, want{product: "unknown", event: "unknown", dead: DeadLetterNoID}},
		{"empty body", ``, want{product: "unknown", event: "unknown", dead: DeadLetterNotJSON}},
		{"text", `hello`, want{product: "unknown", event: "unknown", dead: DeadLetterNotJSON}},
		{"array", `[{"noticeId":"n"}]`, want{product: "unknown", event: "unknown", dead: DeadLetterNotJSON}},
		{"string", `"n"`, want{product: "unknown", event: "unknown", dead: DeadLetterNotJSON}},
		{"null", `null`, want{product: "unknown", event: "unknown", dead: DeadLetterNotJSON}},
		{"truncated", vectorA[:40], want{product: "unknown", event: "unknown", dead: DeadLetterNotJSON}},
		{"trailing garbage", vectorA + "x", want{product: "unknown", event: "unknown", dead: DeadLetterNotJSON}},
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Parse([]byte(tt.body), at)
			got := want{n.ID, n.ProductID, n.EventType, n.EventName, n.SID, n.Cname, n.DeadLetterReason}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !bytes.Equal(n.Body, []byte(tt.body)) {
				t.Errorf("got body %q, want %q", n.Body, tt.body)
			}
			if !n.ReceivedAt.Equal(at) {
				t.Errorf("got received at %v, want %v", n.ReceivedAt, at)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	uploaded := fixture(t, "uploaded.json")
	tests := []struct {
		name        string
		body        []byte
		wantSubject string
		wantID      string
		wantHeader  map[string]string // "" means absent
	}{
		{"cloud recording", uploaded, "agora.ncs.3.31", "2000001428:4330:107", map[string]string{
			HeaderNoticeID: "2000001428:4330:107", HeaderProductID: "3", HeaderEventType: "31",
			HeaderEventName: "uploaded", HeaderSID: "38f8e3cfdc474cd56fc1ceba380d7e1a",
			HeaderCname: "class_room_4821", HeaderReceivedAt: "2026-01-02T02:04:05.123456789Z",
			HeaderDeadletterReason: "",
		}},
		{"vector A", []byte(vectorA), "agora.ncs.1.10", testNoticeID, map[string]string{
			HeaderNoticeID: testNoticeID, HeaderProductID: "1", HeaderEventType: "10",
			HeaderEventName: "", HeaderSID: "", HeaderCname: "",
		}},
		{"legacy", fixture(t, "legacy.json"), "agora.ncs.unknown.40", "f5e1c2a0-3b7d-11eb-8f2a-7b5e4c9d1a22", map[string]string{
			HeaderNoticeID: "f5e1c2a0-3b7d-11eb-8f2a-7b5e4c9d1a22", HeaderProductID: "unknown", HeaderEventType: "40",
			HeaderEventName: "recorder_started", HeaderCname: "legacy_room",
		}},
		{"hostile product", []byte(`{"noticeId":"n","productId":"a.>","eventType":"b c"}`), "agora.ncs.unknown.unknown", "n", nil},
		{"not json", []byte("not json"), "agora.ncs.deadletter", deadletterIDOf("not json"), map[string]string{
			HeaderDeadletterReason: DeadLetterNotJSON, HeaderNoticeID: "", HeaderReceivedAt: "2026-01-02T02:04:05.123456789Z",
		}},
		{"no id", []byte(`{"productId":3,"eventType":31}`), "agora.ncs.deadletter", deadletterIDOf(`{"productId":3,"eventType":31}`), map[string]string{
			HeaderDeadletterReason: DeadLetterNoID, HeaderNoticeID: "", HeaderProductID: "3", HeaderEventType: "31",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse(tt.body, at).Message(testPrefix)
			if m.Subject != tt.wantSubject {
				t.Errorf("got subject %q, want %q", m.Subject, tt.wantSubject)
			}
			if m.ID != tt.wantID {
				t.Errorf("got id %q, want %q", m.ID, tt.wantID)
			}
			if !bytes.Equal(m.Data, tt.body) {
				t.Errorf("got data %q, want the body byte for byte", m.Data)
			}
			for k, want := range tt.wantHeader {
				if got := m.Header.Get(k); got != want {
					t.Errorf("got header %s %q, want %q", k, got, want)
				}
			}
			if got := m.Header.Get("Nats-Msg-Id"); got != "" {
				t.Errorf("got Nats-Msg-Id %q, want it left to publish", got)
			}
			for k, vs := range m.Header {
				if len(vs) != 1 || strings.ContainsAny(vs[0], "\r\n") {
					t.Errorf("got header %s %q, want one value without CR or LF", k, vs)
				}
			}
		})
	}
}

// deadletterIDOf computes the expected dead-letter id independently.
func deadletterIDOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return "deadletter-" + hex.EncodeToString(sum[:])[:32]
}

func TestDeadletterIDDedupes(t *testing.T) {
	a := Parse([]byte("x"), time.Now()).Message(testPrefix).ID
	again := Parse([]byte("x"), time.Now().Add(time.Second)).Message(testPrefix).ID
	other := Parse([]byte("y"), time.Now()).Message(testPrefix).ID
	if a != again {
		t.Errorf("got %q and %q for one body, want equal ids", a, again)
	}
	if a == other {
		t.Errorf("got %q for two bodies, want different ids", a)
	}
}
