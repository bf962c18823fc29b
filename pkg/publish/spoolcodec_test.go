package publish

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	tests := []struct {
		name string
		m    Message
	}{
		{"minimal", Message{Subject: "agora.ncs.1.10", ID: "a"}},
		{"no id", Message{Subject: "agora.ncs.1.10", Data: []byte("{}")}},
		{"headers and binary data", Message{
			Subject: "agora.ncs.3.31",
			ID:      "2000001428:4330:107",
			Header: nats.Header{
				"Agora-Signature":    []string{"5a3bb6a6d9fad2ea9ae3fb707a14c9d7f3136df1"},
				"Agora-Signature-V2": []string{"de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24"},
				"Multi":              []string{"one", "", "three"},
			},
			Data: []byte("{\"a\":1}\n\x00\xff\x80"),
		}},
		{"large data", Message{Subject: "s", ID: "i", Data: bytes.Repeat([]byte("x"), 70000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeRecord(nil, tt.m, at)
			if got, want := len(b), encodedSize(tt.m); got != want {
				t.Errorf("encoded size: got %d, want encodedSize %d", got, want)
			}
			r, err := decodeRecord(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !r.SpooledAt.Equal(at) {
				t.Errorf("spooled at: got %v, want %v", r.SpooledAt, at)
			}
			if r.Msg.Subject != tt.m.Subject || r.Msg.ID != tt.m.ID || !bytes.Equal(r.Msg.Data, tt.m.Data) {
				t.Errorf("message: got %q %q %q, want %q %q %q",
					r.Msg.Subject, r.Msg.ID, r.Msg.Data, tt.m.Subject, tt.m.ID, tt.m.Data)
			}
			if len(tt.m.Header) > 0 && !reflect.DeepEqual(r.Msg.Header, tt.m.Header) {
				t.Errorf("header: got %v, want %v", r.Msg.Header, tt.m.Header)
			}
			if len(tt.m.Header) == 0 && len(r.Msg.Header) != 0 {
				t.Errorf("header: got %v, want none", r.Msg.Header)
			}
			// The decoded data must not alias the buffer (bbolt reuses it).
			for i := range b {
				b[i] = 0
			}
			if !bytes.Equal(r.Msg.Data, tt.m.Data) {
				t.Errorf("data after overwriting the buffer: got %q, want %q", r.Msg.Data, tt.m.Data)
			}
		})
	}
}

func TestDecodeRecordRejectsMalformed(t *testing.T) {
	good := encodeRecord(nil, Message{Subject: "agora.ncs.1.10", ID: "id", Header: nats.Header{"K": []string{"v"}}, Data: []byte("{}")}, time.Now())
	badVersion := append([]byte{}, good...)
	badVersion[0] = 2
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:5]},
		{"version 2", badVersion},
		{"truncated subject", good[:11]},
		{"huge header count", append(append([]byte{}, good[:9]...), 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"bad varint", append(append([]byte{}, good[:9]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRecord(tt.b); err == nil {
				t.Errorf("decode: got nil error, want one")
			}
		})
	}
}
