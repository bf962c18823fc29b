package refresh

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

func TestFileStoreRoundTrip(t *testing.T) {
	s := NewFileStore(t.TempDir())
	if st, err := s.Load(); st != nil || err != nil {
		t.Fatalf("empty store: got %v, %v; want nil, nil", st, err)
	}
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	want := &State{FetchedAt: at, Source: "x", Entries: []Entry{{Addr: netip.MustParseAddr("198.51.100.1"), LastSeen: at}}}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != stateVersion || !got.FetchedAt.Equal(at) || len(got.Entries) != 1 || got.Entries[0].Addr != want.Entries[0].Addr {
		t.Errorf("got %+v, want %+v", got, want)
	}
	fi, err := os.Stat(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode: got %v, want 0640", fi.Mode().Perm())
	}
}

// TestFileStoreOwnedLikeDir: root saving into the service's state_dir
// leaves the file owned by the service.
func TestFileStoreOwnedLikeDir(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	s := NewFileStore(dir)
	if err := s.Save(&State{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, StateFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("owner: got %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}

// TestLockDirExcludes: a second holder waits for the first and gives up
// when its context ends.
func TestLockDirExcludes(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := LockDir(ctx, dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: got %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := LockDir(context.Background(), dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("locking created %d file(s), want none", len(entries))
	}
}
