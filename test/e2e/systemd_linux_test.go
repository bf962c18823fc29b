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

// maxExposure is the bar for `systemd-analyze security`: the unit's level
// when the iptables-legacy and credential fixes went in, which they kept.
const maxExposure = 1.6

// TestSystemdUnit checks systemd/ncs-gateway.service the way CI's issue asks:
// `systemd-analyze verify` is clean and the offline security exposure is at
// most maxExposure. verify checks that ExecStart's binary exists, so it runs on a
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
	for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "-check-config", "LoadCredential=",
		// The control socket's directory, reachable by the service's group.
		"\nRuntimeDirectory=ncs-gateway\n", "\nRuntimeDirectoryMode=0750\n",
		// Optional NATS secrets: a missing file must not fail the unit.
		"\nLoadCredential=nats-password:/etc/ncs-gateway/credentials/nats-password\nSetCredential=nats-password:\\n\n",
		"\nLoadCredential=nats-token:/etc/ncs-gateway/credentials/nats-token\nSetCredential=nats-token:\\n\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if strings.Contains(string(unit), "PrivateNetwork=yes") {
		t.Error("unit sets PrivateNetwork=yes: the firewall it manages is the host's")
	}
}

// TestSystemdUnitIPTablesLegacy runs the binary with the iptables backend,
// on iptables-legacy (the variant that takes /run/xtables.lock and reads
// its tables through a raw socket), inside the sandbox the unit gives it, as
// far as it can be had without systemd as PID 1: a private mount namespace
// whose /run is a fresh tmpfs (the host's lock is never touched), the
// unit's own root ExecStartPre= line, then /run read-only
// (ProtectSystem=strict), and the binary as an unprivileged user with
// exactly the unit's capabilities, in a fresh network namespace. It removes
// a chain and jump set up beforehand (-remove-firewall takes the lock for
// every iptables call). The same run without the ExecStartPre= line must
// fail on the lock: that is what the line is for.
func TestSystemdUnitIPTablesLegacy(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "unshare", "setpriv", "xtables-legacy-multi", "ipset", "ip")
	unit, err := os.ReadFile("../../systemd/ncs-gateway.service")
	if err != nil {
		t.Fatal(err)
	}
	var prep, caps string
	for _, l := range strings.Split(string(unit), "\n") {
		switch {
		case strings.HasPrefix(l, "ExecStartPre=+"):
			prep = strings.TrimPrefix(l, "ExecStartPre=+")
		case strings.HasPrefix(l, "AmbientCapabilities="):
			caps = strings.TrimPrefix(l, "AmbientCapabilities=")
		}
	}
	if prep == "" || caps == "" {
		t.Fatalf("unit: got ExecStartPre=+ %q, AmbientCapabilities= %q, want both", prep, caps)
	}
	// The service's group does not exist here: nobody's stands in.
	prep = strings.ReplaceAll(prep, "ncs-gateway", "nogroup")
	var capList []string
	for _, c := range strings.Fields(caps) {
		capList = append(capList, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	capArg := "-all," + strings.Join(capList, ",")

	// A directory the unprivileged user can read: the binary, the config,
	// and iptables pointed at iptables-legacy, as update-alternatives does.
	dir, err := os.MkdirTemp("", "ncsgw-unit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ncs-gateway"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	legacy, err := exec.LookPath("xtables-legacy-multi")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"iptables", "ip6tables", "iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore"} {
		if err := os.Symlink(legacy, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "state_dir: " + dir + "/state\nncs: {endpoints: []}\nfirewall: {backend: iptables, ports: [8443]}\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(withPrep bool) (string, error) {
		var script strings.Builder
		script.WriteString("set -e\nexport PATH=" + dir + ":$PATH\n")
		script.WriteString("mount -t tmpfs -o mode=0755 tmpfs /run\n")
		if withPrep {
			script.WriteString(prep + "\n")
		}
		script.WriteString("mount --bind /run /run\nmount -o remount,bind,ro /run\nip link set lo up\n")
		for _, ipt := range []string{"iptables", "ip6tables"} {
			// As root, before the sandbox: what an earlier run left.
			script.WriteString("if [ -e /run/xtables.lock ]; then " + ipt + " -N NCS-GATEWAY && " + ipt + " -I INPUT -j NCS-GATEWAY; fi\n")
		}
		script.WriteString("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=" + capArg +
			" --ambient-caps=" + capArg + " --bounding-set=" + capArg + " " + dir + "/ncs-gateway -config " + dir + "/config.yaml -remove-firewall\n")
		script.WriteString("if iptables-save -t filter | grep -q NCS-GATEWAY; then echo 'NCS-GATEWAY still there'; exit 1; fi\n")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script.String()).CombinedOutput()
		return string(out), err
	}
	if out, err := run(true); err != nil {
		t.Errorf("with the unit's ExecStartPre=+: got %v, want -remove-firewall to succeed:\n%s", err, out)
	} else {
		t.Logf("with the unit's ExecStartPre=+:\n%s", out)
	}
	out, err := run(false)
	if err == nil || !strings.Contains(out, "xtables.lock") {
		t.Errorf("without the ExecStartPre=+ line: got %v, want a failure on /run/xtables.lock:\n%s", err, out)
	}
}
