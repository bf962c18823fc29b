package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/cmd/ncs-gateway/internal/config"
)

// checkConfig is -check-config, the unit's ExecStartPre: it runs the checks
// the daemon runs at start (the config's own rules, the secrets, each
// package's Validate, the TLS files) and builds, without starting, every
// component the daemon builds, with the daemon's own buildComponents, so a
// config it accepts starts. Every problem of the file and the secrets is
// reported at once; warnings are printed and do not fail the check. It
// touches neither the kernel, the network nor NATS.
func checkConfig(cfg config.Config, loadErr error, path string, lookup func(string) (string, bool), stdout io.Writer) error {
	var p config.Problems
	if loadErr != nil {
		var ce *config.Error
		if !errors.As(loadErr, &ce) {
			return loadErr // unreadable or not YAML: nothing more to check
		}
		p = ce.Problems
	}
	s, err := config.LoadSecrets(cfg, lookup)
	if err != nil {
		p.Add("", fmt.Sprintf("load secrets: %v", err))
	}
	checkAll(cfg, s, &p)
	if err := p.Err(path); err != nil {
		return err
	}
	if _, err := buildComponents(cfg, s, prometheus.NewRegistry(), zap.NewNop()); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "config %s: warning: %s\n", path, w)
	}
	fmt.Fprintf(stdout, "config %s: ok (%s)\n", path, s)
	return nil
}
