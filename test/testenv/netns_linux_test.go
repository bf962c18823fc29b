package testenv

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRunEntersNamespace checks the premise the firewall tests build on:
// inside Run, the thread and every process it starts are in the namespace,
// and the caller's thread is not.
func TestRunEntersNamespace(t *testing.T) {
	ns := NewNetNS(t)
	want, err := ns.Inode()
	if err != nil {
		t.Fatal(err)
	}
	var thread uint64
	var child string
	err = ns.Run(func() error {
		if err := CheckNotHostNetNS(); err != nil {
			return err
		}
		var err error
		if thread, err = nsInode("/proc/thread-self/ns/net"); err != nil {
			return err
		}
		out, err := exec.Command("readlink", "/proc/self/ns/net").Output()
		child = strings.TrimSpace(string(out))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if thread != want {
		t.Errorf("thread namespace inode: got %d, want %d", thread, want)
	}
	if w := fmt.Sprintf("net:[%d]", want); child != w {
		t.Errorf("child process namespace: got %q, want %q", child, w)
	}
	outside, err := nsInode("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if outside == want {
		t.Errorf("caller thread namespace: got %d, want anything else", outside)
	}
	if _, err := os.Stat("/run/netns/" + ns.Name); err != nil {
		t.Errorf("namespace file: got %v, want it present", err)
	}
}

// TestTopologyConnects dials the server from every client address, over
// IPv4 and IPv6, through the veth pair.
func TestTopologyConnects(t *testing.T) {
	tp := NewTopology(t)
	const port = 9000
	accepted := tp.Server.ListenTCP(t, port)
	tests := []struct {
		name string
		srcs []netip.Addr
		dst  netip.Addr
	}{
		{"ipv4", tp.ClientV4, ServerV4},
		{"ipv6", tp.ClientV6, ServerV6},
	}
	total := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, src := range tt.srcs {
				if err := tp.Client.DialTCP(src, netip.AddrPortFrom(tt.dst, port), 2*time.Second); err != nil {
					t.Errorf("dial from %s: got %v, want nil", src, err)
				}
			}
		})
		total += len(tt.srcs)
	}
	// The accept loop may lag the client by a moment.
	Eventually(t, 2*time.Second, 10*time.Millisecond, func() (bool, string) {
		got := accepted.Load()
		return got == int64(total), fmt.Sprintf("accepted connections: got %d, want %d", got, total)
	})
}
