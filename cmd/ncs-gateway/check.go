package main

import (
	"errors"
	"fmt"
	"io"
)

// checkConfig is -check-config, the unit's ExecStartPre: it runs the checks
// the daemon runs at start (the config's own rules, the secrets, each
// package's Validate, the TLS files) and builds, without starting, the
// components that need no network, so a config it accepts starts. Every
// problem of the file and the secrets is reported at once; warnings are
// printed and do not fail the check. It touches neither the kernel, the
// network nor NATS.
func checkConfig(cfg Config, loadErr error, path string, lookup func(string) (string, bool), stdout io.Writer) error {
	var p problemList
	if loadErr != nil {
		var ce *configError
		if !errors.As(loadErr, &ce) {
			return loadErr // unreadable or not YAML: nothing more to check
		}
		p = ce.problems
	}
	s, err := loadSecrets(cfg, lookup)
	if err != nil {
		p.add("", fmt.Sprintf("load secrets: %v", err))
	}
	s.check(cfg, &p)
	checkComponents(cfg, s, &p)
	if err := p.err(path); err != nil {
		return err
	}
	if _, err := newFirewall(cfg, nopLogger()); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := newFetcher(cfg, s, nopLogger()); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for _, w := range configWarnings(cfg) {
		fmt.Fprintf(stdout, "config %s: warning: %s\n", path, w)
	}
	fmt.Fprintf(stdout, "config %s: ok (%s)\n", path, s)
	return nil
}
