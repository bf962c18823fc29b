package control

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPeerPolicy(t *testing.T) {
	pp := peerPolicy{uid: 999, gid: 998}
	tests := []struct {
		name string
		p    peer
		ok   bool
	}{
		{"root", peer{ok: true, uid: 0, gid: 0}, true},
		{"the service user", peer{ok: true, uid: 999, gid: 5}, true},
		{"the service group", peer{ok: true, uid: 1000, gid: 998}, true},
		{"the service group, supplementary", peer{ok: true, uid: 1000, gid: 1000, groups: []uint32{5, 998}}, true},
		{"other groups", peer{ok: true, uid: 1000, gid: 1000, groups: []uint32{5, 997}}, false},
		{"another user", peer{ok: true, pid: -1, uid: 1000, gid: 1000}, false},
		{"unknown credentials", peer{}, false},
	}
	for _, tt := range tests {
		if why := pp.refuse(tt.p); (why == "") != tt.ok {
			t.Errorf("%s: got refusal %q, want allowed=%v", tt.name, why, tt.ok)
		}
	}
}

// TestPeerGroupsFromTheSocket: the groups are the ones the kernel recorded
// for the connecting process, read from the socket (SO_PEERGROUPS).
func TestPeerGroupsFromTheSocket(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := peerFrom(withPeer(context.Background(), conn))
	mine, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]uint32, len(mine))
	for i, g := range mine {
		want[i] = uint32(g)
	}
	got := slices.Clone(p.groups)
	slices.Sort(got)
	slices.Sort(want)
	if !p.ok || p.uid != uint32(unix.Getuid()) || !slices.Equal(got, want) {
		t.Errorf("got peer %+v, want ok, uid %d, groups %v", p, unix.Getuid(), want)
	}
}
