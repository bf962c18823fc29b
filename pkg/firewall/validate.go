package firewall

import (
	"errors"
	"fmt"
)

// Defaults of the operator's firewall.* keys that this package owns.
const (
	// DefaultBackend is firewall.backend's default.
	DefaultBackend = BackendNFTables
	// DefaultPort is firewall.ports' default: the webhook's default port.
	DefaultPort uint16 = 8443
)

// Validate reports every problem of the configuration at once, each error
// starting with the operator's key. An empty Name takes DefaultName. It
// does no I/O and touches no kernel; New calls it.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Name != "" && !namePattern.MatchString(c.Name) {
		bad("firewall.name", "%q: use 1-20 lowercase letters, digits or underscores, starting with a letter", c.Name)
	}
	switch c.Backend {
	case BackendNFTables, BackendIPTables, BackendNone:
	default:
		bad("firewall.backend", "%q is not one of nftables, iptables, none", c.Backend)
	}
	if len(c.Ports) == 0 && c.Backend != BackendNone {
		bad("firewall.ports", "list at least one TCP port to protect (the webhook's)")
	}
	for i, p := range c.Ports {
		if p == 0 {
			bad(fmt.Sprintf("firewall.ports[%d]", i), "0 is not a port, use 1-65535")
		}
	}
	return errors.Join(errs...)
}
