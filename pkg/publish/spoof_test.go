package publish

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// spoofRequests are the requests an anonymous reader may make with the
// gateway's reply subject, so that the server answers the gateway: with
// success JSON, error JSON, a stored message (direct get, with Nats-Stream
// headers) and a not-found status.
var spoofRequests = []struct{ subject, body string }{
	{"$JS.API.INFO", ""},
	{"$JS.API.CONSUMER.INFO." + DefaultStream + ".nope", ""},
	{"$JS.API.STREAM.INFO." + DefaultStream, ""},
	{"$JS.API.DIRECT.GET." + DefaultStream, `{"seq":1}`},
	{"$JS.API.DIRECT.GET." + DefaultStream, `{"seq":999999999}`},
	{"$JS.API.STREAM.MSG.GET." + DefaultStream, `{"seq":1}`},
}

// spoofer is issue 14's attacker: an anonymous client subscribed to the
// notifications, answering the reply subject of every publish it sees with
// requests the server answers before JetStream's acknowledgement comes.
type spoofer struct {
	nc       *nats.Conn
	answered atomic.Int64 // reply subjects answered
	pullSubj string       // a pull request on the reader's own durable, delivering stored messages
}

// startSpoofer connects to url and answers every publish under the prefix
// until the test ends.
func startSpoofer(t *testing.T, url string) *spoofer {
	t.Helper()
	nc, js := anonymous(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A durable of its own, so that a pull delivers stored messages
	// ($JS.ACK reply subjects) to the gateway's inbox too.
	if _, err := js.CreateOrUpdateConsumer(ctx, DefaultStream, jetstream.ConsumerConfig{Durable: "spoof", AckPolicy: jetstream.AckNonePolicy}); err != nil {
		t.Fatalf("attacker creates its consumer: %v", err)
	}
	s := &spoofer{nc: nc, pullSubj: "$JS.API.CONSUMER.MSG.NEXT." + DefaultStream + ".spoof"}
	sub, err := nc.Subscribe(DefaultSubjectPrefix+".>", func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		// Twice over: each answer is one more chance to come first.
		for range 2 {
			for _, r := range spoofRequests {
				_ = nc.PublishRequest(r.subject, m.Reply, []byte(r.body))
			}
			_ = nc.PublishRequest(s.pullSubj, m.Reply, []byte(`{"batch":1,"no_wait":true}`))
		}
		s.answered.Add(1)
	})
	if err != nil {
		t.Fatalf("attacker subscribes: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("attacker flushes: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return s
}

// checkStoredOnce fails the test unless every message of want is in the
// stream exactly once.
func checkStoredOnce(t *testing.T, js jetstream.JetStream, want []Message) {
	t.Helper()
	count := map[string]int{}
	for _, sm := range streamMsgs(t, js, DefaultStream) {
		count[sm.Header.Get(jetstream.MsgIDHeader)]++
	}
	missing, dup := 0, 0
	for _, m := range want {
		switch count[m.ID] {
		case 1:
		case 0:
			missing++
		default:
			dup++
		}
	}
	if missing != 0 || dup != 0 {
		t.Errorf("stream: got %d of %d messages missing and %d stored twice, want each stored once", missing, len(want), dup)
	}
}

// spoofMsg is message i of a test round, with its own Nats-Msg-Id.
func spoofMsg(round string, i int) Message {
	m := testMsg(i)
	m.ID = fmt.Sprintf("%s-%04d", round, i)
	return m
}

// TestSpoofedAcksIgnored is issue 14's attack on direct publishes: the
// reader answers every reply subject it sees, and no publish may end on
// its answers.
func TestSpoofedAcksIgnored(t *testing.T) {
	g := startGatewayEmbedded(t, EmbeddedConfig{Anonymous: true})
	sp := startSpoofer(t, g.emb.ClientURL())

	var sent []Message
	var spooled atomic.Int64
	publish := func(m Message) {
		out, err := g.pub.Publish(context.Background(), m)
		if err != nil {
			t.Errorf("publish %s: got %v, want nil", m.ID, err)
		}
		if out == Spooled {
			spooled.Add(1)
		}
	}
	for i := range 200 {
		m := spoofMsg("seq", i)
		sent = append(sent, m)
		publish(m)
	}
	seqSpooled := spooled.Swap(0)

	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				m := spoofMsg("par", w*50+i)
				mu.Lock()
				sent = append(sent, m)
				mu.Unlock()
				publish(m)
			}
		}()
	}
	wg.Wait()
	parSpooled := spooled.Load()
	if seqSpooled != 0 || parSpooled != 0 {
		t.Errorf("spooled under attack: got %d of 200 one at a time and %d of 400 with 8 at once, want 0 and 0", seqSpooled, parSpooled)
	}
	if sp.answered.Load() == 0 {
		t.Fatalf("attacker answered no reply subject: the test proves nothing")
	}
	// The forwarder drains what was spooled: wait for it before reading.
	eventually(t, 15*time.Second, "spool drained", func() error {
		if d := g.pub.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	// The ledger's derived messages go through the same inbox.
	for i := range 50 {
		m := spoofMsg("derived", i)
		m.Subject = DefaultSubjectPrefix + ".session.completed"
		for want := range 2 {
			dup, err := g.pub.StoreDirect(context.Background(), m)
			if err != nil || dup != (want == 1) {
				t.Errorf("store %s, attempt %d: got duplicate %v, %v, want %v, nil", m.ID, want+1, dup, err, want == 1)
			}
		}
		sent = append(sent, m)
	}
	checkStoredOnce(t, g.js, sent)
	t.Logf("attacker answered %d reply subjects", sp.answered.Load())
	logIgnored(t, g.pub)
}

// TestSpoofedAcksIgnoredByForwarder is the same attack on the forwarder's
// publishes: messages spooled while NATS did not take them are forwarded
// while the attacker answers, and every one must leave the spool once.
func TestSpoofedAcksIgnoredByForwarder(t *testing.T) {
	g := startGatewayEmbedded(t, EmbeddedConfig{Anonymous: true})
	sp := startSpoofer(t, g.emb.ClientURL())
	// A second publisher on the same spool cannot exist (bbolt locks it),
	// so this one's forwarder is started by hand once the spool is full.
	pcfg := testConfig("", t.TempDir())
	pcfg.Embedded = g.emb
	p := newTestPublisher(t, pcfg, false)
	var sent []Message
	for i := range 200 {
		m := spoofMsg("fwd", i)
		sent = append(sent, m)
		if err := p.spool.put(m, time.Now()); err != nil {
			t.Fatalf("spool %s: %v", m.ID, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	eventually(t, 20*time.Second, "forwarder drains the spool under attack", func() error {
		if d := p.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	if got := p.metric(t, "ncs_gateway_spool_forward_failures_total"); got != 0 {
		t.Errorf("forward failures under attack: got %v, want 0", got)
	}
	if got := p.metric(t, "ncs_gateway_spool_forwarded_total"); got != 200 {
		t.Errorf("forwarded: got %v, want 200", got)
	}
	if sp.answered.Load() == 0 {
		t.Fatalf("attacker answered no reply subject: the test proves nothing")
	}
	checkStoredOnce(t, g.js, sent)
	logIgnored(t, p)
}

// logIgnored logs the ignored-replies metric when it exists.
func logIgnored(t *testing.T, p *testPublisher) {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if strings.HasSuffix(mf.GetName(), "ignored_replies_total") {
			for _, m := range mf.GetMetric() {
				t.Logf("%s%v = %v", mf.GetName(), m.GetLabel(), m.GetCounter().GetValue())
			}
		}
	}
}

// TestJetStreamErrorWaitsForTimeout pins the cost of ignoring error JSON:
// a publish JetStream itself refuses (here: over the stream's message size
// limit) is no longer spooled at once, but when the publish timeout ends
// it, counted as a timeout, its error counted as an ignored reply.
func TestJetStreamErrorWaitsForTimeout(t *testing.T) {
	srv := startNATS(t)
	cfg := testConfig(srv.url(), t.TempDir())
	cfg.PublishTimeout = MinPublishTimeout
	p := newTestPublisher(t, cfg, false)
	_, js := srv.client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatalf("look up stream: %v", err)
	}
	sc := s.CachedInfo().Config
	sc.MaxMsgSize = 16
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatalf("limit message size: %v", err)
	}
	start := time.Now()
	out, err := p.Publish(context.Background(), testMsg(1))
	took := time.Since(start)
	if err != nil || out != Spooled {
		t.Fatalf("publish over the size limit: got %v, %v, want spooled, nil", out, err)
	}
	if took < cfg.PublishTimeout {
		t.Errorf("publish refused by jetstream ended after %s, want no sooner than the publish timeout %s", took, cfg.PublishTimeout)
	}
	if got := p.metric(t, "ncs_gateway_nats_publish_failures_total", "reason", "timeout"); got != 1 {
		t.Errorf("publish_failures_total{timeout}: got %v, want 1", got)
	}
	if got := p.metric(t, "ncs_gateway_nats_ignored_replies_total", "kind", "error"); got != 1 {
		t.Errorf("ignored_replies_total{error}: got %v, want 1", got)
	}
	for _, k := range ignoredKinds {
		p.metric(t, "ncs_gateway_nats_ignored_replies_total", "kind", k) // fails if absent
	}
}
