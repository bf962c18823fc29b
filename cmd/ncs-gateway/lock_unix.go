//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// fileLock is an advisory lock on a file under state_dir. It keeps a one-shot
// `-refresh` and the running daemon from applying the allowlist at once; the
// kernel releases it if its holder dies, so a crash never leaves it stuck.
type fileLock struct{ f *os.File }

// lockFile takes the exclusive lock at path, waiting until ctx is done.
func lockFile(ctx context.Context, path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: another refresh holds it: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unlock releases the lock.
func (l *fileLock) unlock() error { return l.f.Close() }
