package ncsmsg

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// webhookFixture reads a body from pkg/webhook's testdata, without the
// file's final newline.
func webhookFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "webhook", "testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return bytes.TrimRight(b, "\n")
}

// TestNotificationMessage pins the mapping byte for byte: subjects, ids and
// headers are what webhook.Notification.Message produced before the seam
// moved it here (captured from that code), so consumers see no change.
func TestNotificationMessage(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.FixedZone("x", 3600))
	const recv = "2026-03-04T04:06:07.890123456Z"
	tests := []struct {
		name    string
		body    []byte
		subject string
		id      string
		header  nats.Header
	}{
		{"uploaded", webhookFixture(t, "uploaded.json"), "agora.ncs.3.31", "2000001428:4330:107", nats.Header{
			"Agora-Cname": {"class_room_4821"}, "Agora-Event-Name": {"uploaded"}, "Agora-Event-Type": {"31"},
			"Agora-Notice-Id": {"2000001428:4330:107"}, "Agora-Product-Id": {"3"}, "Agora-Received-At": {recv},
			"Agora-Sid": {"38f8e3cfdc474cd56fc1ceba380d7e1a"},
		}},
		{"vector A", []byte(`{"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}`),
			"agora.ncs.1.10", "4eb720f0-8da7-11e9-a43e-53f411c2761f", nats.Header{
				"Agora-Event-Type": {"10"}, "Agora-Notice-Id": {"4eb720f0-8da7-11e9-a43e-53f411c2761f"},
				"Agora-Product-Id": {"1"}, "Agora-Received-At": {recv},
			}},
		{"legacy", webhookFixture(t, "legacy.json"), "agora.ncs.unknown.40", "f5e1c2a0-3b7d-11eb-8f2a-7b5e4c9d1a22", nats.Header{
			"Agora-Cname": {"legacy_room"}, "Agora-Event-Name": {"recorder_started"}, "Agora-Event-Type": {"40"},
			"Agora-Notice-Id": {"f5e1c2a0-3b7d-11eb-8f2a-7b5e4c9d1a22"}, "Agora-Product-Id": {"unknown"},
			"Agora-Received-At": {recv}, "Agora-Sid": {"a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"},
		}},
		{"hostile", []byte(`{"noticeId":"h1","productId":"a.>","eventType":"31.*","sid":"s\u0001","payload":{"sid":"p-sid","cname":"é"}}`),
			"agora.ncs.unknown.unknown", "h1", nats.Header{
				"Agora-Cname": {"é"}, "Agora-Event-Type": {"unknown"}, "Agora-Notice-Id": {"h1"},
				"Agora-Product-Id": {"unknown"}, "Agora-Received-At": {recv}, "Agora-Sid": {"p-sid"},
			}},
		{"dead letter: no id", []byte(`{"productId":3,"eventType":31,"payload":{"cname":"c"}}`),
			"agora.ncs.deadletter", "deadletter-5f91b6320f0e72a238c23e1ce6e56d00", nats.Header{
				"Agora-Cname": {"c"}, "Agora-Deadletter-Reason": {"no_id"}, "Agora-Event-Type": {"31"},
				"Agora-Product-Id": {"3"}, "Agora-Received-At": {recv},
			}},
		{"dead letter: not json", []byte("ping"), "agora.ncs.deadletter", "deadletter-758d61f26a44448384e5c4468a0dcb7a", nats.Header{
			"Agora-Deadletter-Reason": {"not_json"}, "Agora-Event-Type": {"unknown"}, "Agora-Product-Id": {"unknown"},
			"Agora-Received-At": {recv},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Message(webhook.Parse(tt.body, at), "agora.ncs")
			if m.Subject != tt.subject || m.ID != tt.id {
				t.Errorf("got subject %q id %q, want %q %q", m.Subject, m.ID, tt.subject, tt.id)
			}
			if !reflect.DeepEqual(m.Header, tt.header) {
				t.Errorf("got header %q, want %q", m.Header, tt.header)
			}
			if !bytes.Equal(m.Data, tt.body) {
				t.Errorf("got data %q, want the body byte for byte", m.Data)
			}
		})
	}
}

// fakeMessagePublisher records messages and answers as told.
type fakeMessagePublisher struct {
	outcome publish.Outcome
	err     error
	got     []publish.Message
}

func (f *fakeMessagePublisher) Publish(_ context.Context, m publish.Message) (publish.Outcome, error) {
	f.got = append(f.got, m)
	return f.outcome, f.err
}

func TestNotifierOutcomes(t *testing.T) {
	full := errors.Join(publish.ErrUnavailable, publish.ErrSpoolFull)
	tests := []struct {
		name    string
		outcome publish.Outcome
		err     error
		want    webhook.Outcome
		wantErr bool
	}{
		{"published", publish.Published, nil, webhook.Published, false},
		{"spooled", publish.Spooled, nil, webhook.Spooled, false},
		{"spool full", 0, full, 0, true},
		{"other error", 0, context.DeadlineExceeded, 0, true},
		{"outcome without error", publish.Outcome(42), nil, 0, true},
	}
	n := webhook.Parse([]byte(`{"noticeId":"n1","productId":3,"eventType":31}`), time.Now())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeMessagePublisher{outcome: tt.outcome, err: tt.err}
			got, err := Publisher{Pub: f, Prefix: "p.q"}.Publish(context.Background(), n)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("got %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("got error %v, want it to keep the cause %v", err, tt.err)
			}
			if len(f.got) != 1 || f.got[0].Subject != "p.q.3.31" || f.got[0].ID != "n1" {
				t.Errorf("got messages %+v, want one to p.q.3.31 keyed n1", f.got)
			}
		})
	}
}

// BenchmarkNotificationMessage measures the mapping's cost per notification.
func BenchmarkNotificationMessage(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "webhook", "testdata", "uploaded.json"))
	if err != nil {
		b.Fatalf("read fixture: %v", err)
	}
	n := webhook.Parse(bytes.TrimRight(body, "\n"), time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if m := Message(n, "agora.ncs"); m.ID == "" {
			b.Fatal("no id")
		}
	}
}
