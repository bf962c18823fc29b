package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/control"
	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/status"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
)

// fakePublisher stands in for the publisher in /status.
type fakePublisher struct{}

func (fakePublisher) Ready() bool                             { return true }
func (fakePublisher) Status(context.Context) publish.Status   { return publish.Status{} }
func (fakePublisher) StreamProblems() []publish.StreamProblem { return nil }

// controlRig is a daemon's control socket over a real refresher (none
// backend, fake Agora API), and the config a one-shot would use.
type controlRig struct {
	api     *ncsiptest.Server
	cfgPath string
	cfg     config.Config
	ref     *refresh.Refresher
}

func newControlRig(t *testing.T, ips ...string) *controlRig {
	t.Helper()
	api := ncsiptest.NewServer(t, "id", "secret", ips...)
	state := t.TempDir()
	path := writeConfig(t, fmt.Sprintf(`state_dir: %s
admin: {listen: "127.0.0.1:0", control_socket: %s}
ncs: {endpoints: [%q], timeout: 2s}
firewall: {backend: none, ports: [8443], max_shrink: 0.5, remove_grace: 0s}
`, state, filepath.Join(t.TempDir(), "control.sock"), api.Endpoint()))
	lookup := env("NCS_GATEWAY_CUSTOMER_ID", "id", "NCS_GATEWAY_CUSTOMER_SECRET", "secret")
	cfg, err := config.Load(path, lookup)
	if err != nil {
		t.Fatal(err)
	}
	s, err := config.LoadSecrets(cfg, lookup)
	if err != nil {
		t.Fatal(err)
	}
	ref, fw, err := newAllowlist(cfg, s, refresh.NewMetrics(nil), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.ApplyPersisted(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src := &status.Source{Backend: cfg.Firewall.Backend, Ports: cfg.Firewall.Ports, StaticAllow: cfg.Firewall.StaticAllow, Ref: ref, Pub: fakePublisher{}}
	ctl := control.NewServer(ctx, cfg.Admin.ControlSocket, ref, fw.Backend(), src, zap.NewNop())
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ctl.Serve() }()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = ctl.Shutdown(sctx)
		if err := <-done; err != nil {
			t.Errorf("control server: %v", err)
		}
	})
	return &controlRig{api: api, cfgPath: path, cfg: cfg, ref: ref}
}

// oneShot runs the CLI as an operator would, with no webhook secret.
func (r *controlRig) oneShot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"-config", r.cfgPath}, args...), &out, &errb,
		env("NCS_GATEWAY_CUSTOMER_ID", "id", "NCS_GATEWAY_CUSTOMER_SECRET", "secret"))
	return out.String(), err
}

// TestRefreshGoesThroughTheDaemon: with a daemon on the control socket,
// -refresh runs the daemon's own Refresh and prints its plan; the daemon's
// memory (what it enforces and reports) holds the new list.
func TestRefreshGoesThroughTheDaemon(t *testing.T) {
	r := newControlRig(t, "198.51.100.1", "198.51.100.2", "198.51.100.3")
	if out, err := r.oneShot(t, "-refresh"); err != nil || !strings.Contains(out, "through the running daemon (pid ") {
		t.Fatalf("-refresh: got %v\n%s\nwant it answered by the daemon", err, out)
	}
	r.api.SetIPs([]string{"203.0.113.1"})

	// The shrink gate refuses; the CLI prints the daemon's plan and error.
	out, err := r.oneShot(t, "-refresh")
	if err == nil || !strings.Contains(err.Error(), "max_shrink") || !strings.Contains(out, "added       1 203.0.113.1") {
		t.Fatalf("-refresh of a shrink: got %v\n%s\nwant the daemon's plan and its shrink refusal", err, out)
	}
	out, err = r.oneShot(t, "-refresh", "-dry-run", "-force")
	if err != nil || !strings.Contains(out, "dry run: nothing changed") {
		t.Fatalf("-refresh -dry-run -force: got %v\n%s", err, out)
	}
	out, err = r.oneShot(t, "-refresh", "-force")
	if err != nil || !strings.Contains(out, "removed     3 198.51.100.1 198.51.100.2 198.51.100.3") || !strings.Contains(out, "applied 1 entries with the none backend") {
		t.Fatalf("-refresh -force: got %v\n%s", err, out)
	}
	if st := r.ref.Status(); st.State == nil || fmt.Sprint(st.State.Addrs()) != "[203.0.113.1]" {
		t.Errorf("daemon's applied list: got %+v, want [203.0.113.1]", st.State)
	}

	out, err = r.oneShot(t, "-status")
	if err != nil || !strings.Contains(out, "addresses: 1  203.0.113.1") {
		t.Errorf("-status: got %v\n%s\nwant the daemon's allowlist", err, out)
	}
}

// TestRemoveFirewallRefusedWhileTheDaemonRuns: the daemon would put the
// rules back, so it says to stop it first, and nothing is removed.
func TestRemoveFirewallRefusedWhileTheDaemonRuns(t *testing.T) {
	r := newControlRig(t, "198.51.100.1")
	_, err := r.oneShot(t, "-remove-firewall")
	if err == nil || !strings.Contains(err.Error(), "Stop it first") {
		t.Fatalf("-remove-firewall: got %v, want the daemon's refusal", err)
	}
}

// TestOneShotActsLocallyWithoutADaemon: a stale socket file (a daemon
// that was killed) means no daemon: -refresh runs here.
func TestOneShotActsLocallyWithoutADaemon(t *testing.T) {
	path := oneShotConfig(t, t.TempDir(), "198.51.100.1")
	cfg, err := config.Load(path, env())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Admin.ControlSocket, nil, 0o600); err != nil { // not a socket: refused
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = run(context.Background(), []string{"-config", path, "-refresh"}, &out, &errb,
		env("NCS_GATEWAY_CUSTOMER_ID", "id", "NCS_GATEWAY_CUSTOMER_SECRET", "secret"))
	if err != nil || strings.Contains(out.String(), "through the running daemon") || !strings.Contains(out.String(), "applied 1 entries") {
		t.Fatalf("-refresh with a stale socket: got %v\n%s\nwant a local refresh", err, out.String())
	}
}

// TestOneShotWaitsForAStartingDaemon: a daemon holds state_dir for its
// life; a one-shot that finds no socket but the lock taken says to retry.
func TestOneShotWaitsForAStartingDaemon(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockStateDirForDaemon(context.Background(), dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = lockStateDir(context.Background(), dir, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "try again in a moment") {
		t.Fatalf("got %v, want the advice to try again", err)
	}
}
