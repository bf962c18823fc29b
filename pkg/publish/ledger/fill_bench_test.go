package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkFill runs a ledger while 100,000 recorder_started notifications
// of distinct sids arrive, as the load benchmark's memory phase does
// through the webhook, and reports the peak heap in use and held during
// the fill, and when the ledger had applied them all.
func BenchmarkFill(b *testing.B) {
	const sessions = 100_000
	for b.Loop() {
		n := startNATS(b)
		js := n.client()
		tl := runLedger(b, n, DefaultConfig())
		now := time.Now().UnixMilli()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		peak, peakSys := base, ms.HeapSys-ms.HeapReleased
		sample := func() {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			peakSys = max(peakSys, ms.HeapSys-ms.HeapReleased)
		}
		start := time.Now()
		for i := range sessions {
			s := testSession{sid: fmt.Sprintf("%032x", i), cname: fmt.Sprintf("room%d", i), base: now, notes: []note{started("100")}}
			body := s.body(0, s.sid+"-0", now)
			sum := sha256.Sum256(body)
			if _, err := js.PublishMsgAsync(&nats.Msg{Subject: "agora.ncs.3.40", Data: body,
				Header: nats.Header{jetstream.MsgIDHeader: []string{hex.EncodeToString(sum[:16])}}}); err != nil {
				b.Fatalf("publish: %v", err)
			}
			if i%512 == 0 {
				<-js.PublishAsyncComplete()
				sample()
			}
		}
		<-js.PublishAsyncComplete()
		for {
			sample()
			if rec, _ := tl.ix.states(); rec == sessions {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(time.Since(start).Seconds(), "fill-s")
		b.ReportMetric(float64(base)/(1<<20), "base-heap-MiB")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peakSys)/(1<<20), "peak-heap-sys-MiB")
		tl.stop()
		n.stop()
	}
}
