package publish

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

func TestEmbeddedServesPublisherAndTCPClients(t *testing.T) {
	dir := t.TempDir()
	emb, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: dir, Anonymous: true}, zap.NewNop())
	if err != nil {
		t.Fatalf("start embedded: %v", err)
	}
	t.Cleanup(emb.Shutdown)

	jsc := emb.Server().JetStreamConfig()
	if jsc == nil || !jsc.SyncAlways {
		t.Errorf("jetstream sync always: got %+v, want SyncAlways by default", jsc)
	}
	if want := filepath.Join(dir, "jetstream"); jsc != nil && jsc.StoreDir != want {
		t.Errorf("jetstream store dir: got %q, want %q", jsc.StoreDir, want)
	}

	cfg := testConfig("", t.TempDir())
	cfg.Embedded = emb
	p := newTestPublisher(t, cfg, true)

	// A separate client over TCP, as a local consumer would be.
	sub, err := nats.Connect(emb.ClientURL())
	if err != nil {
		t.Fatalf("connect over tcp to %s: %v", emb.ClientURL(), err)
	}
	t.Cleanup(sub.Close)
	s, err := sub.SubscribeSync("agora.ncs.>")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}

	m := testMsg(7)
	if out, err := p.Publish(context.Background(), m); err != nil || out != Published {
		t.Fatalf("publish: got %v, %v, want published, nil", out, err)
	}
	got, err := s.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("receive over tcp: %v", err)
	}
	if got.Subject != m.Subject || !bytes.Equal(got.Data, m.Data) || got.Header.Get(jetstream.MsgIDHeader) != m.ID {
		t.Errorf("received: got %s %q id %q, want %s %q id %q",
			got.Subject, got.Data, got.Header.Get(jetstream.MsgIDHeader), m.Subject, m.Data, m.ID)
	}
	if st := p.Status(context.Background()); st.ServerURL != emb.ClientURL() || st.StreamMessages != 1 {
		t.Errorf("status: got %+v, want server %s and 1 stream message", st, emb.ClientURL())
	}
}

func TestEmbeddedSyncInterval(t *testing.T) {
	emb, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), SyncInterval: 2 * time.Minute}, zap.NewNop())
	if err != nil {
		t.Fatalf("start embedded: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	jsc := emb.Server().JetStreamConfig()
	if jsc == nil || jsc.SyncAlways || jsc.SyncInterval != 2*time.Minute {
		t.Errorf("jetstream sync: got %+v, want interval 2m, not always", jsc)
	}
}

func TestStartEmbeddedErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = busy.Close() })

	tests := []struct {
		name string
		cfg  EmbeddedConfig
		want string
	}{
		{"no store dir", EmbeddedConfig{Listen: "127.0.0.1:0"}, "state_dir: must be set"},
		{"listen without port", EmbeddedConfig{Listen: "127.0.0.1", StoreDir: t.TempDir()}, "missing port"},
		{"port out of range", EmbeddedConfig{Listen: "127.0.0.1:70000", StoreDir: t.TempDir()}, "not a port number"},
		{"port in use", EmbeddedConfig{Listen: busy.Addr().String(), StoreDir: t.TempDir(), ReadyTimeout: time.Second}, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emb, err := StartEmbedded(tt.cfg, zap.NewNop())
			if err == nil {
				emb.Shutdown()
				t.Fatalf("start embedded: got nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("start embedded: got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
