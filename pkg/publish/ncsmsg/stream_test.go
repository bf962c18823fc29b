package ncsmsg

import (
	"context"
	"maps"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// TestPublishedHeaders: what Publisher stores through the real publisher is
// Message's subject and headers plus Nats-Msg-Id, byte for byte, for each
// notification in a row (a full one after a dead letter with fewer headers
// and before it, so that reused header storage leaks nothing).
func TestPublishedHeaders(t *testing.T) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir(),
	})
	if err != nil {
		t.Fatalf("new nats server: %v", err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	pub, err := publish.New(publish.Config{URL: srv.ClientURL(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")}, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	js, err := jetstream.New(pub.Conn())
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	s, err := js.Stream(context.Background(), publish.DefaultStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}

	at := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC)
	bodies := [][]byte{
		webhookFixture(t, "uploaded.json"),
		[]byte("ping"),
		webhookFixture(t, "legacy.json"),
		[]byte(`{"productId":3,"eventType":31,"payload":{"cname":"c"}}`),
		[]byte(`{"eventType":10,"noticeId":"n-5","notifyMs":1560408533119,"payload":{},"productId":1}`),
	}
	np := Publisher{Pub: pub, Prefix: publish.DefaultSubjectPrefix}
	for i, body := range bodies {
		n := webhook.Parse(body, at)
		want := Message(n, publish.DefaultSubjectPrefix)
		if o, err := np.Publish(context.Background(), n); err != nil || o != webhook.Published {
			t.Fatalf("publish %d: got %v, %v, want published", i, o, err)
		}
		got, err := s.GetMsg(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatalf("get message %d: %v", i+1, err)
		}
		wantHdr := maps.Clone(want.Header)
		wantHdr[jetstream.MsgIDHeader] = []string{want.ID}
		if got.Subject != want.Subject || !reflect.DeepEqual(got.Header, wantHdr) || string(got.Data) != string(body) {
			t.Errorf("message %d: got %s %q %q, want %s %q and the body", i, got.Subject, got.Header, got.Data, want.Subject, wantHdr)
		}
	}
}
