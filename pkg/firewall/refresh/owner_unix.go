//go:build unix

package refresh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// chownLikeDir gives f the owner and group of dir when they differ, which
// happens only when root writes into the service's state_dir.
func chownLikeDir(f *os.File, dir string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	own, ok := fi.Sys().(*syscall.Stat_t)
	if ok && own.Uid == st.Uid && own.Gid == st.Gid {
		return nil
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown like %s: %w", dir, err)
	}
	return nil
}

// LockDir takes an exclusive advisory lock on the directory itself (no
// lock file, so nothing is created with the wrong owner), waiting until ctx
// ends. The daemon holds it for its whole life; a one-shot that finds no
// daemon holds it for its one operation. The kernel drops it when the
// holder dies, so a crash never leaves it stuck.
func LockDir(ctx context.Context, dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	for {
		err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = d.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			d.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			d.Close()
			return nil, fmt.Errorf("lock %s: %w: %w", dir, ErrLocked, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
