package main

import (
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
)

// Log lines are buffered: one write per notification line cost about as
// much CPU as the rest of the request (the load suite measured 13-16 us per
// event at level info). A line waits at most logFlushInterval, and the
// buffer is flushed on exit; what a kill -9 can lose is the last fraction
// of a second of log lines, never a notification.
const (
	logBufferSize    = 256 << 10
	logFlushInterval = 200 * time.Millisecond
)

// newLogger builds the daemon's one logger: JSON for production (journald
// and log shippers), console for a person at a terminal. Call Sync before
// exit to flush it.
func newLogger(cfg config.LogConfig, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	var enc zapcore.Encoder
	switch cfg.Format {
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		ec.EncodeDuration = zapcore.SecondsDurationEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	out := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: logBufferSize, FlushInterval: logFlushInterval}
	core := zapcore.NewCore(enc, out, level)
	return zap.New(core, zap.ErrorOutput(out)), nil
}
