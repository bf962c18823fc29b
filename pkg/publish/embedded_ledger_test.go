package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names the session ledger uses (pkg/publish/ledger's defaults), repeated
// here so this package's tests do not import the ledger.
const (
	testLedgerBucket   = "NCS_SESSIONS"
	testLedgerConsumer = ledgerConsumerName
)

// ledgerGateway is the daemon with its ledger: the gateway's bucket holds
// one session, and its durable consumer has one message delivered and not
// yet acknowledged.
type ledgerGateway struct {
	*gatewayEmbedded
	kv       jetstream.KeyValue // the gateway's view
	consumer jetstream.Consumer // the gateway's view
}

func startLedgerGateway(t *testing.T) *ledgerGateway {
	t.Helper()
	g := startGatewayEmbedded(t, EmbeddedConfig{Anonymous: true, LedgerBucket: testLedgerBucket})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := g.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: testLedgerBucket})
	if err != nil {
		t.Fatalf("gateway creates the bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "sess-1", []byte(`{"state":"recording"}`)); err != nil {
		t.Fatalf("gateway puts a session: %v", err)
	}
	c, err := g.js.CreateOrUpdateConsumer(ctx, DefaultStream, jetstream.ConsumerConfig{
		Durable:       testLedgerConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		FilterSubject: DefaultSubjectPrefix + ".3.>",
		AckWait:       time.Hour,
	})
	if err != nil {
		t.Fatalf("gateway creates the ledger consumer: %v", err)
	}
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("gateway fetches: %v", err)
	}
	n := 0
	for range batch.Messages() {
		n++ // delivered, deliberately not acknowledged
	}
	if n != 1 {
		t.Fatalf("gateway fetch: got %d messages, want 1", n)
	}
	return &ledgerGateway{gatewayEmbedded: g, kv: kv, consumer: c}
}

// violations connects a reader whose permission errors land on a channel.
func violations(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, chan error) {
	t.Helper()
	errs := make(chan error, 64)
	nc, _ := anonymous(t, url, append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))...)
	return nc, errs
}

// expectViolation waits for the server's permissions violation naming
// subject: the refusal itself, not a timeout that could have other causes.
func expectViolation(t *testing.T, errs chan error, op, subject string) {
	t.Helper()
	want := "permissions violation for " + op + ` to "` + strings.ToLower(subject) + `"`
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(strings.ToLower(err.Error()), want) {
				return
			}
		case <-deadline:
			t.Errorf("%s %s: got no permissions violation within 5s, want it refused", op, subject)
			return
		}
	}
}

// TestEmbeddedLedgerAttacks: a reader may not write, purge, delete or
// update the ledger's bucket, may not watch the gateway's KV traffic, and
// may not create, delete, pull from or acknowledge as the ledger's
// consumer. Each is refused by the server, and nothing changed.
func TestEmbeddedLedgerAttacks(t *testing.T) {
	g := startLedgerGateway(t)
	const (
		kvStream = "KV_" + testLedgerBucket
		consumer = testLedgerConsumer
	)
	attacks := []struct {
		name, op, subject, body string
	}{
		{"put a session", "publish", "$KV." + testLedgerBucket + ".sess-1", `{"state":"forged"}`},
		{"put a new key", "publish", "$KV." + testLedgerBucket + ".sess-2", `{}`},
		{"purge the bucket", "publish", "$JS.API.STREAM.PURGE." + kvStream, ``},
		{"delete the bucket", "publish", "$JS.API.STREAM.DELETE." + kvStream, ``},
		{"update the bucket", "publish", "$JS.API.STREAM.UPDATE." + kvStream, `{"name":"` + kvStream + `","subjects":["$KV.` + testLedgerBucket + `.>"],"max_msgs_per_subject":1}`},
		{"delete a session message", "publish", "$JS.API.STREAM.MSG.DELETE." + kvStream, `{"seq":1}`},
		{"watch the gateway's kv traffic", "subscription", "$KV.>", ``},
		{"watch the bucket's subjects", "subscription", "$KV." + testLedgerBucket + ".>", ``},
		{"create the ledger consumer", "publish", "$JS.API.CONSUMER.CREATE." + DefaultStream + "." + consumer,
			`{"stream_name":"` + DefaultStream + `","config":{"durable_name":"` + consumer + `","ack_policy":"none"}}`},
		{"create the ledger consumer with a filter", "publish", "$JS.API.CONSUMER.CREATE." + DefaultStream + "." + consumer + ".agora.ncs.>",
			`{"stream_name":"` + DefaultStream + `","config":{"durable_name":"` + consumer + `","filter_subject":"agora.ncs.>"}}`},
		{"create the ledger consumer, legacy durable", "publish", "$JS.API.CONSUMER.DURABLE.CREATE." + DefaultStream + "." + consumer,
			`{"stream_name":"` + DefaultStream + `","config":{"durable_name":"` + consumer + `"}}`},
		{"create the ledger consumer, named in the body", "publish", "$JS.API.CONSUMER.CREATE." + DefaultStream,
			`{"stream_name":"` + DefaultStream + `","config":{"name":"` + consumer + `","ack_policy":"explicit","inactive_threshold":86400000000000}}`},
		{"delete the ledger consumer", "publish", "$JS.API.CONSUMER.DELETE." + DefaultStream + "." + consumer, ``},
		{"pull from the ledger consumer", "publish", "$JS.API.CONSUMER.MSG.NEXT." + DefaultStream + "." + consumer, `{"batch":10}`},
		{"acknowledge as the ledger", "publish", "$JS.ACK." + DefaultStream + "." + consumer + ".1.2.2.1700000000000000000.0", `+ACK`},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			nc, errs := violations(t, g.emb.ClientURL())
			inbox := nats.NewInbox()
			replies, err := nc.SubscribeSync(inbox)
			if err != nil {
				t.Fatalf("subscribe to own inbox: %v", err)
			}
			switch a.op {
			case "publish":
				err = nc.PublishRequest(a.subject, inbox, []byte(a.body))
			default:
				_, err = nc.SubscribeSync(a.subject)
			}
			if err != nil {
				t.Fatalf("%s %s: %v", a.op, a.subject, err)
			}
			expectViolation(t, errs, a.op, a.subject)
			if err := nc.Flush(); err != nil {
				t.Fatalf("flush: %v", err)
			}
			if m, err := replies.NextMsg(100 * time.Millisecond); err == nil {
				t.Errorf("%s: got an answer %q, want none", a.name, m.Data)
			}
		})
	}
	g.checkLedgerIntact(t)
}

// checkLedgerIntact fails the test if the bucket, its one session or the
// ledger consumer (one message pending acknowledgement) changed.
func (g *ledgerGateway) checkLedgerIntact(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := g.kv.Get(ctx, "sess-1")
	if err != nil || string(e.Value()) != `{"state":"recording"}` || e.Revision() != 1 {
		t.Errorf("session sess-1: got %v, want the gateway's value at revision 1", describeEntry(e, err))
	}
	if _, err := g.kv.Get(ctx, "sess-2"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("session sess-2: got %v, want %v", err, jetstream.ErrKeyNotFound)
	}
	s, err := g.js.Stream(ctx, "KV_"+testLedgerBucket)
	if err != nil {
		t.Fatalf("bucket stream: %v", err)
	}
	if cfg := s.CachedInfo().Config; cfg.MaxMsgsPerSubject != 1 && cfg.MaxMsgsPerSubject != -1 {
		t.Errorf("bucket history: got %d, want the gateway's", cfg.MaxMsgsPerSubject)
	}
	info, err := g.consumer.Info(ctx)
	if err != nil {
		t.Fatalf("ledger consumer: %v", err)
	}
	if info.Config.Durable != testLedgerConsumer || info.Config.AckPolicy != jetstream.AckExplicitPolicy ||
		info.Config.FilterSubject != DefaultSubjectPrefix+".3.>" || info.NumAckPending != 1 || info.Delivered.Consumer != 1 {
		t.Errorf("ledger consumer: got durable %q ack %v filter %q ack pending %d delivered %d, want the gateway's with 1 pending of 1",
			info.Config.Durable, info.Config.AckPolicy, info.Config.FilterSubject, info.NumAckPending, info.Delivered.Consumer)
	}
}

// describeEntry is an entry or its error, for a failure message.
func describeEntry(e jetstream.KeyValueEntry, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%q at revision %d", e.Value(), e.Revision())
}

// TestEmbeddedLedgerReads: a reader reads the bucket the way `nats kv get`,
// `nats kv watch` and `nats kv ls` do, with nats.go's KeyValue API.
func TestEmbeddedLedgerReads(t *testing.T) {
	g := startLedgerGateway(t)
	_, js := anonymous(t, g.emb.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	names := js.KeyValueStoreNames(ctx)
	var found []string
	for n := range names.Name() {
		found = append(found, n)
	}
	if names.Error() != nil || len(found) != 1 || found[0] != testLedgerBucket {
		t.Errorf("bucket names: got %q (%v), want [%s]", found, names.Error(), testLedgerBucket)
	}
	kv, err := js.KeyValue(ctx, testLedgerBucket)
	if err != nil {
		t.Fatalf("reader binds the bucket: %v", err)
	}
	if e, err := kv.Get(ctx, "sess-1"); err != nil || string(e.Value()) != `{"state":"recording"}` {
		t.Errorf("kv get: got %v, want the session", describeEntry(e, err))
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0] != "sess-1" {
		t.Errorf("kv keys: got %q, %v, want [sess-1]", keys, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatalf("kv watch: %v", err)
	}
	defer func() { _ = w.Stop() }()
	if e := <-w.Updates(); e == nil || e.Key() != "sess-1" {
		t.Fatalf("kv watch first update: got %v, want sess-1", e)
	}
	if e := <-w.Updates(); e != nil {
		t.Fatalf("kv watch: got %q, want the end-of-history marker", e.Key())
	}
	// A live update from the gateway reaches the watcher.
	if _, err := g.kv.Put(ctx, "sess-1", []byte(`{"state":"exited"}`)); err != nil {
		t.Fatalf("gateway updates the session: %v", err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || string(e.Value()) != `{"state":"exited"}` {
			t.Errorf("kv watch live update: got %v, want the new state", e)
		}
	case <-ctx.Done():
		t.Fatal("kv watch live update: got none before the deadline")
	}
	// A write through the same API is refused (a timeout: the server
	// drops a refused publish; the attacks test sees the refusal itself).
	putCtx, putCancel := context.WithTimeout(ctx, attackTimeout)
	defer putCancel()
	if _, err := kv.Put(putCtx, "sess-1", []byte(`{"state":"forged"}`)); err == nil {
		t.Errorf("kv put as a reader: got nil error, want it refused")
	}
}

// TestEmbeddedLedgerOff: without a ledger bucket, readers get no KV
// permissions at all.
func TestEmbeddedLedgerOff(t *testing.T) {
	g := startGatewayEmbedded(t, EmbeddedConfig{Anonymous: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := g.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: testLedgerBucket}); err != nil {
		t.Fatalf("gateway creates a bucket: %v", err)
	}
	nc, errs := violations(t, g.emb.ClientURL())
	subj := "$JS.API.STREAM.INFO.KV_" + testLedgerBucket
	if err := nc.PublishRequest(subj, nats.NewInbox(), nil); err != nil {
		t.Fatalf("request: %v", err)
	}
	expectViolation(t, errs, "publish", subj)
}
