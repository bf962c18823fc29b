//go:build !linux

package control

import (
	"context"
	"net"
)

// peer is who is on the other end of a control connection; off Linux the
// credentials are not read and every request is refused.
type peer struct {
	ok       bool
	pid      int32
	uid, gid uint32
	groups   []uint32
}

type peerKey struct{}

func withPeer(ctx context.Context, _ net.Conn) context.Context { return ctx }

func peerFrom(context.Context) peer { return peer{} }

type peerPolicy struct{ uid, gid uint32 }

func (peerPolicy) refuse(peer) string {
	return "peer credentials are only checked on Linux; the control socket is closed here"
}
