package webhook

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// BenchmarkAcceptedLine is the accepted notification's info line alone
// (Check and Write), the per-request cost of log.level info: with the
// daemon's JSON encoder to nowhere, with other time and duration encoders
// for comparison, and through the daemon's buffered writer to a real file
// from 16 goroutines per CPU, as under load.
func BenchmarkAcceptedLine(b *testing.B) {
	n := Parse(fixture(b, "uploaded.json"), time.Now())
	encoders := []struct {
		name string
		time zapcore.TimeEncoder
		dur  zapcore.DurationEncoder
	}{
		{"daemon-rfc3339nano-seconds", zapcore.RFC3339NanoTimeEncoder, zapcore.SecondsDurationEncoder},
		{"epoch-seconds", zapcore.EpochTimeEncoder, zapcore.SecondsDurationEncoder},
		{"rfc3339nano-nanos", zapcore.RFC3339NanoTimeEncoder, zapcore.NanosDurationEncoder},
	}
	for _, e := range encoders {
		b.Run(e.name, func(b *testing.B) {
			ec := zap.NewProductionEncoderConfig()
			ec.EncodeTime, ec.EncodeDuration = e.time, e.dur
			log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(discardSyncer{}), zapcore.InfoLevel)).Named("webhook")
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if ce := log.Check(zap.InfoLevel, "notification accepted"); ce != nil {
					logAccepted(ce, &n, Published, start, "127.0.0.1:54321")
				}
			}
		})
	}
	b.Run("daemon-buffered-file-parallel", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatalf("create log file: %v", err)
		}
		defer f.Close()
		ws := &zapcore.BufferedWriteSyncer{WS: f, Size: 256 << 10, FlushInterval: 200 * time.Millisecond}
		defer ws.Stop() //nolint:errcheck // benchmark teardown
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime, ec.EncodeDuration = zapcore.RFC3339NanoTimeEncoder, zapcore.SecondsDurationEncoder
		log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), ws, zapcore.InfoLevel)).Named("webhook")
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				start := time.Now()
				if ce := log.Check(zap.InfoLevel, "notification accepted"); ce != nil {
					logAccepted(ce, &n, Published, start, "127.0.0.1:54321")
				}
			}
		})
	})
}

// discardSyncer is io.Discard as a WriteSyncer.
type discardSyncer struct{}

func (discardSyncer) Write(p []byte) (int, error) { return len(p), nil }
func (discardSyncer) Sync() error                 { return nil }
