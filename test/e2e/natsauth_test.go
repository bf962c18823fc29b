package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEmbeddedNATSLocalAttacker is the attack issue 8 names, against the
// built daemon: a local process without credentials connects to the
// embedded NATS and tries to forge a notification and to empty the stream.
// It may read (the quickstart's `nats sub` and `nats stream view`), never
// write.
func TestEmbeddedNATSLocalAttacker(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	g.start()
	natsURL := embeddedURL(t, g)
	if code, ans := g.post(testSecret, notification("genuine-1", time.Now().UnixMilli())); code != http.StatusOK {
		t.Fatalf("signed: got %d %s, want 200", code, ans)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("anonymous connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A refused publish is dropped by the server (a permissions violation),
	// so the client sees no acknowledgement: bound each attempt.
	publish := func(subject string, data []byte) error {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		_, err := js.Publish(pctx, subject, data)
		return err
	}
	forged := notification("forged-uploaded", time.Now().UnixMilli())
	if err := publish("agora.ncs.3.31", forged); err == nil {
		t.Errorf("anonymous JetStream publish of a made-up event: got acknowledged, want refused")
	}
	if err := publish("agora.ncs.deadletter", []byte("x")); err == nil {
		t.Errorf("anonymous publish to the dead-letter subject: got acknowledged, want refused")
	}
	s, err := js.Stream(ctx, "AGORA_NCS")
	if err != nil {
		t.Fatalf("anonymous stream info (a read): %v", err)
	}
	// Each refused API call times out the same way: bound each.
	attempt := func(f func(context.Context) error) error {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		defer acancel()
		return f(actx)
	}
	if err := attempt(func(c context.Context) error { return s.Purge(c) }); err == nil {
		t.Errorf("anonymous purge: got nil error, want refused")
	}
	if err := attempt(func(c context.Context) error { return js.DeleteStream(c, "AGORA_NCS") }); err == nil {
		t.Errorf("anonymous stream delete: got nil error, want refused")
	}
	if err := attempt(func(c context.Context) error {
		_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
		return err
	}); err == nil {
		t.Errorf("anonymous stream create: got nil error, want refused")
	}

	// Reads still work without credentials: an ordered consumer over the
	// stream, as `nats stream view` uses.
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("anonymous ordered consumer: %v", err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("anonymous read of the stream: %v", err)
	}
	if got := m.Headers().Get("Nats-Msg-Id"); got != "genuine-1" {
		t.Errorf("first message: got id %q, want genuine-1", got)
	}
	msgs := streamMessages(t, natsURL, "AGORA_NCS")
	if len(msgs) != 1 {
		t.Errorf("stream holds %d messages after the attack, want 1 (the genuine one)", len(msgs))
	}
	if err := nc.LastError(); err != nil && !errors.Is(err, nats.ErrPermissionViolation) {
		t.Logf("connection's last error: %v", err)
	}
}
