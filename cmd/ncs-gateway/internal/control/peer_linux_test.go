package control

import "testing"

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
		{"another user", peer{ok: true, pid: -1, uid: 1000, gid: 1000}, false},
		{"unknown credentials", peer{}, false},
	}
	for _, tt := range tests {
		if why := pp.refuse(tt.p); (why == "") != tt.ok {
			t.Errorf("%s: got refusal %q, want allowed=%v", tt.name, why, tt.ok)
		}
	}
}
