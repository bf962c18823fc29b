package main

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

// allowState is the last good allowlist: what was applied, and when each
// address was last seen in Agora's answer (for the removal grace period).
// It lives in <state_dir>/allowlist.json and is what the daemon applies at
// start, before it takes a single request.
type allowState struct {
	Version   int          `json:"version"`
	AppliedAt time.Time    `json:"applied_at"`
	FetchedAt time.Time    `json:"fetched_at"` // the Agora answer this list came from
	Source    string       `json:"source"`     // the endpoint that answered
	Entries   []stateEntry `json:"entries"`
}

// stateEntry is one NCS address and the last time Agora listed it.
type stateEntry struct {
	Addr     netip.Addr `json:"addr"`
	LastSeen time.Time  `json:"last_seen"`
}

// addrs lists the state's addresses in order.
func (s *allowState) addrs() []netip.Addr {
	out := make([]netip.Addr, len(s.Entries))
	for i, e := range s.Entries {
		out[i] = e.Addr
	}
	return out
}

// stateFile reads and writes allowlist.json atomically.
type stateFile struct{ path string }

// load returns the persisted state, or nil if there is none yet.
func (f stateFile) load() (*allowState, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read allowlist state: %w", err)
	}
	var s allowState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode allowlist state %s: %w", f.path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("decode allowlist state %s: version %d, want %d", f.path, s.Version, stateVersion)
	}
	return &s, nil
}

// save writes the state so that a crash at any moment leaves either the old
// file or the new one, never a torn one: write a temporary file, fsync it,
// rename it over the old one, fsync the directory.
func (f stateFile) save(s *allowState) error {
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode allowlist state: %w", err)
	}
	return writeFileAtomic(f.path, append(b, '\n'), 0o640)
}

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
