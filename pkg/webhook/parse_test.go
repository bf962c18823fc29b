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

func TestParseNotifyAt(t *testing.T) {
	tests := []struct {
		name string
		body string
		want time.Time // zero: no usable notifyMs
	}{
		{"vector A", vectorA, time.UnixMilli(1560408533119)},
		{"string", `{"noticeId":"n","notifyMs":"1560408533119"}`, time.UnixMilli(1560408533119)},
		{"exponent", `{"noticeId":"n","notifyMs":1.560408533119e12}`, time.UnixMilli(1560408533119)},
		{"zero is a time", `{"noticeId":"n","notifyMs":0}`, time.UnixMilli(0)},
		{"absent (legacy)", `{"notificationId":"n","eventMs":1560408533119}`, time.Time{}},
		{"only in payload", `{"noticeId":"n","payload":{"notifyMs":1560408533119}}`, time.Time{}},
		{"null", `{"noticeId":"n","notifyMs":null}`, time.Time{}},
		{"not a number", `{"noticeId":"n","notifyMs":"soon"}`, time.Time{}},
		{"out of range", `{"noticeId":"n","notifyMs":1e300}`, time.Time{}},
		{"not json", `notifyMs`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse([]byte(tt.body), time.Now()).NotifyAt
			if !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
				t.Errorf("got notify at %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	at := time.Now()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"notice id", vectorA, testNoticeID},
		{"legacy id", `{"notificationId":"legacy-1"}`, "legacy-1"},
		{"not json", "not json", deadletterIDOf("not json")},
		{"no id", `{"productId":3,"eventType":31}`, deadletterIDOf(`{"productId":3,"eventType":31}`)},
	}
	for _, tt := range tests {
		if got := Parse([]byte(tt.body), at).Key(); got != tt.want {
			t.Errorf("%s: got key %q, want %q", tt.name, got, tt.want)
		}
	}
}

// deadletterIDOf computes the expected dead-letter key independently.
func deadletterIDOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return "deadletter-" + hex.EncodeToString(sum[:])[:32]
}

func TestDeadletterKeyDedupes(t *testing.T) {
	a := Parse([]byte("x"), time.Now()).Key()
	again := Parse([]byte("x"), time.Now().Add(time.Second)).Key()
	other := Parse([]byte("y"), time.Now()).Key()
	if a != again {
		t.Errorf("got %q and %q for one body, want equal keys", a, again)
	}
	if a == other {
		t.Errorf("got %q for two bodies, want different keys", a)
	}
}
