package ncsmsg

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// BenchmarkGatewayPublish is one notification through the daemon's whole
// hot path as the load suite's external setup drives it: the webhook
// handler (verify, parse, freshness, metrics, the info log line as JSON to
// nowhere), the Publisher mapping and the real publish.Publisher, publishing with ack over
// TCP to a nats-server in this process (file store, nats-server's default
// sync). 32 requests run at once, as in the suite's c=32 cells; each has a
// distinct noticeId and its own signature, as Agora sends them. The figure
// includes nats-server's share of the work and the signing; hold it against
// itself before and after a change, with -cpuprofile for where it goes.
//
//	go test ./pkg/publish/ncsmsg -run '^$' -bench BenchmarkGatewayPublish -benchtime 3s
func BenchmarkGatewayPublish(b *testing.B) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: b.TempDir(), SyncInterval: 2 * time.Minute,
	})
	if err != nil {
		b.Fatalf("new nats server: %v", err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats server not ready")
	}

	cfg := publish.Config{URL: srv.ClientURL(), SpoolPath: filepath.Join(b.TempDir(), "spool.db")}
	pub, err := publish.New(cfg, zap.NewNop(), nil)
	if err != nil {
		b.Fatalf("new publisher: %v", err)
	}
	defer func() { _ = pub.Close(context.Background()) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	s, err := webhook.NewServer(webhook.Config{
		Listen: "127.0.0.1:0", Path: "/agora/ncs", Secrets: []string{"bench"},
		MaxNotifyAge: 100 * 365 * 24 * time.Hour, // the fixture is from 2021
	}, Publisher{Pub: pub, Prefix: publish.DefaultSubjectPrefix}, log, nil)
	if err != nil {
		b.Fatalf("new server: %v", err)
	}
	h := s.Handler()

	// The fixture's noticeId is 19 bytes; each request overwrites it with
	// its own 19-byte id.
	tmpl := webhookFixture(b, "uploaded.json")
	const oldID = "2000001428:4330:107"
	at := bytes.Index(tmpl, []byte(oldID))
	if at < 0 {
		b.Fatal("fixture has no noticeId " + oldID)
	}
	var worker, seq atomic.Int64
	b.SetBytes(int64(len(tmpl)))
	b.ReportAllocs()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		wid := worker.Add(1)
		body := bytes.Clone(tmpl)
		req, err := http.NewRequest(http.MethodPost, "http://gw/agora/ncs", nil)
		if err != nil {
			b.Error(err)
			return
		}
		req.ContentLength = int64(len(body))
		rd := bytes.NewReader(body)
		req.Body = rewindBody{rd}
		w := &discardWriter{h: http.Header{}}
		mac := hmac.New(sha256.New, []byte("bench"))
		var sig [64]byte
		for pb.Next() {
			id := fmt.Appendf(nil, "b%03d-%014d", wid, seq.Add(1))
			copy(body[at:at+len(oldID)], id[:len(oldID)])
			mac.Reset()
			mac.Write(body)
			hex.Encode(sig[:], mac.Sum(nil))
			req.Header = http.Header{webhook.HeaderSignatureV2: {string(sig[:])}}
			rd.Reset(body)
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				b.Errorf("got status %d, want 200", w.code)
				return
			}
		}
	})
}
