package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// maxExposure is the bar for `systemd-analyze security`.
const maxExposure = 2.0

// TestSystemdUnit checks systemd/ncs-gateway.service the way CI's issue asks:
// `systemd-analyze verify` is clean and the offline security exposure is at
// most 2.0. verify checks that ExecStart's binary exists, so it runs on a
// copy whose /usr/bin/ncs-gateway points at the binary this package built.
func TestSystemdUnit(t *testing.T) {
	testenv.RequireTools(t, "systemd-analyze")
	unit, err := os.ReadFile("../../systemd/ncs-gateway.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ncs-gateway.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/ncs-gateway", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	out, err := exec.CommandContext(ctx, "systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: got %v:\n%s\nwant a clean pass", err, out)
	}

	out, err = exec.CommandContext(ctx, "systemd-analyze", "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	exposure, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security --offline=yes: exposure %.1f", exposure)
	if exposure > maxExposure {
		t.Errorf("exposure: got %.1f, want at most %.1f:\n%s", exposure, maxExposure, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "-check-config", "LoadCredential="} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if strings.Contains(string(unit), "PrivateNetwork=yes") {
		t.Error("unit sets PrivateNetwork=yes: the firewall it manages is the host's")
	}
}
