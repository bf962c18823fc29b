package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"go.uber.org/zap"
)

// noneBackend changes nothing on the host: it logs what a real backend would
// apply, for dry runs and for hosts whose firewall is managed elsewhere.
type noneBackend struct {
	cfg Config
	log *zap.Logger

	mu   sync.Mutex
	last allowlist
}

var _ Firewall = (*noneBackend)(nil)

func newNone(cfg Config, log *zap.Logger) *noneBackend {
	return &noneBackend{cfg: cfg, log: log}
}

// Apply logs the plan (counts, added and removed entries) and succeeds.
func (b *noneBackend) Apply(ctx context.Context, allow []netip.Prefix) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply allowlist: %w", err)
	}
	list, err := newAllowlist(allow)
	if err != nil {
		return fmt.Errorf("apply allowlist: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	added, removed := b.last.diff(list)
	b.last = list
	b.log.Info("firewall plan not applied",
		zap.String("backend", BackendNone),
		zap.Uint16s("ports", b.cfg.Ports),
		zap.Int("ipv4_count", len(list.v4)),
		zap.Int("ipv6_count", len(list.v6)),
		zap.Int("added_count", added),
		zap.Int("removed_count", removed),
	)
	return nil
}

// Reconcile has nothing to check.
func (b *noneBackend) Reconcile(context.Context) (bool, error) { return false, nil }

// Remove has nothing to remove.
func (b *noneBackend) Remove(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = allowlist{}
	return nil
}

// Watch has nothing to watch: it blocks until ctx ends.
func (b *noneBackend) Watch(ctx context.Context, _ func()) error {
	<-ctx.Done()
	return nil
}

// Backend returns "none".
func (b *noneBackend) Backend() string { return BackendNone }
