package publish

import (
	"context"
	"maps"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishHeaders: the stream stores the message's headers with
// Nats-Msg-Id = ID whether the header already carries that id (sent as it
// is), carries none or another one (sent on a copy), and the caller's map
// is never modified; publishes in a row through the pooled messages keep
// nothing of each other.
func TestPublishHeaders(t *testing.T) {
	srv := startNATS(t)
	_, js := srv.client()
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), false)
	tests := []struct {
		name   string
		id     string
		header nats.Header
		want   nats.Header
	}{
		{"no id", "n1", nats.Header{"Agora-Sid": {"s1"}, "Agora-Cname": {"c1"}},
			nats.Header{"Agora-Sid": {"s1"}, "Agora-Cname": {"c1"}, jetstream.MsgIDHeader: {"n1"}}},
		{"its id", "n2", nats.Header{"Agora-Sid": {"s2"}, jetstream.MsgIDHeader: {"n2"}},
			nats.Header{"Agora-Sid": {"s2"}, jetstream.MsgIDHeader: {"n2"}}},
		{"another id", "n3", nats.Header{"Agora-Event-Name": {"e3"}, jetstream.MsgIDHeader: {"stale"}},
			nats.Header{"Agora-Event-Name": {"e3"}, jetstream.MsgIDHeader: {"n3"}}},
		{"no header", "n4", nil, nats.Header{jetstream.MsgIDHeader: {"n4"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.header)
			m := Message{Subject: "agora.ncs.3.31", ID: tt.id, Header: tt.header, Data: []byte(`{}`)}
			if out, err := p.Publish(context.Background(), m); err != nil || out != Published {
				t.Fatalf("publish: got %v, %v, want published", out, err)
			}
			if !reflect.DeepEqual(tt.header, before) {
				t.Errorf("caller's header: got %q after publish, want it unchanged %q", tt.header, before)
			}
			s, err := js.Stream(context.Background(), DefaultStream)
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			got, err := s.GetMsg(context.Background(), uint64(i+1))
			if err != nil {
				t.Fatalf("get message %d: %v", i+1, err)
			}
			if !reflect.DeepEqual(got.Header, tt.want) {
				t.Errorf("stored header: got %q, want %q", got.Header, tt.want)
			}
		})
	}
}
