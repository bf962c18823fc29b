package publish

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// serverLogger routes nats-server's printf-style logs to zap with a constant
// message and the server's text in a field.
type serverLogger struct {
	log *zap.Logger

	mu    sync.Mutex
	fatal string // last Fatalf text, reported when the server fails to start
}

var _ server.Logger = (*serverLogger)(nil)

// newServerLogger wraps log; caller skip points zap at nats-server's code.
func newServerLogger(log *zap.Logger) *serverLogger {
	return &serverLogger{log: log.WithOptions(zap.AddCallerSkip(1))}
}

// Noticef logs at info level.
func (l *serverLogger) Noticef(format string, v ...any) {
	l.log.Info("nats server", zap.String("detail", fmt.Sprintf(format, v...)))
}

// Warnf logs at warn level.
func (l *serverLogger) Warnf(format string, v ...any) {
	l.log.Warn("nats server", zap.String("detail", fmt.Sprintf(format, v...)))
}

// Fatalf logs at error level and does not exit: the server is embedded in
// the daemon, which decides what a failure means.
func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	l.fatal = msg
	l.mu.Unlock()
	l.log.Error("nats server fatal", zap.String("detail", msg))
}

// Errorf logs at error level.
func (l *serverLogger) Errorf(format string, v ...any) {
	l.log.Error("nats server", zap.String("detail", fmt.Sprintf(format, v...)))
}

// Debugf logs at debug level, formatting only when debug is enabled.
func (l *serverLogger) Debugf(format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "nats server"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

// Tracef logs protocol traces at debug level; tracing is never switched on
// by this package, so this only runs if a caller enables it explicitly.
func (l *serverLogger) Tracef(format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "nats server trace"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

// lastFatal returns the text of the last Fatalf, or "".
func (l *serverLogger) lastFatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}
