package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// notifySentinel is a datagram the test sends to its own socket: once the
// reader has seen it, every notification queued before it has been read.
const notifySentinel = "E2E_SENTINEL=1"

// notifyMsg is one line of a datagram systemd would have received.
type notifyMsg struct {
	at   time.Time
	line string // "READY=1", "WATCHDOG=1", ...
	snap string // what the snapshot function saw when it arrived
}

// notifySocket is a fake systemd NOTIFY_SOCKET: a unixgram socket the test
// listens on, recording every line the daemon sends. snapshot, if set,
// runs as each datagram arrives, to capture the daemon's state at that
// moment (its log, the kernel's ruleset).
type notifySocket struct {
	t        testing.TB
	path     string
	conn     *net.UnixConn
	snapshot func() string

	mu   sync.Mutex
	msgs []notifyMsg
}

func newNotifySocket(t testing.TB, snapshot func() string) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on a notify socket: %v", err)
	}
	n := &notifySocket{t: t, path: path, conn: conn, snapshot: snapshot}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			at, snap := time.Now(), ""
			if n.snapshot != nil && string(buf[:k]) != notifySentinel {
				snap = n.snapshot()
			}
			n.mu.Lock()
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:k])), "\n") {
				n.msgs = append(n.msgs, notifyMsg{at: at, line: line, snap: snap})
			}
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// lines returns the lines received so far with this exact text.
func (n *notifySocket) lines(text string) []notifyMsg {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []notifyMsg
	for _, m := range n.msgs {
		if m.line == text {
			out = append(out, m)
		}
	}
	return out
}

// waitLines waits until count lines with this text have arrived.
func (n *notifySocket) waitLines(text string, count int, d time.Duration) []notifyMsg {
	n.t.Helper()
	waitFor(n.t, d, fmt.Sprintf("%d %q on the notify socket", count, text), func() bool {
		return len(n.lines(text)) >= count
	})
	return n.lines(text)
}

// flush returns once everything sent to the socket so far has been read.
func (n *notifySocket) flush() {
	n.t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		n.t.Fatalf("dial the notify socket: %v", err)
	}
	defer c.Close()
	before := len(n.lines(notifySentinel))
	if _, err := c.Write([]byte(notifySentinel)); err != nil {
		n.t.Fatalf("write to the notify socket: %v", err)
	}
	n.waitLines(notifySentinel, before+1, 10*time.Second)
}

// withWatchdogPID is a command prefix that sets WATCHDOG_PID to the
// daemon's own pid, as systemd does: the shell exports its pid and execs
// the daemon in its place.
var withWatchdogPID = []string{"/bin/sh", "-c", `WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"`, "sh"}

// TestSystemdNotify: against a fake NOTIFY_SOCKET, the daemon sends READY
// once, when the webhook already takes connections and answers, pings the
// watchdog (WATCHDOG_USEC, WATCHDOG_PID) at half its interval, and sends
// STOPPING on SIGTERM before it exits. (The log is buffered for up to
// 200 ms, so it cannot witness the order; the webhook port can.)
func TestSystemdNotify(t *testing.T) {
	var hookAddr string
	sock := newNotifySocket(t, func() string { return dialResult(hookAddr) })
	const watchdog = 2 * time.Second
	g := newGateway(t, gatewayOptions{
		wrap: withWatchdogPID,
		env:  []string{"NOTIFY_SOCKET=" + sock.path, fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds())},
	})
	hookAddr = fmt.Sprintf("127.0.0.1:%d", g.hookPort)
	g.start()

	ready := sock.waitLines("READY=1", 1, 30*time.Second)[0]
	if ready.snap != "connected" {
		t.Errorf("the webhook port when READY arrived: got %s, want connected", ready.snap)
	}
	if code, ans := g.post(testSecret, notification("notify-1", time.Now().UnixMilli())); code != http.StatusOK {
		t.Errorf("signed notification after READY: got %d %s, want 200", code, ans)
	}

	// The watchdog: on, at the interval systemd gave, pinged at half of it.
	pings := sock.waitLines("WATCHDOG=1", 4, 10*watchdog)
	enabled := faultsLogLines(g.log(), "systemd watchdog enabled", nil)
	if len(enabled) != 1 || enabled[0]["interval"] != watchdog.Seconds() {
		t.Errorf("watchdog log: got %v, want one line with interval %v (seconds)", enabled, watchdog.Seconds())
	}
	var gaps []string
	for i := 1; i < len(pings); i++ {
		gaps = append(gaps, pings[i].at.Sub(pings[i-1].at).Round(time.Millisecond).String())
	}
	// A measurement, not a check: timing on a shared machine is noise.
	t.Logf("watchdog %s: pings %s apart (the daemon pings at half the interval)", watchdog, strings.Join(gaps, ", "))

	g.signal(syscall.SIGTERM)
	if err := g.wait(30 * time.Second); err != nil {
		t.Errorf("SIGTERM: got exit %v, want a clean exit", err)
	}
	sock.flush() // the daemon has exited: all it sent is queued before the sentinel
	if n := len(sock.lines("STOPPING=1")); n != 1 {
		t.Errorf("STOPPING=1 on SIGTERM: got %d, want 1", n)
	}
	if n := len(sock.lines("READY=1")); n != 1 {
		t.Errorf("READY=1: got %d, want exactly 1", n)
	}
}

// TestSystemdNotifyReadyAfterTheAllowlist: a daemon in a network
// namespace with the nftables backend has its table and the webhook port's
// rule in the kernel when systemd hears READY (no persisted list and
// Agora's API refusing: the port closed to all, the secure default). The
// nft listing runs after READY arrives, so a READY sent a moment too early
// can pass here; TestSystemdNotifyNoReadyWhenTheAllowlistCannotBeApplied
// is the test that catches the wrong order.
func TestSystemdNotifyReadyAfterTheAllowlist(t *testing.T) {
	r := newAllowlistRig(t, "nftables", "@every 1h", "")
	r.api.QueueStatus(repeat(401, 10)...)
	sock := newNotifySocket(t, func() string {
		out, err := r.tp.Server.Exec("nft", "list", "table", "inet", "ncs_gateway")
		if err != nil {
			return err.Error()
		}
		return out
	})
	r.g.env = append(r.g.env, "NOTIFY_SOCKET="+sock.path)
	r.g.start()
	ready := sock.waitLines("READY=1", 1, 30*time.Second)[0]
	// The port in the guarded set, and a drop rule: the layout's details
	// belong to the firewall's own tests.
	if !strings.Contains(ready.snap, fmt.Sprintf(" %d ", r.g.hookPort)) || !strings.Contains(ready.snap, " drop ") {
		t.Errorf("the kernel when READY arrived: got\n%s\nwant our table guarding port %d", ready.snap, r.g.hookPort)
	}
	r.expect("after READY", []netip.Addr{}...)
}

// dialResult is "connected" when a TCP handshake with addr completes, or
// the error.
func dialResult(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err.Error()
	}
	c.Close()
	return "connected"
}

// TestSystemdNotifyNoReadyWhenWebhookCannotListen: with the webhook's port
// taken, the daemon exits with an error and systemd never hears READY.
func TestSystemdNotifyNoReadyWhenWebhookCannotListen(t *testing.T) {
	sock := newNotifySocket(t, nil)
	g := newGateway(t, gatewayOptions{env: []string{"NOTIFY_SOCKET=" + sock.path}})
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", g.hookPort))
	if err != nil {
		t.Fatalf("take the webhook port: %v", err)
	}
	defer ln.Close()
	out, errOut, code := g.runDaemon()
	if code == 0 {
		t.Fatalf("with the webhook port taken: got exit 0, want an error\n%s%s", out, errOut)
	}
	sock.flush()
	if n := len(sock.lines("READY=1")); n != 0 {
		t.Errorf("READY=1 sent by a daemon whose webhook could not listen: got %d, want 0", n)
	}
	if !strings.Contains(out+errOut, "address already in use") {
		t.Errorf("the exit does not name the cause:\n%s", tail(out+errOut, 10))
	}
}

// TestSystemdNotifyNoReadyWhenTheAllowlistCannotBeApplied: a daemon that
// cannot apply its allowlist (no CAP_NET_ADMIN, dropped with setpriv, in a
// throwaway network namespace) exits with an error before READY.
func TestSystemdNotifyNoReadyWhenTheAllowlistCannotBeApplied(t *testing.T) {
	testenv.RequireTools(t, "setpriv", "nft")
	ns := testenv.NewNetNS(t)
	sock := newNotifySocket(t, nil)
	g := newGateway(t, gatewayOptions{
		wrap: []string{"ip", "netns", "exec", ns.Name, "setpriv", "--bounding-set", "-net_admin"},
		env:  []string{"NOTIFY_SOCKET=" + sock.path},
	})
	g.setFirewall(fmt.Sprintf("firewall: {backend: nftables, ports: [%d]}", g.hookPort))
	out, errOut, code := g.runDaemon()
	if code == 0 {
		t.Fatalf("without CAP_NET_ADMIN: got exit 0, want an error\n%s%s", out, errOut)
	}
	sock.flush()
	if n := len(sock.lines("READY=1")); n != 0 {
		t.Errorf("READY=1 sent by a daemon whose allowlist was not applied: got %d, want 0", n)
	}
	if lines := faultsLogLines(out+errOut, "webhook listening", nil); len(lines) != 0 {
		t.Errorf("the webhook listened although no allowlist was applied")
	}
	if got := ns.MustExec(t, "nft", "list", "ruleset"); strings.Contains(got, "ncs_gateway") {
		t.Errorf("the namespace holds our table although the apply failed:\n%s", got)
	}
	if !strings.Contains(out+errOut, "apply") {
		t.Errorf("the exit does not say the apply failed:\n%s", tail(out+errOut, 10))
	}
}

// runDaemon runs the daemon in the foreground, for a start that must fail,
// and returns its stdout and stderr (the JSON log is there, not in the log
// file) and exit code.
func (g *gateway) runDaemon() (string, string, int) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, code := g.runCtx(ctx)
	if ctx.Err() != nil {
		g.t.Fatalf("the daemon still ran after 60 s, want it to exit at start:\n%s", tail(out+errOut, 20))
	}
	return out, errOut, code
}

// runCtx is run with no arguments under ctx.
func (g *gateway) runCtx(ctx context.Context) (string, string, int) {
	cmd := g.command(ctx)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		g.t.Fatalf("run the daemon: %v", err)
	}
	return out.String(), errb.String(), code
}
