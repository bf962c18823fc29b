package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// smallDisk mounts a tmpfs of 2 MiB on a new directory, so a test can fill
// it; it is unmounted at cleanup, after everything registered later.
func smallDisk(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		testenv.SkipOrFail(t, "mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file into dir until the filesystem is full and returns
// the function that deletes it: a disk-full episode and its end.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create filler: %v", err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill %s: got %v, want ENOSPC", dir, err)
	}
	_ = f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatalf("remove filler: %v", err)
		}
	}
}

// bigMsg is a message the spool cannot store without new pages.
func bigMsg(i int) Message {
	m := testMsg(i)
	m.Data = make([]byte, 256<<10)
	return m
}

// waitDisconnected waits until the publisher has noticed that NATS is gone.
func waitDisconnected(t *testing.T, p *testPublisher) {
	t.Helper()
	eventually(t, 10*time.Second, "publisher notices the disconnect", func() error {
		if p.Status(context.Background()).Connected {
			return errors.New("still connected")
		}
		return nil
	})
}

// TestReadinessRecoversAfterDiskFull is issue 9's sticky not-ready: a spool
// write fails on a full disk, the disk frees up, and later, with NATS down,
// the publisher must say ready because the spool can take messages again.
func TestReadinessRecoversAfterDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spooled int // messages spooled before the disk fills: drained later
	}{
		{"spool drained", 3},
		{"nothing to drain", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := smallDisk(t)
			srv := deadNATS(t)
			cfg := testConfig(srv.url(), t.TempDir())
			cfg.SpoolPath = filepath.Join(disk, "spool.db")
			p := newTestPublisher(t, cfg, true)
			for i := range tc.spooled {
				if out, err := p.Publish(context.Background(), testMsg(i)); err != nil || out != Spooled {
					t.Fatalf("publish %d: got %v, %v, want spooled, nil", i, out, err)
				}
			}

			free := fillDisk(t, disk)
			if _, err := p.Publish(context.Background(), bigMsg(100)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("publish on a full disk: got %v, want ErrUnavailable", err)
			}
			if p.Ready() {
				t.Fatalf("ready with NATS down and the disk full: got true, want false")
			}
			free()

			srv.restart()
			eventually(t, 10*time.Second, "connected with the spool drained", func() error {
				st := p.Status(context.Background())
				if !st.Connected || st.SpoolDepth != 0 {
					return fmt.Errorf("connected %v, spool depth %d", st.Connected, st.SpoolDepth)
				}
				return nil
			})
			srv.stop()
			waitDisconnected(t, p)
			// No traffic arrives now (a load balancer has taken the
			// gateway out): readiness must come back on its own.
			eventually(t, 10*time.Second, "ready again with NATS down", func() error {
				if !p.Ready() {
					return errors.New("not ready, though the spool can take messages")
				}
				return nil
			})
			if out, err := p.Publish(context.Background(), testMsg(200)); err != nil || out != Spooled {
				t.Errorf("publish once ready: got %v, %v, want spooled, nil", out, err)
			}
		})
	}
}
