package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testNATS is a real nats-server with JetStream on 127.0.0.1 that a test
// can stop and restart on the same port and store.
type testNATS struct {
	t    testing.TB
	dir  string
	port int
	mu   sync.Mutex
	srv  *server.Server
	// syncAlways fsyncs every write, as the embedded server does by default.
	syncAlways bool
}

func startNATS(t testing.TB) *testNATS { return startNATSSync(t, false) }

func startNATSSync(t testing.TB, syncAlways bool) *testNATS {
	t.Helper()
	n := &testNATS{t: t, dir: t.TempDir(), port: server.RANDOM_PORT, syncAlways: syncAlways}
	n.start()
	n.port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *testNATS) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{
		ServerName: "ledger-test", Host: "127.0.0.1", Port: n.port,
		JetStream: true, StoreDir: n.dir, SyncAlways: n.syncAlways, NoSigs: true, DisableJetStreamBanner: true,
	})
	if err != nil {
		n.t.Fatalf("create nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatalf("nats server not ready")
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

func (n *testNATS) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

func (n *testNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// connect opens a client that reconnects for ever, like the publisher's.
func (n *testNATS) connect() *nats.Conn {
	n.t.Helper()
	nc, err := nats.Connect(n.url(), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		n.t.Fatalf("connect: %v", err)
	}
	n.t.Cleanup(nc.Close)
	return nc
}

// client is a plain client and its JetStream context, with the stream
// the publisher would have created.
func (n *testNATS) client() jetstream.JetStream {
	n.t.Helper()
	js, err := jetstream.New(n.connect())
	if err != nil {
		n.t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "AGORA_NCS", Subjects: []string{"agora.ncs.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Hour, MaxAge: 168 * time.Hour,
	}); err != nil {
		n.t.Fatalf("create stream: %v", err)
	}
	return js
}

// testLedger is a running Ledger with its registry and logs.
type testLedger struct {
	*Ledger
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	stop func()
}

func testLedgerConfig(grace, stall time.Duration) Config {
	c := DefaultConfig()
	c.UploadGrace, c.StallAfter = grace, stall
	return c
}

func runLedger(t testing.TB, n *testNATS, cfg Config) *testLedger {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	l, err := New(cfg, n.connect(), zap.New(core), reg)
	if err != nil {
		t.Fatalf("new ledger: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	tl := &testLedger{Ledger: l, reg: reg, logs: logs}
	tl.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: got %v, want nil", err)
			}
		})
	}
	t.Cleanup(tl.stop)
	return tl
}

// metric is the value of a counter or gauge with the label pairs given.
func (tl *testLedger) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := tl.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v: no such series", name, labels)
	return 0
}

// publish stores bodies as the webhook would, on agora.ncs.<product>.<type>;
// each body is its own message (the Msg-Id hashes the body), so resends
// reach the ledger as they would after the duplicate window.
func publishBodies(t testing.TB, js jetstream.JetStream, bodies [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range bodies {
		var env struct {
			ProductID json.RawMessage `json:"productId"`
			EventType json.RawMessage `json:"eventType"`
		}
		product, event := "unknown", "unknown"
		if json.Unmarshal(b, &env) == nil {
			if len(env.ProductID) > 0 {
				product = string(env.ProductID)
			}
			if len(env.EventType) > 0 {
				event = string(env.EventType)
			}
		}
		sum := sha256.Sum256(b)
		msg := &nats.Msg{Subject: "agora.ncs." + product + "." + event, Data: b,
			Header: nats.Header{jetstream.MsgIDHeader: []string{hex.EncodeToString(sum[:16])}}}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// eventually polls cond every 20 ms until it holds or the time is up.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s within %s: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// derived reads every session.> message of the stream.
func derived(t testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "AGORA_NCS")
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	seq := uint64(1)
	for {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject("agora.ncs.session.>"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("get derived message: %v", err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

// countDerived counts derived messages by "<subject tail>/<flag>/<sid>".
func countDerived(t testing.TB, js jetstream.JetStream) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range derived(t, js) {
		var b struct {
			SID  string `json:"sid"`
			Flag string `json:"flag"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(m.Data, &b); err != nil || b.Next == "" {
			t.Fatalf("derived body %s: %v, next %q", m.Data, err, b.Next)
		}
		out[fmt.Sprintf("%s/%s/%s", m.Subject[len("agora.ncs.session."):], b.Flag, b.SID)]++
	}
	return out
}

// record reads the stored record of sid.
func record(js jetstream.JetStream, sid string) (*Record, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, DefaultBucket)
	if err != nil {
		return nil, nil, err
	}
	key, _ := Key(sid)
	e, err := kv.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	r, err := UnmarshalRecord(e.Value())
	return r, e.Value(), err
}

func zapKind(kind string) zap.Field { return zap.String("kind", kind) }
