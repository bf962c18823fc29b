package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// session is what every command that runs servers shares: a work
// directory, a random webhook secret and the binaries built once into it.
// `all` opens one session for the suite, the attack and the soak.
type session struct {
	work   string
	keep   bool
	secret string
	bins   binaries
	stderr io.Writer
}

// openSession creates the work directory under tmpParent (default
// $TMPDIR), draws a secret and builds the gateway and nats-server. The
// caller closes the session, which removes the directory unless keep.
func openSession(ctx context.Context, tmpParent string, keep bool, stderr io.Writer) (*session, error) {
	work, err := os.MkdirTemp(tmpParent, "ncs-load-")
	if err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	s := &session{work: work, keep: keep, stderr: stderr}
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		s.close()
		return nil, fmt.Errorf("draw secret: %w", err)
	}
	s.secret = hex.EncodeToString(key[:])
	fmt.Fprintf(stderr, "building ncs-gateway and nats-server into %s\n", work)
	if s.bins, err = buildBinaries(ctx, work); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close removes the work directory, or says where it was kept.
func (s *session) close() {
	if s.keep {
		fmt.Fprintf(s.stderr, "kept logs and data in %s\n", s.work)
		return
	}
	os.RemoveAll(s.work)
}

// launcher returns a launcher whose logs and data go to the subdirectory
// sub of the work directory ("" for the work directory itself).
func (s *session) launcher(sub string) (*launcher, error) {
	dir := filepath.Join(s.work, sub)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	return &launcher{dir: dir, bins: s.bins, secret: s.secret}, nil
}

// buildBinaries builds the gateway and nats-server from this module, and
// finds this tool's own binary for the baseline servers.
func buildBinaries(ctx context.Context, dir string) (binaries, error) {
	self, err := os.Executable()
	if err != nil {
		return binaries{}, fmt.Errorf("find own binary: %w", err)
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return binaries{}, err
	}
	b := binaries{self: self, gateway: filepath.Join(dir, "ncs-gateway"), natsServer: filepath.Join(dir, "nats-server")}
	if err := goBuild(ctx, root, b.gateway, "./cmd/ncs-gateway"); err != nil {
		return binaries{}, err
	}
	if err := goBuild(ctx, root, b.natsServer, "github.com/nats-io/nats-server/v2"); err != nil {
		return binaries{}, err
	}
	return b, nil
}

// writeOut writes a report to path when path is set.
func writeOut(path, report string) error {
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
