package publish

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// attackTimeout bounds each refused request: a denied JetStream API call is
// dropped by the server, so the client only learns of it by timing out.
const attackTimeout = 2 * time.Second

// gatewayEmbedded is the daemon's shape: an embedded server on loopback and
// a running publisher on it that has stored one verified notification.
type gatewayEmbedded struct {
	emb *Embedded
	pub *testPublisher
	js  jetstream.JetStream // the gateway's own view, to check what a test did
}

func startGatewayEmbedded(t *testing.T, cfg EmbeddedConfig) *gatewayEmbedded {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.StoreDir = t.TempDir()
	cfg.SyncInterval = 2 * time.Minute
	emb, err := StartEmbedded(cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("start embedded: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	pcfg := testConfig("", t.TempDir())
	pcfg.Embedded = emb
	p := newTestPublisher(t, pcfg, true)
	if out, err := p.Publish(context.Background(), testMsg(1)); err != nil || out != Published {
		t.Fatalf("publish: got %v, %v, want published, nil", out, err)
	}
	return &gatewayEmbedded{emb: emb, pub: p, js: p.js}
}

// quietErrors drops the asynchronous permission errors these tests expect,
// which nats.go would otherwise print.
var quietErrors = nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})

// anonymous connects over TCP without credentials, as any local process can.
func anonymous(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second), quietErrors}, opts...)...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(attackTimeout))
	if err != nil {
		t.Fatalf("create jetstream context: %v", err)
	}
	return nc, js
}

// streamState is the gateway's view of the stream: config and message count.
func (g *gatewayEmbedded) streamState(t *testing.T) (jetstream.StreamConfig, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := g.js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatalf("gateway looks up its stream: %v", err)
	}
	info := s.CachedInfo()
	return info.Config, info.State.Msgs
}

// TestEmbeddedRefusesAnonymousWrites is issue 8's attack: a local process
// with no credentials forges or destroys notifications in the stream.
func TestEmbeddedRefusesAnonymousWrites(t *testing.T) {
	forged := func(subj string) *nats.Msg {
		m := nats.NewMsg(subj)
		m.Header.Set(jetstream.MsgIDHeader, "forged-"+subj)
		m.Data = []byte(`{"noticeId":"forged","productId":3,"eventType":31,"notifyMs":1700000000000,"payload":{}}`)
		return m
	}

	attacks := []struct {
		name   string
		attack func(ctx context.Context, js jetstream.JetStream) error
		// intact reports how the attack changed the stream, nil if not.
		intact func(cfg jetstream.StreamConfig, msgs uint64) error
	}{
		{"publish under the prefix", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.PublishMsg(ctx, forged("agora.ncs.3.31"))
			return err
		}, unchangedCount(1)},
		{"publish to the dead-letter subject", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.PublishMsg(ctx, forged("agora.ncs.deadletter"))
			return err
		}, unchangedCount(1)},
		{"purge the stream", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, DefaultStream)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}, unchangedCount(1)},
		{"delete a message", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, DefaultStream)
			if err != nil {
				return err
			}
			return s.DeleteMsg(ctx, 1)
		}, unchangedCount(1)},
		{"update the stream", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, DefaultStream)
			if err != nil {
				return err
			}
			cfg := s.CachedInfo().Config
			cfg.MaxMsgs = 1
			_, err = js.UpdateStream(ctx, cfg)
			return err
		}, func(cfg jetstream.StreamConfig, _ uint64) error {
			if cfg.MaxMsgs != -1 {
				return fmt.Errorf("max msgs %d, want -1", cfg.MaxMsgs)
			}
			return nil
		}},
		{"create another stream", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
			return err
		}, nil},
		{"delete the stream", func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, DefaultStream)
		}, nil},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel() // each waits out its refused request
			g := startGatewayEmbedded(t, EmbeddedConfig{Anonymous: true})
			_, js := anonymous(t, g.emb.ClientURL())
			ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
			defer cancel()
			if err := a.attack(ctx, js); err == nil {
				t.Errorf("%s: got nil error, want it refused", a.name)
			}
			cfg, msgs := g.streamState(t) // fails the test if the stream is gone
			if a.intact != nil {
				if err := a.intact(cfg, msgs); err != nil {
					t.Errorf("%s: stream changed: %v", a.name, err)
				}
			}
			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := g.js.Stream(ctx, "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("stream EVIL: got %v, want %v", err, jetstream.ErrStreamNotFound)
			}
		})
	}
}

// unchangedCount checks that the stream still holds want messages.
func unchangedCount(want uint64) func(jetstream.StreamConfig, uint64) error {
	return func(_ jetstream.StreamConfig, msgs uint64) error {
		if msgs != want {
			return fmt.Errorf("%d messages, want %d", msgs, want)
		}
		return nil
	}
}

// TestEmbeddedHidesGatewayReplies: a local reader that could see the
// gateway's acknowledgements could learn its reply subjects and race
// JetStream with a forged acknowledgement.
func TestEmbeddedHidesGatewayReplies(t *testing.T) {
	g := startGatewayEmbedded(t, EmbeddedConfig{Anonymous: true})
	nc, _ := anonymous(t, g.emb.ClientURL())
	sub, err := nc.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if out, err := g.pub.Publish(context.Background(), testMsg(2)); err != nil || out != Published {
		t.Fatalf("publish: got %v, %v, want published, nil", out, err)
	}
	// The acknowledgement went out before Publish returned; a round trip
	// on the reader's connection flushes anything in flight to it.
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("reader on _INBOX.>: got %s %q, want none of the gateway's replies", m.Subject, m.Data)
	}
}
