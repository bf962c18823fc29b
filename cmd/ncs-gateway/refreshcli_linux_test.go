package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// TestLocalRefreshKeepsStateDirOwnership: with no daemon running, a root
// -refresh leaves every file it creates owned like state_dir, so the
// service user's daemon can still read and replace them.
func TestLocalRefreshKeepsStateDirOwnership(t *testing.T) {
	testenv.RequireRoot(t)
	const uid, gid = 65534, 65534 // nobody:nogroup, the service user here
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	path := oneShotConfig(t, dir, "198.51.100.1")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-config", path, "-refresh", "-force"}, &out, &errb,
		env("NCS_GATEWAY_CUSTOMER_ID", "id", "NCS_GATEWAY_CUSTOMER_SECRET", "secret", "NCS_GATEWAY_WEBHOOK_SECRETS", "s"))
	if err != nil {
		t.Fatalf("-refresh: %v\n%s", err, errb.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("state_dir is empty, want allowlist.json")
	}
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: got owner %d:%d, want %d:%d (state_dir's)", e.Name(), st.Uid, st.Gid, uid, gid)
		}
		if e.Name() == "allowlist.json" && fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: got mode %v, want 0640", e.Name(), fi.Mode().Perm())
		}
	}
}
