package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// oneShotConfig writes a config for a one-shot -refresh against the fake
// Agora API, with the none backend and no webhook secret anywhere.
func oneShotConfig(t *testing.T, stateDir string, ips ...string) string {
	t.Helper()
	api := ncsiptest.NewServer(t, "id", "secret", ips...)
	return writeConfig(t, fmt.Sprintf(`state_dir: %s
admin: {listen: "127.0.0.1:0", control_socket: %s}
ncs: {endpoints: [%q], timeout: 2s}
firewall: {backend: none, ports: [8443]}
`, stateDir, filepath.Join(t.TempDir(), "control.sock"), api.Endpoint()))
}

// TestRefreshNeedsNoWebhookSecret: -refresh talks to Agora and the
// firewall; the webhook secret is none of its business.
func TestRefreshNeedsNoWebhookSecret(t *testing.T) {
	path := oneShotConfig(t, t.TempDir(), "198.51.100.1")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-config", path, "-refresh"}, &out, &errb,
		env("NCS_GATEWAY_CUSTOMER_ID", "id", "NCS_GATEWAY_CUSTOMER_SECRET", "secret"))
	if err != nil {
		t.Fatalf("-refresh without a webhook secret: got %v, want success\nstdout:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "added       1 198.51.100.1") {
		t.Errorf("stdout: got\n%s\nwant the plan with 198.51.100.1 added", out.String())
	}
}

// TestRemoveFirewallNeedsNoSecret: the package's prerm runs
// -remove-firewall; a missing secret file (the embedded reader's password,
// deleted by hand) must not leave the rules behind.
func TestRemoveFirewallNeedsNoSecret(t *testing.T) {
	path := writeConfig(t, fmt.Sprintf(`state_dir: %s
admin: {listen: "127.0.0.1:0", control_socket: %s}
nats: {embedded_users: [{user: reader, password_file: %s}]}
ncs: {endpoints: []}
firewall: {backend: none, ports: [8443]}
`, t.TempDir(), filepath.Join(t.TempDir(), "control.sock"), filepath.Join(t.TempDir(), "gone")))
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-config", path, "-remove-firewall"}, &out, &errb, env()); err != nil {
		t.Fatalf("-remove-firewall with a missing password file: got %v, want success\nstderr:\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "removed ncs-gateway's none rules") {
		t.Errorf("stdout: got %q, want the removal", out.String())
	}
}
