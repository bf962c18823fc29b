//go:build !linux

package firewall

import (
	"errors"

	"go.uber.org/zap"
)

// errNotLinux is returned for kernel backends on systems without netfilter.
var errNotLinux = errors.New("the nftables and iptables backends need Linux; use backend none on this system")

func newNFTables(Config, *zap.Logger) (Firewall, error) { return nil, errNotLinux }

func newIPTables(Config, *zap.Logger) (Firewall, error) { return nil, errNotLinux }
