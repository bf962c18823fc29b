package main

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

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
)

// publisherState is what the admin endpoints read from the publisher.
type publisherState interface {
	Ready() bool
	Status(ctx context.Context) publish.Status
	StreamProblems() []publish.StreamProblem
}

// clockSkewer reports how far this host's clock is from Agora's notifyMs.
type clockSkewer interface {
	ClockSkew() (skew time.Duration, seen time.Time, ok bool)
}

// statusSource assembles /readyz and /status from the running components.
type statusSource struct {
	cfg  Config
	ref  *refresh.Refresher
	pub  publisherState
	hook clockSkewer // nil: not known (a one-shot's view)
}

// daemonStatus is the JSON of GET /status, read by `ncs-gateway -status`.
type daemonStatus struct {
	Version   string          `json:"version"`
	Ready     bool            `json:"ready"`
	NotReady  []string        `json:"not_ready,omitempty"`
	Allowlist allowlistStatus `json:"allowlist"`
	NATS      publish.Status  `json:"nats"`
	Webhook   webhookStatus   `json:"webhook"`
}

// webhookStatus is what the webhook has seen of Agora's clock: the host's
// clock minus notifyMs of the latest signed notification. A host whose clock
// is off refuses every notification as stale or future; this says so.
type webhookStatus struct {
	ClockSkewSeconds *float64  `json:"clock_skew_seconds,omitempty"`
	SkewSeenAt       time.Time `json:"skew_seen_at,omitzero"`
	MaxNotifyAge     string    `json:"max_notify_age"`
	MaxNotifyFuture  string    `json:"max_notify_future"`
}

// allowlistStatus describes the applied allowlist.
type allowlistStatus struct {
	Backend     string          `json:"backend"`
	Ports       []uint16        `json:"ports"`
	Addresses   []string        `json:"addresses"`
	StaticAllow []string        `json:"static_allow"`
	FetchedAt   *time.Time      `json:"fetched_at,omitempty"`
	AgeSeconds  float64         `json:"age_seconds"`
	Source      string          `json:"source,omitempty"`
	LastRefresh *refresh.Record `json:"last_refresh,omitempty"`
	// PersistError: the applied list is not saved to state_dir yet.
	PersistError string `json:"persist_error,omitempty"`
}

func (s *statusSource) status(ctx context.Context) daemonStatus {
	st := daemonStatus{Version: version, NATS: s.pub.Status(ctx)}
	rs := s.ref.Status()
	al := allowlistStatus{
		Backend:     s.cfg.Firewall.Backend,
		Ports:       s.cfg.Firewall.Ports,
		StaticAllow: s.cfg.Firewall.StaticAllow,
		Addresses:   []string{},
		AgeSeconds:  -1,
	}
	al.PersistError = rs.PersistError
	if !rs.Last.At.IsZero() {
		al.LastRefresh = &rs.Last
	}
	if state := rs.State; state != nil {
		for _, a := range state.Addrs() {
			al.Addresses = append(al.Addresses, a.String())
		}
		fetched := state.FetchedAt
		al.FetchedAt, al.AgeSeconds, al.Source = &fetched, time.Since(fetched).Seconds(), state.Source
	}
	st.Allowlist = al
	st.Webhook = webhookStatus{
		MaxNotifyAge:    s.cfg.Webhook.MaxNotifyAge.String(),
		MaxNotifyFuture: s.cfg.Webhook.MaxNotifyFuture.String(),
	}
	if s.hook != nil {
		if skew, seen, ok := s.hook.ClockSkew(); ok {
			sec := skew.Seconds()
			st.Webhook.ClockSkewSeconds, st.Webhook.SkewSeenAt = &sec, seen
		}
	}
	st.NotReady = s.notReady(rs)
	st.Ready = len(st.NotReady) == 0
	return st
}

// notReady lists why the gateway cannot take Agora's notifications now,
// from the applied allowlist (in memory, whatever state_dir holds) and the
// publisher's local view: no request to NATS, so /readyz stays cheap.
func (s *statusSource) notReady(rs refresh.Status) []string {
	var why []string
	if !s.pub.Ready() {
		why = append(why, "nats: disconnected and the spool cannot take notifications")
	}
	if s.cfg.Firewall.Backend != "none" && rs.FetchEnabled && (rs.State == nil || len(rs.State.Entries) == 0) {
		why = append(why, "allowlist: no NCS address applied yet; the webhook ports are open only to static_allow (secure default) until a refresh succeeds")
	}
	return why
}

// adminServer serves /healthz, /readyz, /metrics and /status.
type adminServer struct {
	srv *http.Server
	ln  net.Listener
	log *zap.Logger
}

func newAdminServer(listen string, reg *prometheus.Registry, src *statusSource, log *zap.Logger) *adminServer {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		why := src.notReady(src.ref.Status())
		code := http.StatusOK
		if len(why) > 0 {
			code = http.StatusServiceUnavailable
		}
		// A stream that breaks the contract leaves the gateway ready (the
		// spool takes every notification; refusing them would lose them
		// after Agora's 3 retries) but degraded, and says why.
		var degraded []string
		for _, p := range src.pub.StreamProblems() {
			degraded = append(degraded, "nats stream: "+p.String())
		}
		writeJSON(w, code, map[string]any{"ready": len(why) == 0, "not_ready": why, "degraded": degraded})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.status(r.Context()))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return &adminServer{
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
func (a *adminServer) Start() error {
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

// Shutdown stops the server, letting in-flight requests finish.
func (a *adminServer) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
