package testenv

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Addresses of the test topology, all from documentation ranges (RFC 5737,
// RFC 3849) so nothing can leak to a real network.
var (
	// ServerV4 and ServerV6 are the server's addresses, the ones clients dial.
	ServerV4 = netip.MustParseAddr("198.51.100.1")
	ServerV6 = netip.MustParseAddr("2001:db8::1")
	// ServerV4Alt is the server's address in the second IPv4 range; it gives
	// the server a route back to clients in 203.0.113.0/24.
	ServerV4Alt = netip.MustParseAddr("203.0.113.1")
)

// Topology is two namespaces joined by a veth pair: Server (interface ncs0
// with ServerV4/24, ServerV4Alt/24 and ServerV6/64) and Client (interface
// ncs1 with every address of ClientV4 and ClientV6). A client dials the
// server from a chosen source with Client.DialTCP. IPv6 addresses use
// nodad, so they are usable as soon as NewTopology returns.
type Topology struct {
	Server *NetNS
	Client *NetNS
	// ClientV4 holds 198.51.100.10-13 then 203.0.113.10-13.
	ClientV4 []netip.Addr
	// ClientV6 holds 2001:db8::10-13.
	ClientV6 []netip.Addr
}

// NewTopology builds the server and client namespaces and the veth pair
// between them; everything goes away when the test ends. The veth pair is
// created directly inside the namespaces ("ip -n"), so no interface name is
// ever taken in the host namespace and parallel runs cannot collide.
func NewTopology(t testing.TB) *Topology {
	t.Helper()
	tp := &Topology{Server: NewNetNS(t), Client: NewNetNS(t)}
	for i := 0; i < 4; i++ {
		tp.ClientV4 = append(tp.ClientV4, netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}))
	}
	for i := 0; i < 4; i++ {
		tp.ClientV4 = append(tp.ClientV4, netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}))
	}
	for i := 0; i < 4; i++ {
		a := ServerV6.As16()
		a[15] = byte(0x10 + i)
		tp.ClientV6 = append(tp.ClientV6, netip.AddrFrom16(a))
	}

	run := func(ns *NetNS, args ...string) {
		t.Helper()
		if _, err := ns.Exec("ip", args...); err != nil {
			t.Fatalf("build topology: %v", err)
		}
	}
	run(tp.Server, "link", "add", "ncs0", "type", "veth", "peer", "name", "ncs1", "netns", tp.Client.Name)
	run(tp.Server, "addr", "add", ServerV4.String()+"/24", "dev", "ncs0")
	run(tp.Server, "addr", "add", ServerV4Alt.String()+"/24", "dev", "ncs0")
	run(tp.Server, "addr", "add", ServerV6.String()+"/64", "dev", "ncs0", "nodad")
	run(tp.Server, "link", "set", "ncs0", "up")
	for _, a := range tp.ClientV4 {
		run(tp.Client, "addr", "add", a.String()+"/24", "dev", "ncs1")
	}
	for _, a := range tp.ClientV6 {
		run(tp.Client, "addr", "add", a.String()+"/64", "dev", "ncs1", "nodad")
	}
	run(tp.Client, "link", "set", "ncs1", "up")
	// The kernel reports carrier changes with a delay of up to a second
	// (linkwatch); until then the device drops what it is given. Wait for
	// both ends to be operationally up so the first test packet is not lost.
	for _, end := range []struct {
		ns  *NetNS
		dev string
	}{{tp.Server, "ncs0"}, {tp.Client, "ncs1"}} {
		if err := waitOperUp(end.ns, end.dev, 5*time.Second); err != nil {
			t.Fatalf("build topology: %v", err)
		}
	}
	return tp
}

// waitOperUp polls the device's operational state until it is up.
func waitOperUp(ns *NetNS, dev string, timeout time.Duration) error {
	var execErr error
	up, state := Poll(timeout, 20*time.Millisecond, func() (bool, string) {
		out, err := ns.Exec("cat", "/sys/class/net/"+dev+"/operstate")
		if err != nil {
			execErr = err
			return true, ""
		}
		return strings.TrimSpace(out) == "up", strings.TrimSpace(out)
	})
	if execErr != nil {
		return execErr
	}
	if !up {
		return fmt.Errorf("%s in %s: operstate %q after %s, want up", dev, ns.Name, state, timeout)
	}
	return nil
}
