package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// discardLogger logs JSON to nowhere, so benchmarks pay for encoding the
// one line per notification the daemon writes.
func discardLogger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
}

// daemonLogger is the daemon's production logger (cmd/ncs-gateway's
// newLogger, log.format json) at level, writing to nowhere: the
// accepted line's cost is its encoding, not the disk.
func daemonLogger(level zapcore.Level) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	ec.EncodeDuration = zapcore.SecondsDurationEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(io.Discard), level))
}

func BenchmarkVerify(b *testing.B) {
	body := fixture(b, "uploaded.json")
	v, err := NewVerifier([]string{testSecret}, false)
	if err != nil {
		b.Fatalf("new verifier: %v", err)
	}
	h := http.Header{HeaderSignatureV2: {signSHA256(testSecret, body)}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(body, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	body := fixture(b, "uploaded.json")
	at := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if n := Parse(body, at); n.ID == "" {
			b.Fatal("no id")
		}
	}
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

// BenchmarkHandler measures one notification through the handler (verify,
// parse, check freshness, publish to a no-op, answer, log, count),
// without the network, with the daemon's logger at warn (no line per
// notification) and at info (the default: one line each).
func BenchmarkHandler(b *testing.B) {
	for _, level := range []zapcore.Level{zapcore.WarnLevel, zapcore.InfoLevel} {
		b.Run(level.String(), func(b *testing.B) { benchHandler(b, daemonLogger(level)) })
	}
}

func benchHandler(b *testing.B, log *zap.Logger) {
	body := fixture(b, "uploaded.json")
	s, err := NewServer(testConfig(), noopPublisher{}, log, nil)
	if err != nil {
		b.Fatalf("new server: %v", err)
	}
	h := s.Handler()
	req, err := http.NewRequest(http.MethodPost, "http://gw"+testPath, nil)
	if err != nil {
		b.Fatalf("new request: %v", err)
	}
	req.Header.Set(HeaderSignatureV2, signSHA256(testSecret, body))
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

// BenchmarkServerLoopback measures whole requests over keep-alive loopback
// HTTP from 8 concurrent clients per CPU; ns/op is the inverse of
// throughput, and p50-ms/p99-ms are per-request latencies as a client sees
// them.
func BenchmarkServerLoopback(b *testing.B) {
	body := fixture(b, "uploaded.json")
	s, err := NewServer(testConfig(), noopPublisher{}, discardLogger(), nil)
	if err != nil {
		b.Fatalf("new server: %v", err)
	}
	if err := s.Start(); err != nil {
		b.Fatalf("start: %v", err)
	}
	defer s.Shutdown(context.Background()) //nolint:errcheck // benchmark teardown
	url := "http://" + s.Addr().String() + testPath
	sig := signSHA256(testSecret, body)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		defer func() {
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
		for pb.Next() {
			start := time.Now()
			req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set(HeaderSignatureV2, sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("got status %d, want 200", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(start))
		}
	})
	b.StopTimer()
	if len(latencies) > 0 {
		slices.Sort(latencies)
		at := func(q float64) float64 {
			return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
		}
		b.ReportMetric(at(0.50), "p50-ms")
		b.ReportMetric(at(0.99), "p99-ms")
	}
}
