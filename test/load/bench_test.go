package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// benchBodies are the suite's bodies (same seed, same sizes), each with its
// noticeId and signature, for per-step costs at realistic sizes.
func benchBodies(b *testing.B) ([][]byte, []string, int64) {
	b.Helper()
	c, err := newCorpus(1024, sizeRange{200, 8192}, 1)
	if err != nil {
		b.Fatal(err)
	}
	s := newSigner("bench")
	bodies := make([][]byte, len(c.templates))
	sigs := make([]string, len(c.templates))
	var total int64
	var id [idLen]byte
	for i := range bodies {
		noticeID(1, uint64(i), &id)
		bodies[i] = c.body(uint64(i), &id)
		sigs[i] = s.sign(bodies[i])
		total += int64(len(bodies[i]))
	}
	return bodies, sigs, total / int64(len(bodies))
}

// BenchmarkGatewayParse is the gateway's envelope reading (webhook.Parse:
// a single-pass scanner that validates the whole body) per notification.
func BenchmarkGatewayParse(b *testing.B) {
	bodies, _, mean := benchBodies(b)
	at := time.Now()
	b.SetBytes(mean)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if n := webhook.Parse(bodies[i%len(bodies)], at); n.ID == "" {
			b.Fatal("no id")
		}
		i++
	}
}

// BenchmarkGatewayVerify is the gateway's HMAC check per notification.
func BenchmarkGatewayVerify(b *testing.B) {
	bodies, sigs, mean := benchBodies(b)
	v, err := webhook.NewVerifier([]string{"bench"}, false)
	if err != nil {
		b.Fatal(err)
	}
	headers := make([]http.Header, len(sigs))
	for i, s := range sigs {
		headers[i] = http.Header{webhook.HeaderSignatureV2: {s}}
	}
	b.SetBytes(mean)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := v.Verify(bodies[i%len(bodies)], headers[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMinimalScanID is what the minimal receiver does instead of
// parsing: find the noticeId.
func BenchmarkMinimalScanID(b *testing.B) {
	bodies, _, mean := benchBodies(b)
	b.SetBytes(mean)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if scanNoticeID(bodies[i%len(bodies)]) == "" {
			b.Fatal("no id")
		}
		i++
	}
}

// BenchmarkMinimalDecodeJSON is what serve-minimal -decode json does
// instead: decode the envelope with encoding/json.
func BenchmarkMinimalDecodeJSON(b *testing.B) {
	bodies, _, mean := benchBodies(b)
	b.SetBytes(mean)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if decodeNoticeID(bodies[i%len(bodies)]) == "" {
			b.Fatal("no id")
		}
		i++
	}
}
