package webhook

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNATSDependency holds the seam: this package hands out a
// Notification and must not pull in NATS (client or server), directly or
// through another package of the module.
func TestNoNATSDependency(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages, want this package's whole tree: %s", len(deps), out)
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "github.com/nats-io/") || strings.HasSuffix(p, "/pkg/publish") {
			t.Errorf("got dependency %s, want no NATS package in pkg/webhook's tree", p)
		}
	}
}
