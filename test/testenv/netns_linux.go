package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// nsCounter makes namespace names unique inside one test process; the pid
// makes them unique across processes running at the same time.
var nsCounter atomic.Uint64

// NetNS is a named network namespace ("ip netns add") that belongs to one
// test and is deleted when the test ends. Everything netfilter-related in
// tests happens inside one, so the host's own firewall is never touched.
type NetNS struct {
	// Name is the name under /run/netns, usable with "ip netns exec" and "ip -n".
	Name string
}

// NewNetNS creates a fresh network namespace named ncsgw-<pid>-<n> with its
// loopback up, and deletes it in t.Cleanup (also when the test fails). It
// skips, or fails in strict mode, when not root or when ip is missing.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	RequireRoot(t)
	RequireTools(t, "ip")
	name := fmt.Sprintf("ncsgw-%d-%d", os.Getpid(), nsCounter.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		SkipOrFail(t, "cannot create network namespace %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	ns := &NetNS{Name: name}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete network namespace %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
	})
	if _, err := ns.Exec("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("bring up loopback: %v", err)
	}
	return ns
}

// Run calls fn on a fresh goroutine locked to its own OS thread that has
// joined the namespace, and returns fn's error. Sockets (netlink included)
// opened by that goroutine live in the namespace, and processes it starts
// with os/exec inherit the namespace, because fork happens on the calling
// thread. The thread is never unlocked, so Go discards it when fn returns:
// no other goroutine can ever be scheduled on a thread left in the
// namespace. Goroutines that fn starts run on other threads in the
// caller's namespace; do kernel work on fn's goroutine only. fn must not
// call t.Fatal (it does not run on the test goroutine): return an error.
func (n *NetNS) Run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
		h, err := netns.GetFromName(n.Name)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", n.Name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Command returns an exec.Cmd that runs name with args inside the namespace
// through "ip netns exec", the way an operator would start the daemon.
func (n *NetNS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Exec runs a command inside the namespace (through "ip netns exec") and
// returns its combined output; the error includes that output.
func (n *NetNS) Exec(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %s %s in %s: %w: %s", name, strings.Join(args, " "), n.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MustExec is Exec that fails the test on error.
func (n *NetNS) MustExec(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := n.Exec(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Inode returns the inode number that identifies the namespace, the one
// /proc/<pid>/ns/net links of its processes point to.
func (n *NetNS) Inode() (uint64, error) {
	return nsInode("/run/netns/" + n.Name)
}

// nsInode returns the inode of a namespace file such as /proc/self/ns/net.
func nsInode(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("stat namespace %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("stat namespace %s: no inode", path)
	}
	return st.Ino, nil
}

// startNetNS is the inode of the namespace the test process started in (the
// host's, or whatever namespace the test runs under), read before any Run.
var startNetNS, startNetNSErr = nsInode("/proc/self/ns/net")

// CheckNotHostNetNS returns an error when the calling thread is in the
// network namespace the test process started in. Tests call it inside Run
// before touching netfilter, as a last guard against editing the real
// firewall.
func CheckNotHostNetNS() error {
	if startNetNSErr != nil {
		return startNetNSErr
	}
	self, err := nsInode("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	if self == startNetNS {
		return errors.New("refusing netfilter work: this thread is in the namespace the test started in")
	}
	return nil
}

// ListenTCP serves TCP on [::]:port (IPv4 and IPv6) inside the namespace,
// accepting and closing every connection, until the test ends. It returns
// the number of connections accepted so far, read through the counter.
func (n *NetNS) ListenTCP(t testing.TB, port uint16) *atomic.Int64 {
	t.Helper()
	var ln net.Listener
	err := n.Run(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen on port %d in %s: %v", port, n.Name, err)
	}
	var accepted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return &accepted
}

// DialTCP connects from src to dst inside the namespace and closes the
// connection at once with a reset (so tight loops leave no TIME_WAIT). It
// returns nil when the handshake completed within timeout.
func (n *NetNS) DialTCP(src netip.Addr, dst netip.AddrPort, timeout time.Duration) error {
	return n.Run(func() error { return DialFrom(src, dst, timeout) })
}

// DialFrom connects from src to dst in the calling thread's namespace (use
// it inside Run for loops) and resets the connection once established.
func DialFrom(src netip.Addr, dst netip.AddrPort, timeout time.Duration) error {
	d := net.Dialer{
		Timeout:   timeout,
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
	}
	c, err := d.Dial("tcp", dst.String())
	if err != nil {
		return fmt.Errorf("dial %s from %s: %w", dst, src, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c.Close()
}
