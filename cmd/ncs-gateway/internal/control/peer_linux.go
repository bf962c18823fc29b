package control

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// peer is who is on the other end of a control connection, as the kernel
// reports it (SO_PEERCRED), not as the client claims.
type peer struct {
	ok       bool
	pid      int32
	uid, gid uint32
}

type peerKey struct{}

// withPeer records conn's credentials in ctx.
func withPeer(ctx context.Context, conn net.Conn) context.Context {
	var p peer
	if uc, ok := conn.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
					p = peer{ok: true, pid: cred.Pid, uid: cred.Uid, gid: cred.Gid}
				}
			})
		}
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func peerFrom(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// peerPolicy is who may use the control socket: root, the daemon's own
// user, and members of its group.
type peerPolicy struct{ uid, gid uint32 }

// refuse returns why p may not use the socket, or "" when it may.
func (pp peerPolicy) refuse(p peer) string {
	switch {
	case !p.ok:
		return "the peer's credentials cannot be read"
	case p.uid == 0, p.uid == pp.uid, p.gid == pp.gid:
		return ""
	case inGroup(p.pid, pp.gid):
		return ""
	}
	return fmt.Sprintf("uid %d is neither root, the service's user (uid %d) nor in its group (gid %d)", p.uid, pp.uid, pp.gid)
}

// inGroup reports whether process pid has gid among its supplementary
// groups. SO_PEERCRED carries only the primary group; the peer is blocked
// in its request while we read its /proc entry.
func inGroup(pid int32, gid uint32) bool {
	f, err := os.Open("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "Groups:")
		if !ok {
			continue
		}
		for _, g := range strings.Fields(rest) {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(n) == gid {
				return true
			}
		}
		return false
	}
	return false
}
