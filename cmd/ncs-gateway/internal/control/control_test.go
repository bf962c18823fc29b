package control

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestStartLeavesAnythingButASocketAlone: a control_socket path mistyped
// onto a file (the allowlist) or a directory is named in the error and
// left as it was; only a socket no one answers on is replaced.
func TestStartLeavesAnythingButASocketAlone(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "allowlist.json")
	if err := os.WriteFile(file, []byte(`{"entries":[]}`), 0o640); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, sub} {
		c := NewServer(context.Background(), path, nil, "none", nil, zap.NewNop())
		err := c.Start()
		if err == nil {
			_ = c.Shutdown(context.Background())
			t.Errorf("Start on %s: got nil, want an error naming it as not a socket", path)
		} else if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Start on %s: got %v, want it named as not a socket", path, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != `{"entries":[]}` {
		t.Errorf("allowlist.json after Start: got %q, %v; want it untouched", b, err)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("directory after Start: got %v, %v; want it untouched", fi, err)
	}

	// A socket left by a daemon that died is replaced.
	stale := filepath.Join(dir, "control.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	c := NewServer(context.Background(), stale, nil, "none", nil, zap.NewNop())
	if err := c.Start(); err != nil {
		t.Fatalf("Start over a stale socket: got %v, want it replaced", err)
	}
	_ = c.Shutdown(context.Background())
}

// TestRefusalsAreSampled: a local user hammering the socket does not get
// one warning line per request.
func TestRefusalsAreSampled(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	c := NewServer(context.Background(), filepath.Join(t.TempDir(), "c.sock"), nil, "none", nil, zap.New(core))
	h := c.authorize(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a refused request reached the handler")
	}))
	stranger := peer{ok: true, pid: 1, uid: 4242, gid: 4242}
	const n = 200
	for range n {
		req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
		req = req.WithContext(context.WithValue(req.Context(), peerKey{}, stranger))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("got %d, want 403", rec.Code)
		}
	}
	if got := logs.FilterMessage("control socket request refused").Len(); got < 1 || got > 10 {
		t.Errorf("got %d warning lines for %d refusals, want 1..10 (sampled)", got, n)
	}
}
