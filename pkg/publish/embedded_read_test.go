package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readTimeout bounds each read a consumer makes in these tests.
const readTimeout = 5 * time.Second

// readRound numbers the calls of checkReads, so that several readers of
// one stream use their own consumers and live messages.
var readRound atomic.Int32

// checkReads does every read the README's quickstart and Consuming section
// show, on nc: a live subscription, stream look-ups, an ordered consumer
// from the start, a durable pull consumer with acknowledgements, what
// `nats stream view` does, and a push ordered consumer with flow control.
// g's stream starts with testMsg(1); checkReads publishes one message live.
func checkReads(t *testing.T, g *gatewayEmbedded, nc *nats.Conn) {
	t.Helper()
	round := int(readRound.Add(1))
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(readTimeout))
	if err != nil {
		t.Fatalf("create jetstream context: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*readTimeout)
	defer cancel()
	want := testMsg(1)

	t.Run("live subscription", func(t *testing.T) {
		sub, err := nc.SubscribeSync(DefaultSubjectPrefix + ".>")
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := nc.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		live := testMsg(1000 + round)
		if out, err := g.pub.Publish(ctx, live); err != nil || out != Published {
			t.Fatalf("publish: got %v, %v, want published, nil", out, err)
		}
		m, err := sub.NextMsg(readTimeout)
		if err != nil {
			t.Fatalf("receive live: %v", err)
		}
		if !bytes.Equal(m.Data, live.Data) {
			t.Errorf("live data: got %q, want %q", m.Data, live.Data)
		}
	})

	t.Run("stream look-ups", func(t *testing.T) {
		if _, err := js.AccountInfo(ctx); err != nil {
			t.Errorf("account info: %v", err)
		}
		names := js.StreamNames(ctx)
		var got []string
		for n := range names.Name() {
			got = append(got, n)
		}
		if err := names.Err(); err != nil || len(got) != 1 || got[0] != DefaultStream {
			t.Errorf("stream names: got %v, %v, want [%s]", got, err, DefaultStream)
		}
		list := js.ListStreams(ctx)
		for range list.Info() {
		}
		if err := list.Err(); err != nil {
			t.Errorf("list streams: %v", err)
		}
		s, err := js.Stream(ctx, DefaultStream)
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		m, err := s.GetMsg(ctx, 1)
		if err != nil || !bytes.Equal(m.Data, want.Data) {
			t.Errorf("get message 1: got %v, want %q", err, want.Data)
		}
		if _, err := s.GetLastMsgForSubject(ctx, want.Subject); err != nil {
			t.Errorf("get last message for %s: %v", want.Subject, err)
		}
	})

	t.Run("ordered consumer from the start", func(t *testing.T) {
		c, err := js.OrderedConsumer(ctx, DefaultStream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatalf("ordered consumer: %v", err)
		}
		m, err := c.Next(jetstream.FetchMaxWait(readTimeout))
		if err != nil {
			t.Fatalf("ordered consumer next: %v", err)
		}
		if !bytes.Equal(m.Data(), want.Data) {
			t.Errorf("ordered consumer: got %q, want %q", m.Data(), want.Data)
		}
	})

	t.Run("durable pull consumer with acks", func(t *testing.T) {
		c, err := js.CreateOrUpdateConsumer(ctx, DefaultStream, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("recordings-%d", round), FilterSubject: DefaultSubjectPrefix + ".3.>", AckPolicy: jetstream.AckExplicitPolicy,
		})
		if err != nil {
			t.Fatalf("create durable consumer: %v", err)
		}
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(readTimeout))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.DoubleAck(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
		}
		if n != 1 || batch.Error() != nil {
			t.Fatalf("fetch: got %d messages, %v, want 1", n, batch.Error())
		}
		info, err := c.Info(ctx)
		if err != nil || info.AckFloor.Stream != 1 {
			t.Errorf("consumer ack floor: got %+v, %v, want stream sequence 1", info, err)
		}
	})

	t.Run("nats stream view", func(t *testing.T) {
		// natscli's pager: a durable pull consumer of its own, batches
		// requested on an inbox, each message acked, the consumer deleted.
		name := fmt.Sprintf("jsm_stream_pager_%d", round)
		_, err := js.CreateConsumer(ctx, DefaultStream, jetstream.ConsumerConfig{
			Durable: name, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			t.Fatalf("create pager consumer: %v", err)
		}
		inbox := nc.NewRespInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatalf("subscribe inbox: %v", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		req, _ := json.Marshal(map[string]any{"batch": 1, "no_wait": true})
		if err := nc.PublishRequest(fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", DefaultStream, name), inbox, req); err != nil {
			t.Fatalf("request next: %v", err)
		}
		m, err := sub.NextMsg(readTimeout)
		if err != nil {
			t.Fatalf("receive page: %v", err)
		}
		if !bytes.Equal(m.Data, want.Data) {
			t.Errorf("page: got %q (status %q), want %q", m.Data, m.Header.Get("Status"), want.Data)
		}
		if err := m.AckSync(nats.Context(ctx)); err != nil {
			t.Errorf("ack page message: %v", err)
		}
		if err := js.DeleteConsumer(ctx, DefaultStream, name); err != nil {
			t.Errorf("delete pager consumer: %v", err)
		}
	})

	t.Run("push ordered consumer", func(t *testing.T) {
		legacy, err := nc.JetStream(nats.MaxWait(readTimeout))
		if err != nil {
			t.Fatalf("legacy jetstream context: %v", err)
		}
		sub, err := legacy.SubscribeSync(DefaultSubjectPrefix+".>", nats.OrderedConsumer(), nats.DeliverAll())
		if err != nil {
			t.Fatalf("subscribe ordered push consumer: %v", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		m, err := sub.NextMsg(readTimeout)
		if err != nil {
			t.Fatalf("ordered push consumer next: %v", err)
		}
		if !bytes.Equal(m.Data, want.Data) {
			t.Errorf("ordered push consumer: got %q, want %q", m.Data, want.Data)
		}
	})
}

// TestEmbeddedAnonymousReads: with no credentials, a local process can do
// every read the quickstart shows.
func TestEmbeddedAnonymousReads(t *testing.T) {
	g := startGatewayEmbedded(t, EmbeddedConfig{Anonymous: true})
	nc, _ := anonymous(t, g.emb.ClientURL())
	checkReads(t, g, nc)
}
