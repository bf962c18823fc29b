// Package admin is the daemon's HTTP listener for machines: /healthz,
// /readyz, /metrics and /status (admin.listen). It has no authentication:
// it belongs on loopback, or behind a filter the operator owns.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/status"
)

// Server serves /healthz, /readyz, /metrics and /status.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *zap.Logger
}

// New builds the server on listen over the daemon's registry and status.
func New(listen string, reg *prometheus.Registry, src *status.Source, log *zap.Logger) *Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		why := src.NotReady()
		code := http.StatusOK
		if len(why) > 0 {
			code = http.StatusServiceUnavailable
		}
		// A stream that breaks the contract leaves the gateway ready (the
		// spool takes every notification; refusing them would lose them
		// after Agora's 3 retries) but degraded, and says why.
		var degraded []string
		for _, p := range src.Pub.StreamProblems() {
			degraded = append(degraded, "nats stream: "+p.String())
		}
		writeJSON(w, code, map[string]any{"ready": len(why) == 0, "not_ready": why, "degraded": degraded})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Status(r.Context()))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return &Server{
		srv: &http.Server{
			Addr:              listen,
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		log: log.Named("admin"),
	}
}

// Start binds the listener and serves in the background.
func (a *Server) Start() error {
	ln, err := net.Listen("tcp", a.srv.Addr)
	if err != nil {
		return fmt.Errorf("listen admin: %w", err)
	}
	a.ln = ln
	a.log.Info("admin listening", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server stopped", zap.Error(err))
		}
	}()
	return nil
}

// Addr is the bound address, once Start has returned nil.
func (a *Server) Addr() net.Addr { return a.ln.Addr() }

// Shutdown stops the server, letting in-flight requests finish.
func (a *Server) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
