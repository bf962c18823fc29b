package e2e

// Helpers of the fault tests (faults_*_test.go): a nats-server process that
// can be killed with SIGKILL, a stream reader that counts message ids, and
// small readers of /status, /metrics and the JSON log (the load run is in
// faults_load_test.go). Names start with "faults" so they never collide with
// the other helpers of this package.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// faultsNATSBuild builds nats-server once per test process, next to the
// ncs-gateway binary, in the directory TestMain removes at the end.
var faultsNATSBuild struct {
	once sync.Once
	path string
	err  error
}

// faultsNATSServerBinary returns the path of a nats-server binary built from
// this module's go.sum.
func faultsNATSServerBinary(t testing.TB) string {
	t.Helper()
	faultsNATSBuild.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "nats-server")
		out, err := exec.Command("go", "build", "-o", path, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			faultsNATSBuild.err = fmt.Errorf("build nats-server: %w: %s", err, bytes.TrimSpace(out))
			return
		}
		faultsNATSBuild.path = path
	})
	if faultsNATSBuild.err != nil {
		t.Fatal(faultsNATSBuild.err)
	}
	return faultsNATSBuild.path
}

// faultsNATS is a nats-server process with JetStream on a fixed port and
// store, which a test can SIGKILL and start again. It is killed in Cleanup.
type faultsNATS struct {
	t       testing.TB
	bin     string
	port    int
	dir     string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// newFaultsNATS prepares a nats-server on a free loopback port; it does not
// start it, so a test can configure a gateway against a NATS that is down.
func newFaultsNATS(t testing.TB) *faultsNATS {
	t.Helper()
	dir := t.TempDir()
	n := &faultsNATS{
		t: t, bin: faultsNATSServerBinary(t), port: freePort(t),
		dir: filepath.Join(dir, "jetstream"), logPath: filepath.Join(dir, "nats-server.log"),
	}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			if b, err := os.ReadFile(n.logPath); err == nil {
				t.Logf("nats-server log:\n%s", tail(string(b), 30))
			}
		}
	})
	return n
}

func (n *faultsNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// start runs nats-server and waits until JetStream answers (after a kill,
// that includes recovering the store).
func (n *faultsNATS) start() {
	n.t.Helper()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(n.bin, "-js", "-sd", n.dir, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.t.Fatalf("start nats-server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	waitFor(n.t, 30*time.Second, "nats-server's JetStream", func() bool {
		select {
		case err := <-done:
			done <- err
			n.t.Fatalf("nats-server exited at start: %v\n%s", err, tail(readFileString(n.logPath), 20))
		default:
		}
		return jetStreamAnswers(n.url())
	})
}

// jetStreamAnswers reports whether JetStream at urls answers an account
// info request within a second (a cluster: once its meta leader is elected).
func jetStreamAnswers(urls string) bool {
	nc, err := nats.Connect(urls, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// kill sends SIGKILL (no flush, no shutdown) and waits for the process to go.
func (n *faultsNATS) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.t.Errorf("nats-server pid %d still running 10 s after SIGKILL", cmd.Process.Pid)
	}
}

func readFileString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// faultsStreamIDs reads the whole stream with an ordered consumer and counts
// the messages of each Nats-Msg-Id. Extra options (a dialer into a network
// namespace) go to the connection.
func faultsStreamIDs(t testing.TB, natsURL, stream string, opts ...nats.Option) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, info := openStream(ctx, t, natsURL, stream, opts...)
	want := info.State.Msgs
	seen := map[string]int{}
	if want == 0 {
		return seen
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer on %s: %v", stream, err)
	}
	// Right after a leader election (the cluster tests) a fetch can find
	// no responder for a moment; an ordered consumer resumes where it
	// stopped, so such an error is retried until the deadline and named if
	// it outlasts it.
	var got uint64
	var lastErr error
	for got < want {
		if ctx.Err() != nil {
			t.Fatalf("read stream %s: %d of %d messages after 60 s (last error: %v)", stream, got, want, lastErr)
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			lastErr = err
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond): // retry pause, not synchronisation
			}
			continue
		}
		n := 0
		for m := range batch.Messages() {
			seen[m.Headers().Get(jetstream.MsgIDHeader)]++
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			lastErr = err
		}
		got += uint64(n)
	}
	return seen
}

// faultsStatus is the part of the daemon's /status the fault tests read.
type faultsStatus struct {
	Allowlist struct {
		Addresses []string `json:"addresses"`
	} `json:"allowlist"`
	NATS struct {
		Connected  bool   `json:"connected"`
		ServerURL  string `json:"server_url"`
		SpoolDepth int64  `json:"spool_depth"`
		SpoolBytes int64  `json:"spool_bytes"`
	} `json:"nats"`
}

func faultsGetStatus(t testing.TB, g *gateway) faultsStatus {
	t.Helper()
	var st faultsStatus
	body := g.get("/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /status: %v\n%s", err, body)
	}
	return st
}

// faultsWaitDrained waits for spool_depth 0 with NATS connected and
// returns how long it took.
func faultsWaitDrained(t testing.TB, g *gateway, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, d, "the spool to drain (spool_depth 0 in /status)", func() bool {
		st := faultsGetStatus(t, g)
		return st.NATS.Connected && st.NATS.SpoolDepth == 0
	})
	return time.Since(start)
}

// faultsMetric returns the value of one series of a Prometheus text page,
// e.g. `ncs_gateway_refresh_failures_total{reason="fetch_timeout"}`, labels
// as the daemon prints them. An absent or unreadable series fails the test:
// read as 0, a renamed metric or a reason not created at start would pass
// every "went up" and "is 0" check unnoticed.
func faultsMetric(t testing.TB, page, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("metric %s: value %q: %v", series, rest, err)
		}
		return v
	}
	t.Fatalf("metric %s: no such series on /metrics:\n%s", series, grep(page, strings.SplitN(series, "{", 2)[0]))
	return 0
}

// faultsLogLines returns the JSON log lines whose "msg" contains msg and
// whose fields equal the given values (compared as printed).
func faultsLogLines(log, msg string, fields map[string]string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if s, _ := m["msg"].(string); !strings.Contains(s, msg) {
			continue
		}
		match := true
		for k, want := range fields {
			if got := fmt.Sprint(m[k]); got != want {
				match = false
				break
			}
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

// faultsNSDialer dials NATS (or anything) from a function that runs inside
// a network namespace; see faults_*_linux_test.go.
type faultsNSDialer struct {
	dial func(network, address string) (net.Conn, error)
}

func (d faultsNSDialer) Dial(network, address string) (net.Conn, error) {
	return d.dial(network, address)
}
