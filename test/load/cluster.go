package main

// The third NATS setup: a 3-node nats-server cluster on loopback with the
// stream at 3 replicas, measured like the others (minimal receiver and
// gateway against the same cluster), then once more with the stream
// leader SIGKILLed in the middle of the window.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const setupCluster = "3-node nats-server cluster (R3 stream, default sync)"

// targetLeaderKill names the gateway's cell with a leader SIGKILL.
const targetLeaderKill = "gateway, stream leader SIGKILLed"

// natsCluster is the three nodes; host is the one whose CPU the report
// counts (node 1: one of three, so "NATS CPU" is a third of the cluster's).
type natsCluster struct {
	nodes []*natsHost
	names []string
	host  *natsHost
	url   string // every node, comma-separated (nats.url of the gateway)
}

// startNATSCluster starts three routed nodes with JetStream and creates
// the stream at 3 replicas with the gateway's settings, so the minimal
// receiver and the gateway find it.
func (l *launcher) startNATSCluster(ctx context.Context, dir string) (*natsCluster, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	var routes []string
	for i := range 3 {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(ports[3+i]))
	}
	c := &natsCluster{}
	var urls []string
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		conf := fmt.Sprintf("server_name: %s\nlisten: \"127.0.0.1:%d\"\njetstream { store_dir: %q }\ncluster { name: load, listen: \"127.0.0.1:%d\", routes: [%s] }\n",
			name, ports[i], filepath.Join(dir, name), ports[3+i], strings.Join(routes, ", "))
		path := filepath.Join(dir, name+".conf")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create cluster dir: %w", err)
		}
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		p, err := l.start("nats-server "+name, []string{l.bins.natsServer, "-c", path}, nil)
		if err != nil {
			return nil, err
		}
		url := "nats://127.0.0.1:" + strconv.Itoa(ports[i])
		c.nodes = append(c.nodes, &natsHost{proc: p, url: url})
		c.names = append(c.names, name)
		urls = append(urls, url)
	}
	c.host, c.url = c.nodes[0], strings.Join(urls, ",")
	if err := waitReady(ctx, c.host.proc, readyTimeout, "the cluster's JetStream", func() bool { return jetStreamUp(ctx, c.url) }); err != nil {
		return nil, err
	}
	if err := createR3Stream(ctx, c.url); err != nil {
		return nil, err
	}
	return c, nil
}

// createR3Stream creates the stream as the gateway would with
// nats.stream_replicas: 3, retrying while the cluster settles.
func createR3Stream(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("connect cluster: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("create jetstream context: %w", err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.CreateStream(cctx, jetstream.StreamConfig{
			Name: streamName, Subjects: []string{streamSubjects}, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			MaxAge: streamMaxAge, Duplicates: streamDuplicates, Replicas: 3,
		})
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 500*time.Millisecond, nil) {
			return fmt.Errorf("create R3 stream %s: %w", streamName, err)
		}
	}
}

// leader returns the index of the node leading the stream.
func (c *natsCluster) leader(ctx context.Context) (int, error) {
	nc, err := nats.Connect(c.url, nats.Timeout(2*time.Second))
	if err != nil {
		return 0, fmt.Errorf("connect cluster: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return 0, fmt.Errorf("look up stream: %w", err)
	}
	if ci := s.CachedInfo().Cluster; ci != nil {
		for i, n := range c.names {
			if n == ci.Leader {
				return i, nil
			}
		}
	}
	return 0, errors.New("stream has no leader")
}

// runCluster: echo; the minimal receiver and the gateway against the
// cluster; then the gateway again while the stream leader is SIGKILLed a
// third into the window. The killed node is not restarted: the two others
// keep the quorum, and the cell ends with the stream count.
func (s *suite) runCluster(ctx context.Context, dir string, c int) error {
	setup := setupCluster
	if err := s.runEcho(ctx, setup, c); err != nil {
		return err
	}
	cl, err := s.l.startNATSCluster(ctx, filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	minimal, err := s.l.startMinimal(ctx, cl.url)
	if err != nil {
		return err
	}
	gw, err := s.l.startGateway(ctx, gatewayOptions{natsURL: cl.url, stateDir: filepath.Join(dir, "gateway"), logLevel: "warn", replicas: 3})
	if err != nil {
		return err
	}
	if problems, err := contractProblems(ctx, gw.admin); err != nil || problems != "" {
		return fmt.Errorf("the gateway (stream_replicas: 3) finds the R3 stream breaks its contract: %s%v", problems, err)
	}
	minSent, gwSent, err := s.runPair(ctx, setup, c, minimal, cl.host, gw.target, cl.host)
	if err != nil {
		return err
	}
	sent := minSent + gwSent
	if err := minimal.stop(); err != nil {
		return err
	}
	li, err := cl.leader(ctx)
	if err != nil {
		return err
	}
	victim := cl.nodes[li].proc
	killAfter := s.cfg.warmup + s.cfg.duration/3
	timer := time.AfterFunc(killAfter, func() { _ = victim.cmd.Process.Signal(syscall.SIGKILL) })
	host := cl.nodes[(li+1)%3]
	m, err := s.measure(ctx, setup, targetLeaderKill, gw.target, host, c, s.cfg.duration)
	timer.Stop()
	s.l.drop(victim) // killed on purpose: its exit is no error
	if err != nil {
		return err
	}
	s.rows = append(s.rows, row{setup: setup, target: targetLeaderKill, c: c, m: m, natsSeparate: true})
	r := m.res
	rate := 0.0
	if r.Sent > 0 {
		rate = 100 * float64(r.OK) / float64(r.Sent)
	}
	note := fmt.Sprintf("minimal + gateway + leader-kill run: leader %s SIGKILLed %s into the run; 200s %d of %d sent (%.2f%%), %d spooled, slowest 200 %.0f ms",
		cl.names[li], killAfter, r.OK, r.Sent, rate, r.Spooled, millis(r.Latency.Max))
	fmt.Fprintf(s.progress, "%s  cluster       c=%-3d %s\n", time.Now().Format("15:04:05"), c, note)
	problems, err := contractProblems(ctx, gw.admin)
	switch {
	case err != nil:
		note += fmt.Sprintf("; stream contract UNKNOWN after the kill: %v", err)
	case problems != "":
		note += "; stream contract PROBLEM after the kill: " + problems
	default:
		note += "; stream contract ok (stream_replicas: 3)"
	}
	sent += uint64(r.OK)
	// The gateway keeps running while the count is checked: what it
	// spooled at the kill is forwarded meanwhile.
	s.checkStream(ctx, setup, c, cl.url, sent, note)
	return gw.stop()
}

// contractProblem is the gateway's gauge of the stream's contract problems.
const contractProblem = "ncs_gateway_nats_stream_contract_problem"

// contractProblems scrapes the gateway's contract gauges and returns the
// series at 1 (empty: the stream fits its configuration), or an error when
// the gauges cannot be read.
func contractProblems(ctx context.Context, adminURL string) (string, error) {
	m, err := scrapeMetrics(ctx, adminURL)
	if err != nil {
		return "", err
	}
	if _, err := m.need(contractProblem); err != nil {
		return "", err
	}
	var bad []string
	for k, v := range m {
		if strings.HasPrefix(k, contractProblem+"{") && v != 0 {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	return strings.Join(bad, ", "), nil
}
