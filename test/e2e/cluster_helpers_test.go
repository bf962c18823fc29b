package e2e

// Helpers of the cluster tests (cluster_test.go): three nats-server
// processes routed into one JetStream cluster on loopback, each of which a
// test can SIGKILL and start again on the same ports and store, and an HTTP
// transport that records the slowest answer. Names start with "cluster".

import (
	"context"
	"fmt"
	"net/http"
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

// clusterNode is one nats-server of a test cluster.
type clusterNode struct {
	t       testing.TB
	name    string // server_name, as stream_leader names it
	port    int
	cfgPath string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// natsCluster is three nats-servers with JetStream, routed to each other.
type natsCluster struct {
	t     testing.TB
	nodes []*clusterNode
}

// startNATSCluster writes the configs of a 3-node cluster on free loopback
// ports, starts every node and waits until JetStream has a meta leader.
func startNATSCluster(t testing.TB) *natsCluster {
	t.Helper()
	bin := faultsNATSServerBinary(t)
	dir := t.TempDir()
	c := &natsCluster{t: t}
	routePorts := []int{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range 3 {
		n := &clusterNode{
			t: t, name: fmt.Sprintf("n%d", i+1), port: freePort(t),
			cfgPath: filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1)),
			logPath: filepath.Join(dir, fmt.Sprintf("n%d.log", i+1)),
		}
		cfg := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
jetstream { store_dir: %q, max_memory_store: 64MB, max_file_store: 1GB }
cluster {
  name: ncs
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, n.name, n.port, filepath.Join(dir, n.name), routePorts[i], strings.Join(routes, ", "))
		if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
			if t.Failed() {
				t.Logf("%s log:\n%s", n.name, tail(readFileString(n.logPath), 15))
			}
		}
	})
	for _, n := range c.nodes {
		n.start(bin)
	}
	c.waitJetStream(60 * time.Second)
	return c
}

// urls is the nats.url of a gateway: every node, comma-separated.
func (c *natsCluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.url())
	}
	return strings.Join(u, ",")
}

// node returns the node called name.
func (c *natsCluster) node(name string) *clusterNode {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no cluster node %q", name)
	return nil
}

// waitJetStream waits until JetStream answers through the cluster (a meta
// leader is elected).
func (c *natsCluster) waitJetStream(d time.Duration) {
	c.t.Helper()
	waitFor(c.t, d, "the cluster's JetStream meta leader", func() bool { return jetStreamAnswers(c.urls()) })
}

// streamInfo looks the stream up through any live node; nil while it has
// no leader or no node answers.
func (c *natsCluster) streamInfo(stream string) *jetstream.StreamInfo {
	nc, err := nats.Connect(c.urls(), nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil
	}
	return s.CachedInfo()
}

// waitStreamCurrent waits until the stream has a leader and every replica
// is current, and returns the leader's name.
func (c *natsCluster) waitStreamCurrent(stream string, replicas int, d time.Duration) string {
	c.t.Helper()
	var leader string
	waitFor(c.t, d, fmt.Sprintf("stream %s led with %d current replicas", stream, replicas), func() bool {
		info := c.streamInfo(stream)
		if info == nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != replicas-1 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		leader = info.Cluster.Leader
		return true
	})
	return leader
}

func (n *clusterNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// start runs the node; it does not wait for JetStream (a lone node has no
// quorum): the cluster waits.
func (n *clusterNode) start(bin string) {
	n.t.Helper()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", n.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.t.Fatalf("start %s: %v", n.name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	waitFor(n.t, 20*time.Second, n.name+" accepting clients", func() bool {
		select {
		case err := <-done:
			done <- err
			n.t.Fatalf("%s exited at start: %v\n%s", n.name, err, tail(readFileString(n.logPath), 20))
		default:
		}
		nc, err := nats.Connect(n.url(), nats.Timeout(time.Second), nats.NoReconnect())
		if err != nil {
			return false
		}
		nc.Close()
		return true
	})
}

// kill sends SIGKILL and waits for the process to go; safe to repeat.
func (n *clusterNode) kill() {
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
		n.t.Errorf("%s (pid %d) still running 10 s after SIGKILL", n.name, cmd.Process.Pid)
	}
}

// slowestTransport wraps a transport and records the slowest round trip
// that ended in each window of time, so a test can report the slowest
// answer around a fault.
type slowestTransport struct {
	next http.RoundTripper

	mu    sync.Mutex
	trips []clusterTrip
}

// clusterTrip is one request's start and duration.
type clusterTrip struct {
	start time.Time
	took  time.Duration
	code  int // 0: transport error
}

func (s *slowestTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := s.next.RoundTrip(r)
	code := 0
	if err == nil {
		code = resp.StatusCode
	}
	s.mu.Lock()
	s.trips = append(s.trips, clusterTrip{start: start, took: time.Since(start), code: code})
	s.mu.Unlock()
	return resp, err
}

// slowest returns the slowest answered request that started in [from, to)
// and how many requests that was out of.
func (s *slowestTransport) slowest(from, to time.Time) (time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var worst time.Duration
	n := 0
	for _, tr := range s.trips {
		if tr.start.Before(from) || !tr.start.Before(to) || tr.code == 0 {
			continue
		}
		n++
		worst = max(worst, tr.took)
	}
	return worst, n
}

// clusterHTTPClient is faultsHTTPClient with a slowest-answer recorder.
func clusterHTTPClient() (*http.Client, *slowestTransport) {
	c := faultsHTTPClient()
	st := &slowestTransport{next: c.Transport}
	c.Transport = st
	return c, st
}

// clusterGateway starts a gateway publishing to the cluster with an R3
// stream and the daemon's default publish timeout (3 s), so the slowest
// answer measured is the one an operator gets.
func clusterGateway(t testing.TB, c *natsCluster) *gateway {
	t.Helper()
	g := newGateway(t, gatewayOptions{natsURL: c.urls()})
	g.base = strings.Replace(g.base, "  publish_timeout: 1s\n", "  publish_timeout: 3s\n  stream_replicas: 3\n", 1)
	g.writeConfig()
	g.start()
	return g
}

// clusterCreateStream creates a stream the way an operator would before
// the gateway starts, and returns it with a connection closed at cleanup.
func clusterCreateStream(ctx context.Context, t testing.TB, natsURL string, sc jetstream.StreamConfig) (jetstream.Stream, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, sc)
	if err != nil {
		t.Fatalf("create stream %s: %v", sc.Name, err)
	}
	return s, js
}

// clusterUpdateStream edits a stream as an operator would.
func clusterUpdateStream(ctx context.Context, t testing.TB, natsURL string, sc jetstream.StreamConfig) {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatalf("update stream %s: %v", sc.Name, err)
	}
}
