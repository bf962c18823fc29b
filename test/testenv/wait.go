package testenv

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// HTTPTimeout bounds one whole HTTP exchange in the tests (dial, request,
// answer and body): longer than any answer the daemon is meant to take, far
// shorter than the suite's limit, so a wedged server fails the one test.
const HTTPTimeout = 10 * time.Second

// HTTPClient returns a client whose every call gives up after timeout. It
// never uses a proxy from the environment: the tests talk to loopback and
// to addresses inside network namespaces they made.
func HTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &http.Client{Timeout: timeout, Transport: tr}
}

// Poll calls cond every interval until it reports done or timeout has
// passed, and returns whether it did and the last reason it gave. cond is
// called at least once, and once more at the deadline, on the caller's
// goroutine (so it may call t.Fatal); it must bound its own calls (an HTTP
// client with a timeout, a context) or Poll cannot bound the wait.
func Poll(timeout, interval time.Duration, cond func() (done bool, reason string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		done, reason := cond()
		if done {
			return true, reason
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, reason
		}
		// A poll interval, not a synchronisation: the condition is
		// checked again, and the deadline bounds the whole wait.
		time.Sleep(min(interval, left))
	}
}

// Eventually waits as Poll does and fails the test, naming how long it
// waited and cond's last reason, if cond is not done within timeout.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() (done bool, reason string)) {
	t.Helper()
	if done, reason := Poll(timeout, interval, cond); !done {
		t.Fatalf("%s", timeoutMessage(timeout, reason))
	}
}

func timeoutMessage(timeout time.Duration, reason string) string {
	return fmt.Sprintf("timed out after %s: %s", timeout, reason)
}
