package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peer is who is on the other end of a control connection, as the kernel
// recorded it when the peer connected (SO_PEERCRED, SO_PEERGROUPS), not as
// the client claims and not as /proc shows it later: the unit's
// ProtectProc=invisible hides other users' processes from the daemon, and
// a pid read at request time may already be another process's.
type peer struct {
	ok       bool
	pid      int32
	uid, gid uint32
	groups   []uint32 // supplementary groups
}

type peerKey struct{}

// withPeer records conn's credentials in ctx, read once at connect time.
func withPeer(ctx context.Context, conn net.Conn) context.Context {
	var p peer
	if uc, ok := conn.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
				if err != nil {
					return
				}
				groups, err := peerGroups(int(fd))
				if err != nil {
					return // unknown groups: refused, not guessed
				}
				p = peer{ok: true, pid: cred.Pid, uid: cred.Uid, gid: cred.Gid, groups: groups}
			})
		}
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func peerFrom(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// peerGroups reads the peer's supplementary groups as the kernel saw them
// at connect (SO_PEERGROUPS, Linux 4.13): an array of gid_t, grown when
// the kernel answers ERANGE with the size it needs.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for range 4 {
		size := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == 0:
			return slices.Clone(buf[:size/4]), nil
		case errors.Is(errno, unix.ERANGE) && int(size/4) > len(buf):
			buf = make([]uint32, size/4)
		default:
			return nil, fmt.Errorf("getsockopt SO_PEERGROUPS: %w", errno)
		}
	}
	return nil, errors.New("getsockopt SO_PEERGROUPS: the peer's groups kept growing")
}

// peerPolicy is who may use the control socket: root, the daemon's own
// user, and members of its group (primary or supplementary).
type peerPolicy struct{ uid, gid uint32 }

// refuse returns why p may not use the socket, or "" when it may.
func (pp peerPolicy) refuse(p peer) string {
	switch {
	case !p.ok:
		return "the peer's credentials cannot be read"
	case p.uid == 0, p.uid == pp.uid, p.gid == pp.gid, slices.Contains(p.groups, pp.gid):
		return ""
	}
	return fmt.Sprintf("uid %d is neither root, the service's user (uid %d) nor in its group (gid %d)", p.uid, pp.uid, pp.gid)
}
