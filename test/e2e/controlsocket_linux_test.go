package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// hideOtherProcs is the command prefix that runs the rest of the command
// line in its own mount namespace with /proc mounted hidepid=invisible:
// what ProtectProc=invisible in the shipped unit does. Without
// CAP_SYS_PTRACE the daemon then sees no other user's process.
var hideOtherProcs = []string{"unshare", "--mount", "--propagation", "private",
	"sh", "-c", `mount -t proc -o hidepid=invisible proc /proc && exec "$@"`, "sh"}

// TestControlSocketGroupMemberUnderHiddenProc: the README promises the
// control socket to members of the service's group. Under the shipped
// unit (an unprivileged user, ProtectProc=invisible) a client that is only
// a supplementary member of that group gets its answer; a user outside the
// group is still refused.
func TestControlSocketGroupMemberUnderHiddenProc(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "setpriv", "useradd", "userdel", "unshare", "mount", "sh")
	svc := newTestUser(t, "ncsgw-csvc")
	member := newTestUser(t, "ncsgw-cmember")
	other := newTestUser(t, "ncsgw-cother")

	base := t.TempDir()
	stateDir, runDir := filepath.Join(base, "state"), filepath.Join(base, "run")
	for d, mode := range map[string]os.FileMode{stateDir: 0o750, runDir: 0o755} {
		if err := os.Mkdir(d, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, svc.uid, svc.gid); err != nil {
			t.Fatal(err)
		}
	}
	g := newGateway(t, gatewayOptions{stateDir: stateDir})
	g.env = append(g.env, "NCS_GATEWAY_ADMIN_CONTROL_SOCKET="+filepath.Join(runDir, "control.sock"))
	if err := os.Chmod(g.cfgPath, 0o644); err != nil { // no secret in it
		t.Fatal(err)
	}
	openUp(t, filepath.Dir(g.cfgPath))
	openUp(t, base)
	openUp(t, binary)

	g.wrap = append(slicesClone(hideOtherProcs), svc.setpriv()...)
	g.start()
	g.mu.Lock()
	pid := g.cmd.Process.Pid
	g.mu.Unlock()
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil || !strings.Contains(string(st), "Uid:\t"+strconv.Itoa(svc.uid)+"\t") {
		t.Fatalf("the daemon does not run as %s (uid %d): %v\n%s", svc.name, svc.uid, err, grep(string(st), "Uid"))
	}

	// A member of the service's group by a supplementary group only.
	g.wrap = []string{"setpriv", "--reuid=" + strconv.Itoa(member.uid), "--regid=" + strconv.Itoa(member.gid),
		"--groups=" + strconv.Itoa(svc.gid)}
	out, errOut, code := g.run("-status")
	if code != 0 || !strings.Contains(out, "ready: yes") {
		t.Errorf("-status as a member of the service's group: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant the daemon's status", code, out, errOut)
	}

	// A user outside the group is refused, with the reason.
	g.wrap = []string{"setpriv", "--reuid=" + strconv.Itoa(other.uid), "--regid=" + strconv.Itoa(other.gid), "--clear-groups"}
	out, errOut, code = g.run("-status")
	if code == 0 || !strings.Contains(errOut, "refused: uid "+strconv.Itoa(other.uid)) {
		t.Errorf("-status as %s: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant a refusal", other.name, code, out, errOut)
	}
}
