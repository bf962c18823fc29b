package publish

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// TestClassifyReply: only a positive acknowledgement naming the gateway's
// stream with a sequence, the server's no-responders status and (for a
// probe) the leader's rejection end a publish; every other answer a reader
// can make the server send is ignored, by kind.
func TestClassifyReply(t *testing.T) {
	r := &replies{stream: DefaultStream, ackHead: []byte(`{"stream":"AGORA_NCS","seq":`)}
	hdr := func(kv ...string) nats.Header {
		h := nats.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name     string
		msg      nats.Msg
		wantRes  ackResult
		wantKind string
	}{
		{"stored", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS","seq":12}`)}, ackStored, ""},
		{"duplicate", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS","seq":12,"duplicate":true}`)}, ackDuplicate, ""},
		{"duplicate, spaced", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS","seq":12, "duplicate": true}`)}, ackDuplicate, ""},
		{"domain", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS","seq":3,"domain":"hub"}`)}, ackStored, ""},
		{"member order", nats.Msg{Data: []byte(`{"seq":3,"stream":"AGORA_NCS"}`)}, ackStored, ""},
		{"no responders", nats.Msg{Header: hdr("Status", "503", "Nats-Subject", "agora.ncs.3.31")}, ackNoResponders, ""},
		{"probe rejected", nats.Msg{Data: []byte(`{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}`)}, ackRejected, ""},
		{"another stream", nats.Msg{Data: []byte(`{"stream":"KV_NCS_SESSIONS","seq":4}`)}, 0, ignoredOther},
		{"sequence zero", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS","seq":0}`)}, 0, ignoredOther},
		{"no sequence", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS"}`)}, 0, ignoredOther},
		{"api answer", nats.Msg{Data: []byte(`{"type":"io.nats.jetstream.api.v1.account_info_response","memory":0}`)}, 0, ignoredOther},
		{"api answer naming the stream", nats.Msg{Data: []byte(`{"type":"x","stream":"AGORA_NCS","seq":1}`)}, 0, ignoredOther},
		{"consumer not found", nats.Msg{Data: []byte(`{"type":"io.nats.jetstream.api.v1.consumer_info_response","error":{"code":404,"err_code":10014,"description":"consumer not found"}}`)}, 0, ignoredError},
		{"error after stream", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS","seq":1,"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`)}, 0, ignoredError},
		{"not json", nats.Msg{Data: []byte(`{"stream":"AGORA_NCS"`)}, 0, ignoredOther},
		{"empty", nats.Msg{}, 0, ignoredOther},
		{"direct get", nats.Msg{Header: hdr("Nats-Stream", "AGORA_NCS", "Nats-Sequence", "1"), Data: []byte(`{"stream":"AGORA_NCS","seq":1}`)}, 0, ignoredMessage},
		{"direct get of a 503", nats.Msg{Header: hdr("Status", "503", "Nats-Stream", "AGORA_NCS", "Nats-Sequence", "1")}, 0, ignoredStatus},
		{"consumer delivery", nats.Msg{Reply: "$JS.ACK.AGORA_NCS.spoof.1.1.1.0.0", Data: []byte(`{"stream":"AGORA_NCS","seq":1}`)}, 0, ignoredMessage},
		{"not found status", nats.Msg{Header: hdr("Status", "404", "Description", "Message Not Found")}, 0, ignoredStatus},
		{"503 with data", nats.Msg{Header: hdr("Status", "503"), Data: []byte("x")}, 0, ignoredStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, kind := r.classify(&tt.msg)
			if res != tt.wantRes || kind != tt.wantKind {
				t.Errorf("got result %d kind %q, want result %d kind %q", res, kind, tt.wantRes, tt.wantKind)
			}
		})
	}
}
