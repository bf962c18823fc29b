package main

import (
	"context"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

type okPublisher struct{}

func (okPublisher) Publish(context.Context, webhook.Notification) (webhook.Outcome, error) {
	return webhook.Published, nil
}

// TestLoadTLS runs the -tls plumbing against the real webhook server: the
// generated certificate is served and trusted, an h2-offering client gets
// HTTP/1.1, and the hand-written attackers' TLS dial speaks HTTP/1.1.
func TestLoadTLS(t *testing.T) {
	lt, err := newLoadTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := webhook.NewServer(webhook.Config{
		Listen: "127.0.0.1:0", Path: "/agora/ncs", Secrets: []string{"k"},
		TLSCertFile: lt.certFile, TLSKeyFile: lt.keyFile,
	}, okPublisher{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	addr := s.Addr().String()
	ctx := context.Background()
	got, err := negotiatedProto(ctx, "https://"+addr+"/agora/ncs", lt.client)
	if err != nil || got != "HTTP/1.1 (ALPN http/1.1)" {
		t.Errorf("got %q, %v; want HTTP/1.1 (ALPN http/1.1)", got, err)
	}

	c, err := newCorpus(4, sizeRange{200, 400}, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := attackPlan{addr: addr, path: "/agora/ncs", secret: "k", corpus: c, tls: lt.client}
	var st attackStats
	conn, _, err := p.idleRequest(ctx, 1, 1, &st)
	if err != nil {
		t.Fatalf("idle request over tls: %v (answers %s)", err, &st.idle)
	}
	conn.Close()
	if st.idleOK.Load() != 1 {
		t.Errorf("got %d idle 200s, want 1", st.idleOK.Load())
	}
}
