package refresh

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the format of allowlist.json; bump it on incompatible changes.
const stateVersion = 1

// StateFileName is the allowlist's file under state_dir.
const StateFileName = "allowlist.json"

// State is the last good allowlist: what was applied, and when each address
// was last seen in Agora's answer (for the removal grace period).
type State struct {
	Version   int       `json:"version"`
	AppliedAt time.Time `json:"applied_at"`
	FetchedAt time.Time `json:"fetched_at"` // the Agora answer this list came from
	Source    string    `json:"source"`     // the endpoint that answered
	Entries   []Entry   `json:"entries"`
}

// Entry is one NCS address and the last time Agora listed it.
type Entry struct {
	Addr     netip.Addr `json:"addr"`
	LastSeen time.Time  `json:"last_seen"`
}

// Addrs lists the state's addresses in order.
func (s *State) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(s.Entries))
	for i, e := range s.Entries {
		out[i] = e.Addr
	}
	return out
}

// Store keeps the state across restarts.
type Store interface {
	// Load returns the persisted state, or nil if there is none yet.
	Load() (*State, error)
	// Save replaces the persisted state, atomically.
	Save(*State) error
}

// FileStore is allowlist.json under state_dir. Every file it creates is
// owned like the directory, so a root one-shot never leaves behind a file
// the service's user cannot read or replace.
type FileStore struct{ Path string }

// NewFileStore returns the store at dir/allowlist.json.
func NewFileStore(dir string) FileStore { return FileStore{Path: filepath.Join(dir, StateFileName)} }

// Load implements Store.
func (f FileStore) Load() (*State, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read allowlist state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode allowlist state %s: %w", f.Path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("decode allowlist state %s: version %d, want %d", f.Path, s.Version, stateVersion)
	}
	return &s, nil
}

// Save implements Store: a crash at any moment leaves either the old file
// or the new one, never a torn one.
func (f FileStore) Save(s *State) error {
	c := *s
	c.Version = stateVersion
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode allowlist state: %w", err)
	}
	return writeFileAtomic(f.Path, append(b, '\n'), 0o640)
}

// writeFileAtomic writes a temporary file owned like its directory, fsyncs
// it, renames it over path and fsyncs the directory.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := chownLikeDir(tmp, dir); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
