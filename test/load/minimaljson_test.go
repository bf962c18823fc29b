package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestNoticeIDReaders(t *testing.T) {
	tests := []struct {
		body           string
		wantScan, want string // want: -decode json
	}{
		{`{"noticeId":"abc-1","productId":3,"eventType":31,"notifyMs":1,"payload":{"cname":"c","details":{"msgName":"m"}}}`, "abc-1", "abc-1"},
		{`{ "noticeId" : "spaced", "productId": 3 }`, "", "spaced"},
		{`{"notificationId":"legacy","productId":1}`, "", "legacy"},
		{`{"noticeId":"abc-1","productId":3`, "abc-1", ""}, // truncated: only a decoder sees it
		{`{"noticeId":"abc-1","productId":"three"}`, "abc-1", ""},
		{`[]`, "", ""},
	}
	scan, err := noticeIDReader(decodeScan)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := noticeIDReader(decodeJSON)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := scan([]byte(tt.body)); got != tt.wantScan {
			t.Errorf("scan %q: got %q, want %q", tt.body, got, tt.wantScan)
		}
		if got := dec([]byte(tt.body)); got != tt.want {
			t.Errorf("json %q: got %q, want %q", tt.body, got, tt.want)
		}
	}
	if _, err := noticeIDReader("xml"); err == nil {
		t.Error("got no error for -decode xml, want one")
	}
}

// TestMinimalHandlerDecodesJSON: with -decode json the receiver publishes
// the id it decoded and refuses a signed body that is not JSON.
func TestMinimalHandlerDecodesJSON(t *testing.T) {
	for _, tt := range []struct {
		body     string
		wantCode int
	}{
		{`{"noticeId":"abc-2","productId":3,"eventType":31,"payload":{}}`, http.StatusOK},
		{`{"noticeId":"abc-2",`, http.StatusBadRequest},
	} {
		js := &fakeJS{}
		h := &minimalHandler{key: []byte("s"), js: js, subject: minimalSubject, noticeID: decodeNoticeID}
		req := httptest.NewRequest(http.MethodPost, "/agora/ncs", strings.NewReader(tt.body))
		req.Header.Set("Agora-Signature-V2", newSigner("s").sign([]byte(tt.body)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.wantCode {
			t.Fatalf("%q: got status %d, want %d (%s)", tt.body, rec.Code, tt.wantCode, rec.Body)
		}
		if tt.wantCode == http.StatusOK {
			if id := js.msgs[0].Header.Get(jetstream.MsgIDHeader); id != "abc-2" {
				t.Errorf("got Nats-Msg-Id %q, want abc-2", id)
			}
		}
	}
}
