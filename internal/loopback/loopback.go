// Package loopback holds the one rule for "this address reaches this host
// only", shared by every config check that treats loopback differently
// (plain http to Agora's API, the embedded NATS listener, admin.listen,
// the webhook's firewall guard).
package loopback

import "net/netip"

// Host reports whether a host from a URL or a listen address reaches this
// host only: "localhost" or a loopback address. An empty host listens
// everywhere, so it is not loopback.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
