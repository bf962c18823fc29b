package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// BenchmarkApply parses and merges one notification into its record (a
// composite session's eleven events in turn, with duplicates).
func BenchmarkApply(b *testing.B) {
	s := testSessions("b")[0]
	d := s.deliveries(rand.New(rand.NewPCG(1, 1)))
	b.ReportAllocs()
	r := NewRecord(s.sid)
	for i := 0; b.Loop(); i++ {
		if i%len(d) == 0 {
			r = NewRecord(s.sid)
		}
		e, _ := Parse(d[i%len(d)], 1)
		r.Apply(e)
	}
}

// BenchmarkMergeStore is what the ledger does per session and batch
// besides NATS: decode the stored record, merge a batch's events, encode.
func BenchmarkMergeStore(b *testing.B) {
	s := testSessions("b")[0]
	d := s.deliveries(rand.New(rand.NewPCG(1, 1)))
	stored := applyAll(b, s.sid, d[:len(d)/2]).Marshal()
	var events []Event
	for _, body := range d[len(d)/2:] {
		e, _ := Parse(body, 1)
		events = append(events, e)
	}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := UnmarshalRecord(stored)
		for _, e := range events {
			r.Apply(e)
		}
		_ = r.Marshal()
	}
}

// BenchmarkIndexLoad loads the index from a bucket of 100,000 open
// sessions, the way a starting ledger does, and reports the heap the
// index keeps (heap in use after a GC, less before the load) and the peak
// heap seen during the load (the in-process nats-server included), in
// use and held from the OS (what the process's RSS follows).
func BenchmarkIndexLoad(b *testing.B) {
	const sessions = 100_000
	n := startNATS(b)
	js := n.client()
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefaultBucket, History: 1})
	if err != nil {
		b.Fatalf("create bucket: %v", err)
	}
	now := time.Now().UnixMilli()
	for i := range sessions {
		s := testSession{sid: fmt.Sprintf("%032x", i), cname: fmt.Sprintf("room%d", i), base: now, notes: []note{
			started("100"), {30, 2, "100", map[string]any{"msgName": "uploader_started", "status": 0}, false},
			{42, 1, "100", map[string]any{"msgName": "recorder_slice_start", "startUtcMs": 1, "mixedAllUser": true}, false},
			{3, 0, "100", map[string]any{"msgName": "cloud_recording_status_update", "status": 5, "recordingMode": 0, "fileList": "a.m3u8"}, false},
		}}
		rec := applyAll(b, s.sid, bodies(s))
		if _, err := js.PublishAsync("$KV."+DefaultBucket+"."+s.sid, rec.Marshal()); err != nil {
			b.Fatalf("publish record: %v", err)
		}
		if i%4096 == 0 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	// A restart, as the daemon's: the server reads the bucket from disk,
	// with none of it in its caches.
	n.stop()
	n.start()
	kv, err = n.client().KeyValue(ctx, DefaultBucket)
	if err != nil {
		b.Fatalf("bucket after restart: %v", err)
	}
	b.ResetTimer()
	for b.Loop() {
		nc, err := nats.Connect(n.url())
		if err != nil {
			b.Fatalf("connect: %v", err)
		}
		l, err := New(DefaultConfig(), nc, zap.NewNop(), nil)
		if err != nil {
			b.Fatalf("new: %v", err)
		}
		ljs, _ := jetstream.New(nc)
		r := &runner{l: l, js: ljs, kv: kv}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		peak, peakSys := base, ms.HeapSys-ms.HeapReleased
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { r.watch(wctx); close(done) }()
		start := time.Now()
		for !l.loaded.Load() {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			peakSys = max(peakSys, ms.HeapSys-ms.HeapReleased)
			time.Sleep(5 * time.Millisecond)
		}
		loadTime := time.Since(start)
		if rec, _, _, _ := l.ix.counts(); rec != sessions {
			b.Fatalf("indexed: got %d recording, want %d", rec, sessions)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(loadTime.Seconds(), "load-s")
		b.ReportMetric(float64(ms.HeapInuse-base)/(1<<20), "index-MiB")
		b.ReportMetric(float64(base)/(1<<20), "base-heap-MiB")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peakSys)/(1<<20), "peak-heap-sys-MiB")
		runtime.KeepAlive(l)
		cancel()
		<-done
		nc.Close()
	}
}

// BenchmarkCatchUp starts a ledger on a stream holding 20,000
// notifications of 2,000 sessions (ten each, shuffled) on a server that
// fsyncs every write, and reports how long it takes to catch up and how
// many record writes it needed.
func BenchmarkCatchUp(b *testing.B) {
	const sessionsN, perSession = 2000, 10
	n := startNATSSync(b, true)
	js := n.client()
	rng := rand.New(rand.NewPCG(9, 9))
	now := time.Now().UnixMilli()
	var all [][]byte
	for i := range sessionsN {
		s := testSession{sid: fmt.Sprintf("catchup%05d", i), cname: "c", base: now}
		for j := range perSession - 2 {
			s.notes = append(s.notes, note{33, 2, "1", map[string]any{"msgName": "uploading_progress", "progress": j * 1000}, false})
		}
		s.notes = append(s.notes, uploaded("1", "a.m3u8"), exit("1", 0))
		all = append(all, bodies(s)...)
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	pubStart := time.Now()
	for i := 0; i < len(all); i += 1000 {
		publishBodies(b, js, all[i:min(i+1000, len(all))])
	}
	pubTime := time.Since(pubStart)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		tl := runLedger(b, n, testLedgerConfig(time.Hour, 26*time.Hour))
		for {
			s := tl.Status()
			if s.CaughtUp && s.Completed == sessionsN {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(time.Since(start).Seconds(), "catchup-s")
		b.ReportMetric(pubTime.Seconds(), "publish-s")
		b.ReportMetric(tl.metric(b, "ncs_gateway_ledger_conflicts_total"), "conflicts")
		tl.stop()
	}
}
