// Package testenv decides whether a test that needs the real kernel (root,
// network namespaces, nft, iptables) can run here, and makes a missing
// prerequisite a failure instead of a skip when NCS_GATEWAY_TEST_STRICT=1,
// which CI sets so nothing is silently left untested.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// StrictEnv is the environment variable that turns skips into failures.
const StrictEnv = "NCS_GATEWAY_TEST_STRICT"

// Strict reports whether missing prerequisites must fail the test.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// SkipOrFail skips the test with the reason, or fails it in strict mode.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("prerequisite missing ("+StrictEnv+"=1 forbids skipping): "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips (or fails in strict mode) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root for network namespaces and netfilter (euid %d)", os.Geteuid())
	}
}

// RequireTools skips (or fails in strict mode) unless every named binary is on PATH.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			SkipOrFail(t, "needs %s on PATH: %v", tool, err)
		}
	}
}
