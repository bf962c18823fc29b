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
