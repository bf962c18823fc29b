package publish

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testNATS is a real nats-server with JetStream on 127.0.0.1, which a test
// can stop and restart on the same port with the same store.
type testNATS struct {
	t     testing.TB
	dir   string
	port  int
	mu    sync.Mutex
	emb   *Embedded
	syncI time.Duration
}

// startNATS starts a server on a free port with a temporary store. The
// store syncs on nats-server's default interval: tests need speed, and the
// embedded test checks the sync-always setting.
func startNATS(t testing.TB) *testNATS {
	t.Helper()
	n := &testNATS{t: t, dir: t.TempDir(), syncI: 2 * time.Minute}
	n.start("127.0.0.1:0")
	n.port = n.emb.Server().Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

// deadNATS returns a server address where nothing listens yet; restart
// starts a server there.
func deadNATS(t testing.TB) *testNATS {
	t.Helper()
	n := startNATS(t)
	n.stop()
	return n
}

func (n *testNATS) start(listen string) {
	n.t.Helper()
	emb, err := startOpenServer(EmbeddedConfig{Listen: listen, StoreDir: n.dir, SyncInterval: n.syncI})
	if err != nil {
		n.t.Fatalf("start nats: %v", err)
	}
	n.mu.Lock()
	n.emb = emb
	n.mu.Unlock()
}

// startOpenServer starts the embedded server's configuration without its
// authentication: an external NATS where anonymous clients may do
// anything, as tests that stand for an operator need.
func startOpenServer(cfg EmbeddedConfig) (*Embedded, error) {
	opts, err := embeddedOptions(cfg)
	if err != nil {
		return nil, err
	}
	return startServer(opts, cfg.ReadyTimeout, zap.NewNop())
}

// stop shuts the server down and waits for it; safe to repeat.
func (n *testNATS) stop() {
	n.mu.Lock()
	emb := n.emb
	n.emb = nil
	n.mu.Unlock()
	if emb != nil {
		emb.Shutdown()
	}
}

// restart starts the server again on the same port and store.
func (n *testNATS) restart() {
	n.t.Helper()
	n.start(net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)))
}

func (n *testNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// client connects a plain nats.go client over TCP, closed at cleanup.
func (n *testNATS) client() (*nats.Conn, jetstream.JetStream) {
	n.t.Helper()
	nc, err := nats.Connect(n.url())
	if err != nil {
		n.t.Fatalf("connect test client: %v", err)
	}
	n.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		n.t.Fatalf("create test jetstream context: %v", err)
	}
	return nc, js
}

// testConfig is a publisher configuration for url with its spool in dir.
func testConfig(url, dir string) Config {
	c := defaultConfig()
	c.URL = url
	c.SpoolPath = filepath.Join(dir, "spool.db")
	c.PublishTimeout = 5 * time.Second
	return c
}

// testPublisher is a Publisher whose forwarder runs, with its metrics and
// logs, stopped and closed at cleanup.
type testPublisher struct {
	*Publisher
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	stop func()
}

func newTestPublisher(t testing.TB, cfg Config, run bool) *testPublisher {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	reg := prometheus.NewRegistry()
	p, err := New(cfg, zap.New(core), reg)
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	tp := &testPublisher{Publisher: p, reg: reg, logs: logs, stop: func() {}}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		var once sync.Once
		tp.stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: got %v, want nil", err)
				}
			})
		}
	}
	t.Cleanup(func() {
		tp.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return tp
}

// metric returns the value of a counter or gauge, with its labels as
// name=value pairs, from the publisher's registry. An absent series fails
// the test: it must exist from the start to count in increase().
func (tp *testPublisher) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := tp.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
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
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s%v: no such series", name, labels)
	return 0
}

// eventually polls cond every 20 ms until it holds or the deadline passes.
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

// streamMsgs reads every message of the stream, in order.
func streamMsgs(t testing.TB, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("look up stream %s: %v", name, err)
	}
	info := s.CachedInfo()
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// streamCount is the number of messages in the stream, or an error.
func streamCount(js jetstream.JetStream, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.Msgs, nil
}

// testMsg is a message with an Agora-like body and headers.
func testMsg(i int) Message {
	return Message{
		Subject: "agora.ncs.3.31",
		ID:      fmt.Sprintf("notice-%04d", i),
		Header:  nats.Header{"Agora-Signature-V2": []string{fmt.Sprintf("%064x", i)}},
		Data:    fmt.Appendf(nil, `{"noticeId":"notice-%04d","productId":3,"eventType":31,"notifyMs":1560408533119,"payload":{}}`, i),
	}
}
