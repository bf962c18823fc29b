package e2e

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// testUser is a system user created for one test and deleted after it.
type testUser struct {
	name     string
	uid, gid int
}

func newTestUser(t *testing.T, name string) testUser {
	t.Helper()
	_ = exec.Command("userdel", name).Run() // a leftover of a killed run
	if out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
		"--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return testUser{name: name, uid: uid, gid: gid}
}

// setpriv is the command prefix that runs as u with CAP_NET_ADMIN alone,
// as the systemd unit does (User=, AmbientCapabilities=CAP_NET_ADMIN).
func (u testUser) setpriv() []string {
	return []string{"setpriv", "--reuid=" + strconv.Itoa(u.uid), "--regid=" + strconv.Itoa(u.gid), "--init-groups",
		"--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin"}
}

// openUp lets other users reach path: each directory from path up to the
// root gets o+x, path itself o+rx.
func openUp(t *testing.T, path string) {
	t.Helper()
	for p := path; p != "/" && p != "."; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()|0o005); err != nil {
			t.Fatal(err)
		}
	}
}

// metricValue reads one series from a /metrics page and fails the test if
// the series is not there.
func metricValue(t *testing.T, page, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return v
		}
	}
	t.Fatalf("no series %s on /metrics:\n%s", series, grep(page, "ncs_gateway_"))
	return 0
}

// waitReconciles waits until the daemon has run n more reconcile passes.
func (g *gateway) waitReconciles(n float64) {
	g.t.Helper()
	t := g.t.(*testing.T)
	const series = "ncs_gateway_firewall_reconciles_total"
	start := metricValue(t, g.get("/metrics"), series)
	waitFor(t, 30*time.Second, fmt.Sprintf("%v reconcile passes", n), func() bool {
		return metricValue(t, g.get("/metrics"), series) >= start+n
	})
}

// TestServiceUserBesideRootOneShot runs the daemon as the service's own
// user with only CAP_NET_ADMIN, the nftables backend and the fake Agora
// API, and a root operator's -refresh -force beside it (the only way to
// accept a shrink). The daemon applies its own plan, state_dir stays the
// service user's, the new list survives reconciles and a restart, and a
// user who is neither root nor the service's is refused by the socket.
func TestServiceUserBesideRootOneShot(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "setpriv", "useradd", "userdel")
	svc := newTestUser(t, "ncsgw-svc")
	other := newTestUser(t, "ncsgw-other")

	base := t.TempDir()
	stateDir, runDir := filepath.Join(base, "state"), filepath.Join(base, "run")
	// Modes as systemd makes them: StateDirectoryMode=0750, RuntimeDirectory 0755.
	for d, mode := range map[string]os.FileMode{stateDir: 0o750, runDir: 0o755} {
		if err := os.Mkdir(d, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, svc.uid, svc.gid); err != nil {
			t.Fatal(err)
		}
	}
	r := newAllowlistRig(t, "nftables", "@every 1h", stateDir)
	g := r.g
	socket := filepath.Join(runDir, "control.sock")
	g.env = append(g.env, "NCS_GATEWAY_ADMIN_CONTROL_SOCKET="+socket)
	g.setFirewall(fmt.Sprintf("firewall: {backend: nftables, ports: [%d], remove_grace: 0s, max_shrink: 0.5, reconcile_interval: 1s}", g.hookPort))
	if err := os.Chmod(g.cfgPath, 0o644); err != nil { // no secret in it: they come from the environment
		t.Fatal(err)
	}
	openUp(t, filepath.Dir(g.cfgPath))
	openUp(t, base)
	openUp(t, binary)

	rootWrap := g.wrap
	svcWrap := append(slicesClone(rootWrap), svc.setpriv()...)
	asRoot := func(args ...string) (string, string, int) {
		g.wrap = rootWrap
		defer func() { g.wrap = svcWrap }()
		return g.run(args...)
	}
	g.wrap = svcWrap

	a, b, c, c6 := r.tp.ClientV4[0], r.tp.ClientV4[1], r.tp.ClientV4[4], r.tp.ClientV6[0]
	r.setIPs(a, b, c6)
	g.start()
	r.expect("after the start-up refresh", a, b, c6)
	g.mu.Lock()
	pid := g.cmd.Process.Pid
	g.mu.Unlock()
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err != nil || !strings.Contains(string(st), fmt.Sprintf("Uid:\t%d\t", svc.uid)) {
		t.Fatalf("the daemon does not run as %s (uid %d): %v\n%s", svc.name, svc.uid, err, grep(string(st), "Uid"))
	}

	// Agora's list shrinks by more than max_shrink: a plain -refresh is
	// refused by the daemon, -refresh -force as root is applied by it.
	r.setIPs(c)
	out, errOut, code := asRoot("-refresh")
	if code == 0 || !strings.Contains(out, "through the running daemon") || !strings.Contains(errOut, "max_shrink") {
		t.Fatalf("-refresh of a shrink: exit %d\nstdout:\n%s\nstderr:\n%s\nwant the daemon's refusal", code, out, errOut)
	}
	// Three entries: the address, and 127.0.0.1 and ::1, which the
	// webhook's self-probe (the watchdog's heartbeat) connects from.
	out, errOut, code = asRoot("-refresh", "-force")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("through the running daemon (pid %d", pid)) ||
		!strings.Contains(out, "added       1 "+c.String()) || !strings.Contains(out, "applied 3 entries with the nftables backend") {
		t.Fatalf("-refresh -force: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	r.expect("after the root -refresh -force", c)
	if got := faultsLogLines(g.log(), "refresh requested over the control socket", map[string]string{"force": "true"}); len(got) != 1 {
		t.Errorf("daemon log: got %d forced refresh request(s), want 1", len(got))
	}

	// Everything in state_dir is still the service user's.
	err := filepath.WalkDir(stateDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != svc.uid || int(st.Gid) != svc.gid {
			t.Errorf("%s: owner %d:%d, want %s (%d:%d)", p, st.Uid, st.Gid, svc.name, svc.uid, svc.gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Reconcile passes keep the new list; the daemon stays ready.
	g.waitReconciles(2)
	r.expect("after two reconcile passes", c)
	resp, err := g.client.Get(g.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: got %d, want 200", resp.StatusCode)
	}

	// -status as root goes through the socket.
	out, errOut, code = asRoot("-status")
	if code != 0 || !strings.Contains(out, "addresses: 1  "+c.String()) || !strings.Contains(out, "ready: yes") {
		t.Errorf("-status as root: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// Another local user is refused, and does not fall back to acting alone.
	for _, args := range [][]string{{"-status"}, {"-refresh", "-force"}, {"-remove-firewall"}} {
		g.wrap = append(slicesClone(rootWrap), "setpriv", "--reuid="+strconv.Itoa(other.uid), "--regid="+strconv.Itoa(other.gid), "--clear-groups")
		out, errOut, code = g.run(args...)
		g.wrap = svcWrap
		if code == 0 || !strings.Contains(errOut, "refused: uid "+strconv.Itoa(other.uid)) {
			t.Errorf("%v as %s: exit %d\nstdout:\n%s\nstderr:\n%s\nwant a refusal", args, other.name, code, out, errOut)
		}
	}
	r.expect("after the refused requests", c)

	// A restart (with Agora down) applies the list the root one-shot chose.
	if err := g.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	r.api.QueueStatus(repeat(500, 40)...)
	r.setIPs(a)
	g.start()
	r.expect("after a restart with the API down", c)
	if got := faultsLogLines(g.log(), "persisted allowlist applied", map[string]string{"ncs_addresses": "1"}); len(got) == 0 {
		t.Errorf("restart log does not show the persisted list applied:\n%s", tail(g.log(), 20))
	}
}
