package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"
)

// The signature vector of agora/NCS.md section 2 (body A, secret "secret").
func TestSignerVector(t *testing.T) {
	body := []byte(`{"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}`)
	const want = "de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24"
	s := newSigner("secret")
	for range 2 { // the second call checks that Reset works
		if got := s.sign(body); got != want {
			t.Fatalf("sign = %s, want %s", got, want)
		}
	}
}

func TestCorpusBodies(t *testing.T) {
	sizes := sizeRange{200, 8192}
	c, err := newCorpus(200, sizes, 7)
	if err != nil {
		t.Fatal(err)
	}
	known := map[int]bool{}
	for _, k := range eventKinds {
		known[k.eventType] = true
	}
	s := newSigner("k")
	seen := map[string]bool{}
	var id [idLen]byte
	for seq := range uint64(400) { // every template twice
		noticeID(42, seq, &id)
		body := c.body(seq, &id)

		mac := hmac.New(sha256.New, []byte("k"))
		mac.Write(body)
		if got, want := s.sign(body), hex.EncodeToString(mac.Sum(nil)); got != want {
			t.Fatalf("seq %d: signature %s, want %s", seq, got, want)
		}
		var n struct {
			NoticeID  string `json:"noticeId"`
			NotifyMs  int64  `json:"notifyMs"`
			ProductID int    `json:"productId"`
			EventType int    `json:"eventType"`
			Payload   struct {
				Cname    string `json:"cname"`
				SID      string `json:"sid"`
				Sequence *int   `json:"sequence"`
				Details  struct {
					MsgName string `json:"msgName"`
				} `json:"details"`
			} `json:"payload"`
		}
		before := time.Now().UnixMilli()
		if err := json.Unmarshal(body, &n); err != nil {
			t.Fatalf("seq %d: body is not JSON: %v", seq, err)
		}
		// The gateway refuses a notifyMs older than 30 min: every body is
		// sent at the time it is made, as Agora does.
		if age := before - n.NotifyMs; age < 0 || age > 60_000 {
			t.Fatalf("seq %d: notifyMs %d is %d ms before now, want the time the body was made", seq, n.NotifyMs, age)
		}
		if n.NoticeID != string(id[:]) || seen[n.NoticeID] {
			t.Fatalf("seq %d: noticeId %q, want the fresh %q", seq, n.NoticeID, id)
		}
		seen[n.NoticeID] = true
		if got := scanNoticeID(body); got != n.NoticeID {
			t.Errorf("seq %d: scanNoticeID = %q, want %q", seq, got, n.NoticeID)
		}
		if n.ProductID != 3 || !known[n.EventType] || n.Payload.Details.MsgName == "" ||
			n.Payload.Cname == "" || len(n.Payload.SID) != 32 || n.Payload.Sequence == nil {
			t.Errorf("seq %d: not a Cloud Recording notification: %s", seq, body)
		}
		if len(body) > sizes.Max {
			t.Errorf("seq %d: %d bytes, above the %d maximum", seq, len(body), sizes.Max)
		}
	}
	lo, _, _, hi := c.sizeStats()
	if lo > 400 || hi < 4096 {
		t.Errorf("sizes span %d..%d B, want small and large bodies in 200:8192", lo, hi)
	}
}

func TestBuildBodyPadsExactly(t *testing.T) {
	c, err := newCorpus(50, sizeRange{3000, 3000}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, tm := range c.templates {
		if len(tm.body) != 3000 {
			t.Errorf("template %d (event %d): %d bytes, want exactly 3000", i, tm.eventType, len(tm.body))
		}
	}
}

func TestParseSizeRange(t *testing.T) {
	tests := []struct {
		in      string
		want    sizeRange
		wantErr bool
	}{
		{"200:8192", sizeRange{200, 8192}, false},
		{"512:512", sizeRange{512, 512}, false},
		{"8192:200", sizeRange{}, true},
		{"200", sizeRange{}, true},
		{"a:b", sizeRange{}, true},
		{"0:10", sizeRange{}, true},
	}
	for _, tt := range tests {
		got, err := parseSizeRange(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSizeRange(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
