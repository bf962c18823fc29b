// Package control is the daemon's control socket: while a daemon runs it
// is the only owner of the kernel rules and of state_dir, and the one-shot
// commands (-refresh, -status, -remove-firewall) ask it over this unix
// socket instead of writing beside it. Any local user may connect (the
// socket is 0666, as tailscale's LocalAPI); the daemon decides from the
// peer's kernel-checked credentials and answers others 403 with the reason.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/status"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ledger"
)

// RefreshReply is the daemon's answer to POST /v1/refresh.
type RefreshReply struct {
	PID     int           `json:"pid"`
	Backend string        `json:"backend"`
	Plan    *refresh.Plan `json:"plan,omitempty"`
	Error   string        `json:"error,omitempty"`
	Reason  string        `json:"reason,omitempty"`
}

// Err is the refresh's error as the daemon reported it.
func (r RefreshReply) Err() error {
	if r.Error == "" {
		return nil
	}
	return &refresh.Error{Reason: r.Reason, Err: errors.New(r.Error)}
}

// Refresher is what the control socket runs of the daemon's refresher.
type Refresher interface {
	Refresh(ctx context.Context, opts refresh.Options) (*refresh.Plan, error)
}

// Server serves the control socket.
type Server struct {
	path   string
	srv    *http.Server
	ln     net.Listener
	policy peerPolicy
	log    *zap.Logger
	// refuseLog is log, sampled: refusals are the one line a stranger can
	// make the daemon write.
	refuseLog *zap.Logger
}

// Sampling of the refusal warning, per second.
const (
	refuseLogFirst      = 3
	refuseLogThereafter = 100
)

// NewServer builds the control API over the daemon's components at path
// (admin.control_socket). ctx bounds the refreshes it runs (the daemon's
// lifetime, not the request's: an operator's Ctrl-C must not cut an apply
// in half).
func NewServer(ctx context.Context, path string, ref Refresher, backend string, src *status.Source, log *zap.Logger) *Server {
	c := &Server{path: path, policy: peerPolicy{uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}, log: log.Named("control")}
	// Any local user can make the daemon refuse: the first few a second are
	// logged, then one in refuseLogThereafter, so a loop cannot flood the
	// journal.
	c.refuseLog = c.log.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(core, time.Second, refuseLogFirst, refuseLogThereafter)
	}))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/refresh", func(w http.ResponseWriter, r *http.Request) {
		var opts refresh.Options
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&opts); err != nil {
			http.Error(w, "decode refresh options: "+err.Error(), http.StatusBadRequest)
			return
		}
		c.log.Info("refresh requested over the control socket", zap.Bool("dry_run", opts.DryRun), zap.Bool("force", opts.Force),
			zap.Uint32("peer_uid", peerFrom(r.Context()).uid))
		plan, err := ref.Refresh(ctx, opts)
		reply := RefreshReply{PID: os.Getpid(), Backend: backend, Plan: plan}
		if err != nil {
			reply.Error, reply.Reason = err.Error(), refresh.Reason(err)
			if !opts.DryRun {
				refresh.LogFailure(c.log, err)
			}
		}
		writeJSON(w, http.StatusOK, reply)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Status(r.Context()))
	})
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, src.Sessions())
	})
	mux.HandleFunc("POST /v1/remove-firewall", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, fmt.Sprintf("the daemon (pid %d) is running and enforces the allowlist: it would put the rules back at its next reconcile. Stop it first (systemctl stop ncs-gateway), then run -remove-firewall", os.Getpid()), http.StatusConflict)
	})
	c.srv = &http.Server{
		Handler:           c.authorize(mux),
		ConnContext:       func(ctx context.Context, conn net.Conn) context.Context { return withPeer(ctx, conn) },
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	return c
}

// authorize lets root, the daemon's own user and members of its group in.
func (c *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerFrom(r.Context())
		if why := c.policy.refuse(p); why != "" {
			c.refuseLog.Warn("control socket request refused", zap.String("path", r.URL.Path), zap.String("why", why))
			http.Error(w, "refused: "+why, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Start binds the socket. A socket already there is removed if no one
// answers on it (a daemon that died); one that answers belongs to another
// daemon, with another state_dir, and is left alone. Anything else at the
// path (a mistyped admin.control_socket naming the allowlist, a
// directory) is never removed: Start names it in its error.
func (c *Server) Start() error {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	fi, err := os.Lstat(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("control socket: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("control socket: %s is not a socket but a %s; it is left alone: point admin.control_socket at a path of its own", c.path, kind(fi.Mode()))
	default:
		if conn, err := net.DialTimeout("unix", c.path, time.Second); err == nil {
			conn.Close()
			return fmt.Errorf("control socket %s: another ncs-gateway daemon answers on it; give each daemon its own admin.control_socket", c.path)
		}
		if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("control socket: remove stale %s: %w", c.path, err)
		}
	}
	ln, err := net.Listen("unix", c.path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	// Everyone may connect; authorize decides from the peer's credentials.
	if err := os.Chmod(c.path, 0o666); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	c.ln = ln
	c.log.Info("control socket listening", zap.String("path", c.path))
	return nil
}

// Serve answers until Shutdown; without a socket (Start failed) it
// returns at once.
func (c *Server) Serve() error {
	if c.ln == nil {
		return nil
	}
	if err := c.srv.Serve(c.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// Shutdown stops the server and removes the socket file.
func (c *Server) Shutdown(ctx context.Context) error { return c.srv.Shutdown(ctx) }

// ErrNoDaemon means no daemon answers on the control socket: the one-shot
// acts locally.
var ErrNoDaemon = errors.New("no daemon on the control socket")

// Client is a one-shot's connection to the running daemon.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client of the socket at path; it connects per request.
func NewClient(path string) *Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "unix", path)
	}
	return &Client{path: path, http: &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}}
}

// do sends one request and decodes a 200 answer into out.
func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	// A refresh may retry Agora for a while; the daemon bounds it.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://ncs-gateway"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return ErrNoDaemon
		}
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the running daemon answered: %s", strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control socket %s: decode %s: %w", c.path, path, err)
	}
	return nil
}

// Refresh asks the daemon to run its Refresh with opts.
func (c *Client) Refresh(ctx context.Context, opts refresh.Options) (RefreshReply, error) {
	var r RefreshReply
	err := c.do(ctx, http.MethodPost, "/v1/refresh", opts, &r)
	return r, err
}

// Status asks the daemon for its status.
func (c *Client) Status(ctx context.Context) (status.Daemon, error) {
	var st status.Daemon
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Sessions asks the daemon for the ledger's open and flagged sessions.
func (c *Client) Sessions(ctx context.Context) ([]ledger.Summary, error) {
	var out []ledger.Summary
	err := c.do(ctx, http.MethodGet, "/v1/sessions", nil, &out)
	return out, err
}

// RemoveFirewall asks the daemon to remove its rules, which it refuses
// while it runs; ErrNoDaemon means the caller may remove them itself.
func (c *Client) RemoveFirewall(ctx context.Context) error {
	var ignored struct{}
	return c.do(ctx, http.MethodPost, "/v1/remove-firewall", struct{}{}, &ignored)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// kind names a file's type for an operator.
func kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return m.Type().String()
}
