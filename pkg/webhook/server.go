package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Rejected requests are logged in full up to rejectLogFirst a second, then
// one in rejectLogThereafter.
const (
	rejectLogFirst      = 10
	rejectLogThereafter = 100
)

// Server is the webhook HTTP(S) server: echo routes the webhook path to the
// handler, and a plain net/http server with strict timeouts serves it on a
// listener bound by Start.
type Server struct {
	cfg      Config
	verifier *Verifier
	pub      Publisher
	log      *zap.Logger
	// rejectLog logs rejected requests, sampled: a flood of forged
	// notifications must not become a flood of log lines (the metrics
	// count every one).
	rejectLog *zap.Logger
	metrics   *Metrics
	echo      *echo.Echo
	srv       *http.Server
	cert      atomic.Pointer[tls.Certificate]
	// clock, when set (tests), replaces time.Now for freshness and ReceivedAt.
	clock func() time.Time
	skew  skewRecord

	mu       sync.Mutex
	ln       net.Listener
	lim      *limitListener
	done     chan struct{}
	serveErr error
}

// NewServer checks cfg, loads the TLS certificate when configured, and
// builds the server; nothing is bound until Start. It names its own logger
// "webhook" (and "webhook.http" for net/http's errors): pass the daemon's
// root logger, not one already named.
func NewServer(cfg Config, pub Publisher, log *zap.Logger, m *Metrics) (*Server, error) {
	cfg = cfg.withDefaults()
	errs := []error{cfg.Validate()}
	v, err := NewVerifier(cfg.Secrets, cfg.AcceptSHA1)
	if err != nil {
		errs = append(errs, fmt.Errorf("webhook.secrets: %w", err))
	}
	if pub == nil {
		errs = append(errs, errors.New("webhook: publisher is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("check webhook config: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		if m, err = NewMetrics(nil); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, verifier: v, pub: pub, log: log.Named("webhook"), metrics: m}
	s.rejectLog = s.log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, rejectLogFirst, rejectLogThereafter)
	}))
	if cfg.TLS() {
		if err := s.ReloadCertificate(); err != nil {
			return nil, err
		}
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.POST(cfg.Path, s.handleNotify)
	// The path's not-found route catches every other method, including
	// ones echo has no constant for, so that all of them are counted.
	e.RouteNotFound(cfg.Path, s.handleOtherMethod)
	s.echo = e

	s.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	if stdLog, err := zap.NewStdLogAt(s.log.Named("http"), zap.WarnLevel); err == nil {
		s.srv.ErrorLog = stdLog
	}
	if cfg.TLS() {
		s.srv.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// HTTP/1.1 only. Agora posts one notification per request and
			// needs nothing of HTTP/2, whose 250 streams per connection
			// would let max_connections no longer bound memory. ALPN
			// offers http/1.1 alone, and the empty TLSNextProto map keeps
			// net/http from adding h2 back.
			NextProtos: []string{"http/1.1"},
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert.Load(), nil
			},
		}
		s.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	return s, nil
}

// ReloadCertificate reads the TLS certificate and key files again, so a
// renewed certificate is served to new connections without a restart.
func (s *Server) ReloadCertificate() error {
	if !s.cfg.TLS() {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("load webhook tls certificate: %w", err)
	}
	s.cert.Store(&cert)
	return nil
}

// ClockSkew returns the host's clock minus notifyMs of the latest correctly
// signed notification that carried one, and when that notification arrived;
// ok is false until one has. A skew far from zero means the host clock is
// wrong (or, when positive, that notifications are replays).
func (s *Server) ClockSkew() (skew time.Duration, seen time.Time, ok bool) {
	return s.skew.load()
}

// skewRecord holds the latest clock skew; written on every notification,
// so it is two atomics rather than a lock.
type skewRecord struct {
	ns     atomic.Int64
	seenNs atomic.Int64 // Unix ns; 0 until the first record
}

func (r *skewRecord) record(skew time.Duration, at time.Time) {
	r.ns.Store(int64(skew))
	r.seenNs.Store(at.UnixNano())
}

func (r *skewRecord) load() (time.Duration, time.Time, bool) {
	seen := r.seenNs.Load()
	if seen == 0 {
		return 0, time.Time{}, false
	}
	return time.Duration(r.ns.Load()), time.Unix(0, seen), true
}

// Handler returns the HTTP handler, for tests and benchmarks.
func (s *Server) Handler() http.Handler { return s.echo }

// Start binds the listener and serves in the background; it returns bind
// errors. Wait reports how serving ended.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("webhook server already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.lim = newLimitListener(ln, s.cfg.MaxConnections, s.log)
	s.srv.ConnState = s.lim.track // before serving: net/http reads it from then on
	s.done = make(chan struct{})
	go s.serve(s.lim)
	s.log.Info("webhook listening",
		zap.String("addr", ln.Addr().String()),
		zap.String("path", s.cfg.Path),
		zap.Bool("tls", s.cfg.TLS()),
		zap.Int("max_connections", s.cfg.MaxConnections))
	return nil
}

// serve runs until Shutdown; it is owned by Start and awaited by Wait and
// Shutdown.
func (s *Server) serve(ln net.Listener) {
	defer close(s.done)
	var err error
	if s.cfg.TLS() {
		err = s.srv.ServeTLS(ln, "", "")
	} else {
		err = s.srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		s.serveErr = fmt.Errorf("serve webhook: %w", err)
	}
}

// Addr returns the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Connections returns the open webhook connections and their cap (0, 0 before Start).
func (s *Server) Connections() (open, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lim == nil {
		return 0, 0
	}
	return len(s.lim.slots), cap(s.lim.slots)
}

// Wait blocks until serving stops and returns its error: nil after
// Shutdown, nil at once if Start was never called.
func (s *Server) Wait() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	<-done
	return s.serveErr
}

// Shutdown stops accepting, lets in-flight requests finish (their publishes
// included) until ctx ends, and waits for the serving goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Past the deadline: cut the remaining connections.
		_ = s.srv.Close()
		err = fmt.Errorf("shut down webhook server: %w", err)
	}
	<-done
	return err
}

// recovered turns a handler panic into a logged 500 instead of a dropped
// connection; each handler defers it first. (A deferred method call, not an
// echo middleware: echo wraps middleware around the handler per request, an
// allocation each time.)
func (s *Server) recovered(err *error) {
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
			panic(p)
		}
		s.log.Error("handler panic", zap.Any("panic", p), zap.Stack("stack"))
		*err = echo.NewHTTPError(http.StatusInternalServerError)
	}
}

// handleError answers echo's own errors (unknown paths, panics) with a short
// JSON body.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.Blob(code, echo.MIMEApplicationJSON, []byte(`{"error":"`+strings.ToLower(http.StatusText(code))+`"}`))
}
