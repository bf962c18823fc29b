package ncsmsg

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// noopMessagePublisher acknowledges every message at once.
type noopMessagePublisher struct{}

func (noopMessagePublisher) Publish(context.Context, publish.Message) (publish.Outcome, error) {
	return publish.Published, nil
}

// rewindBody is a request body that can be replayed.
type rewindBody struct{ *bytes.Reader }

func (rewindBody) Close() error { return nil }

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkWebhookToMessage is one notification through the daemon's whole
// in-process path short of NATS: the webhook handler (verify, parse,
// freshness, answer, metrics, the info log line as JSON to nowhere) and the
// Publisher's mapping to a publish.Message. It is the figure to hold against
// pkg/webhook's BenchmarkHandler from before the seam, which built the
// message inside the handler.
func BenchmarkWebhookToMessage(b *testing.B) {
	body := webhookFixture(b, "uploaded.json")
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	s, err := webhook.NewServer(webhook.Config{
		Listen: "127.0.0.1:0", Path: "/agora/ncs", Secrets: []string{"bench"},
		MaxNotifyAge: 100 * 365 * 24 * time.Hour, // the fixture is from 2021
	}, Publisher{Pub: noopMessagePublisher{}, Prefix: "agora.ncs"}, log, nil)
	if err != nil {
		b.Fatalf("new server: %v", err)
	}
	h := s.Handler()
	req, err := http.NewRequest(http.MethodPost, "http://gw/agora/ncs", nil)
	if err != nil {
		b.Fatalf("new request: %v", err)
	}
	mac := hmac.New(sha256.New, []byte("bench"))
	mac.Write(body)
	req.Header.Set(webhook.HeaderSignatureV2, hex.EncodeToString(mac.Sum(nil)))
	req.ContentLength = int64(len(body))
	rd := bytes.NewReader(body)
	req.Body = rewindBody{rd}
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("got status %d, want 200", w.code)
		}
	}
}
