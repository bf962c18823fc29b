// Package firewall puts the host firewall in exactly a given allowlist
// state for the webhook ports: TCP to those ports is dropped unless the
// source is in the allowlist, over IPv4 and IPv6, and nothing else is
// touched. Backends: nftables (one table of our own, replaced in one netlink
// transaction), iptables (one chain of our own, one jump rule and two ipsets
// swapped atomically) and none (logs the plan only).
//
// Only objects named after Config.Name are ever created, changed or removed,
// so Docker, firewalld, ufw and fail2ban keep working beside us. Rules stay
// in place when the daemon stops; Remove takes them out.
package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go.uber.org/zap"
)

// Backend names accepted in Config.Backend.
const (
	BackendNFTables = "nftables"
	BackendIPTables = "iptables"
	BackendNone     = "none"
)

// DefaultName is the base name used when Config.Name is empty.
const DefaultName = "ncs_gateway"

// Config selects a backend and the ports it guards.
//
// Names derived from Name (shown for the default "ncs_gateway"):
//   - nftables: table "inet ncs_gateway" holding sets allow4, allow6, ports
//     and base chain input (hook input, priority filter, policy accept).
//   - iptables: chain "NCS-GATEWAY" in the filter table of iptables and
//     ip6tables, one "-j NCS-GATEWAY" rule at the top of INPUT, and ipsets
//     "ncs-gateway-v4" and "ncs-gateway-v6" (hash:net), with
//     "ncs-gateway-v4-tmp" and "ncs-gateway-v6-tmp" existing only during an
//     Apply.
type Config struct {
	// Backend is "nftables", "iptables" or "none".
	Backend string
	// Ports are the TCP ports reachable only from the allowlist.
	Ports []uint16
	// Name is the base name of everything we create: lowercase letters,
	// digits and underscores, starting with a letter, at most 20 characters.
	Name string
}

// Firewall keeps the webhook ports reachable only from an allowlist.
// Implementations are safe for concurrent use.
type Firewall interface {
	// Apply puts the host in exactly this allowlist state, atomically, and
	// verifies it by reading it back. Calling it again with the same list
	// is harmless.
	Apply(ctx context.Context, allow []netip.Prefix) error
	// Reconcile checks that what the last Apply installed is still in
	// place, puts it back if not and reports whether it had to. Before
	// any Apply it does nothing.
	Reconcile(ctx context.Context) (repaired bool, err error)
	// Remove deletes everything the backend created and nothing else. It
	// succeeds when there is nothing to remove.
	Remove(ctx context.Context) error
	// Watch blocks until ctx ends, calling changed soon after the host's
	// ruleset may have changed under us (at most about a second later),
	// coalescing bursts, and once at the start. The caller answers with
	// Reconcile; Watch itself never writes. changed runs on Watch's
	// goroutine, so it should hand off and return. Watch returns nil when
	// ctx ends.
	Watch(ctx context.Context, changed func()) error
	// Backend returns the backend name ("nftables", "iptables", "none").
	Backend() string
}

// namePattern keeps derived names valid everywhere: nft identifiers,
// iptables chain names (28 bytes) and ipset names (31 bytes, with "-v4-tmp").
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,19}$`)

// New validates cfg and returns the backend it names. It does not touch the
// kernel or run any tool, so it is safe on configuration-check paths.
func New(cfg Config, log *zap.Logger) (Firewall, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("firewall")
	switch cfg.Backend {
	case BackendNFTables:
		return newNFTables(cfg, log)
	case BackendIPTables:
		return newIPTables(cfg, log)
	default:
		return newNone(cfg, log), nil
	}
}

// normalize fills defaults, drops repeated ports and reports every problem
// at once (Validate).
func (c Config) normalize() (Config, error) {
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid firewall config: %w", err)
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	seen := make(map[uint16]bool, len(c.Ports))
	ports := make([]uint16, 0, len(c.Ports))
	for _, p := range c.Ports {
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	c.Ports = ports
	return c, nil
}

// iptablesChain is the iptables chain name derived from the base name.
func (c Config) iptablesChain() string {
	return strings.ToUpper(strings.ReplaceAll(c.Name, "_", "-"))
}

// ipsetName is the ipset name for one family ("v4" or "v6").
func (c Config) ipsetName(family string) string {
	return strings.ReplaceAll(c.Name, "_", "-") + "-" + family
}
