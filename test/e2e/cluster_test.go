package e2e

// The scale-out path: two gateways publishing to one R3 stream on a 3-node
// nats-server cluster (cluster_helpers_test.go), and a stream that breaks
// the gateway's contract. Each cluster test ends by counting every 200 in
// the stream exactly once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const clusterStream = "AGORA_NCS"

// TestClusterCrossGatewayDedup: the same notifications reach both gateways,
// and each gateway twice, every attempt re-signed with a new notifyMs as
// Agora does on a retry. Every attempt is answered 200 and the stream holds
// each notification once. /status, -status and /metrics show the cluster.
func TestClusterCrossGatewayDedup(t *testing.T) {
	c := startNATSCluster(t)
	g1, g2 := clusterGateway(t, c), clusterGateway(t, c)
	leader := c.waitStreamCurrent(clusterStream, 3, 60*time.Second)

	const n = 40
	base := time.Now().UnixMilli()
	for i := range n {
		id := fmt.Sprintf("dedup-%03d", i)
		var last []byte
		for attempt, g := range []*gateway{g1, g2, g1, g2} {
			body := notification(id, base+int64(i*10+attempt+1))
			if bytes.Equal(body, last) {
				t.Fatalf("attempt %d of %s: body not re-signed", attempt, id)
			}
			last = body
			if code, ans := g.post(testSecret, body); code != http.StatusOK {
				t.Fatalf("attempt %d of %s: got %d %s, want 200", attempt, id, code, ans)
			}
		}
	}
	seen := faultsStreamIDs(t, c.urls(), clusterStream)
	for i := range n {
		if id := fmt.Sprintf("dedup-%03d", i); seen[id] != 1 {
			t.Errorf("%s: in the stream %d times, want 1 (4 attempts through 2 gateways)", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("stream ids: got %d, want %d", len(seen), n)
	}

	st := clusterGetStatus(t, g1)
	if !slices.Contains([]string{"n1", "n2", "n3"}, st.NATS.ConnectedServer) || st.NATS.ConnectedCluster != "ncs" {
		t.Errorf("/status connected server: got %q in %q, want n1..n3 in ncs", st.NATS.ConnectedServer, st.NATS.ConnectedCluster)
	}
	if st.NATS.StreamLeader != leader || len(st.NATS.StreamPeers) != 3 {
		t.Errorf("/status stream: got leader %q, %d peers, want %q and 3", st.NATS.StreamLeader, len(st.NATS.StreamPeers), leader)
	}
	for _, p := range st.NATS.StreamPeers {
		if !p.Current {
			t.Errorf("/status peer %s: got current false, want true", p.Name)
		}
	}
	out, _, code := g1.run("-status")
	if code != 0 || !strings.Contains(out, "leader: "+leader) || !strings.Contains(out, "in cluster ncs") {
		t.Errorf("-status (exit %d): want the cluster, the leader %s and its replicas:\n%s", code, leader, out)
	}
	m := g1.get("/metrics")
	if v := faultsMetric(t, m, fmt.Sprintf(`ncs_gateway_nats_server_info{cluster="ncs",server_name=%q}`, st.NATS.ConnectedServer)); v != 1 {
		t.Errorf("ncs_gateway_nats_server_info of %s: got %v, want 1", st.NATS.ConnectedServer, v)
	}
	if v := faultsMetric(t, m, fmt.Sprintf(`ncs_gateway_nats_stream_peer_current{peer=%q,role="leader"}`, leader)); v != 1 {
		t.Errorf("ncs_gateway_nats_stream_peer_current of the leader %s: got %v, want 1", leader, v)
	}
}

// TestClusterLeaderKilledMidLoad: the stream leader is SIGKILLed while both
// gateways are under load, and started again later. Every request is
// answered 200 and every 200 is in the stream exactly once. The slowest
// answer around the kill is logged (a figure, not an assertion).
func TestClusterLeaderKilledMidLoad(t *testing.T) {
	c := startNATSCluster(t)
	g1, g2 := clusterGateway(t, c), clusterGateway(t, c)
	leader := c.waitStreamCurrent(clusterStream, 3, 60*time.Second)
	client1, rec1 := clusterHTTPClient()
	client2, rec2 := clusterHTTPClient()
	o := faultsLoadOptions{workers: 4}
	l1 := startFaultsLoad(t, client1, g1.webhook, "leader1", o)
	l2 := startFaultsLoad(t, client2, g2.webhook, "leader2", o)
	on1, on2 := clusterGetStatus(t, g1).NATS.ConnectedServer, clusterGetStatus(t, g2).NATS.ConnectedServer
	l1.waitCount("200 published", 100, 30*time.Second)
	l2.waitCount("200 published", 100, 30*time.Second)

	killedAt := time.Now()
	c.node(leader).kill()
	t.Logf("stream leader %s killed (SIGKILL) after %s / %s", leader, l1.summary(), l2.summary())
	waitFor(t, 30*time.Second, "a new stream leader", func() bool {
		info := c.streamInfo(clusterStream)
		return info != nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader
	})
	t.Logf("new leader after %s", time.Since(killedAt).Round(time.Millisecond))
	p1, p2 := l1.count("200 published"), l2.count("200 published")
	l1.waitCount("200 published", p1+100, 30*time.Second)
	l2.waitCount("200 published", p2+100, 30*time.Second)

	c.node(leader).start(faultsNATSServerBinary(t))
	c.waitStreamCurrent(clusterStream, 3, 60*time.Second)
	l1.stop()
	l2.stop()
	for i, rec := range []*slowestTransport{rec1, rec2} {
		worst, n := rec.slowest(killedAt.Add(-time.Second), killedAt.Add(10*time.Second))
		t.Logf("gateway %d (connected to %s): slowest answer of the %d requests started from 1 s before to 10 s after the kill: %s",
			i+1, []string{on1, on2}[i], n, worst.Round(time.Millisecond))
	}
	t.Logf("load stopped: %s / %s", l1.summary(), l2.summary())
	for i, g := range []*gateway{g1, g2} {
		m := g.get("/metrics")
		var parts []string
		for _, r := range []string{"timeout", "disconnected", "no_stream", "error"} {
			parts = append(parts, fmt.Sprintf("%s %v", r, faultsMetric(t, m, `ncs_gateway_nats_publish_failures_total{reason="`+r+`"}`)))
		}
		t.Logf("gateway %d publish failures: %s", i+1, strings.Join(parts, ", "))
	}

	clusterCheckAll(t, c, []*gateway{g1, g2}, []*faultsLoad{l1, l2}, true)
}

// TestClusterGatewayKilledMidLoad: one gateway is SIGKILLed under load; the
// other answers 200 throughout. The killed one is started again and drains
// what it had spooled. Every 200 of both is in the stream exactly once.
func TestClusterGatewayKilledMidLoad(t *testing.T) {
	c := startNATSCluster(t)
	g1, g2 := clusterGateway(t, c), clusterGateway(t, c)
	c.waitStreamCurrent(clusterStream, 3, 60*time.Second)
	client, _ := clusterHTTPClient()
	o := faultsLoadOptions{workers: 4}
	l1 := startFaultsLoad(t, client, g1.webhook, "gwkill1", o)
	l2 := startFaultsLoad(t, client, g2.webhook, "gwkill2", o)
	l1.waitCount("200 published", 100, 30*time.Second)
	l2.waitCount("200 published", 100, 30*time.Second)

	g1.kill()
	t.Logf("gateway 1 killed (SIGKILL) after %s", l1.summary())
	p2 := l2.count("200 published")
	l2.waitCount("200 published", p2+200, 30*time.Second)
	l1.stop()
	l2.stop()
	if n := l2.ackedCount(); int64(n) != l2.sent.Load() {
		t.Errorf("gateway 2 answered 200 to %d of %d posts, want all: %s", n, l2.sent.Load(), l2.summary())
	}
	t.Logf("load stopped: %s / %s", l1.summary(), l2.summary())

	g1.start()
	clusterCheckAll(t, c, []*gateway{g1, g2}, []*faultsLoad{l1, l2}, false)
}

// clusterCheckAll waits until every gateway's spool is drained, then checks
// each load's answers against the stream. With allOK, every post must
// also have been answered 200.
func clusterCheckAll(t *testing.T, c *natsCluster, gws []*gateway, loads []*faultsLoad, allOK bool) {
	t.Helper()
	for _, g := range gws {
		faultsWaitDrained(t, g, 60*time.Second)
	}
	seen := faultsStreamIDs(t, c.urls(), clusterStream)
	for _, l := range loads {
		if allOK && int64(l.ackedCount()) != l.sent.Load() {
			t.Errorf("answered 200: got %d of %d posts, want all: %s", l.ackedCount(), l.sent.Load(), l.summary())
		}
		l.check(t, seen)
	}
}

// clusterStatus is the part of /status the cluster tests read.
type clusterStatus struct {
	Ready    bool     `json:"ready"`
	NotReady []string `json:"not_ready"`
	NATS     struct {
		Connected        bool   `json:"connected"`
		ConnectedServer  string `json:"connected_server"`
		ConnectedCluster string `json:"connected_cluster"`
		StreamLeader     string `json:"stream_leader"`
		StreamPeers      []struct {
			Name    string `json:"name"`
			Leader  bool   `json:"leader"`
			Current bool   `json:"current"`
		} `json:"stream_peers"`
		StreamProblems []struct {
			Problem string `json:"problem"`
			Hold    bool   `json:"hold"`
			Detail  string `json:"detail"`
		} `json:"stream_problems"`
		Holding    bool  `json:"holding"`
		SpoolDepth int64 `json:"spool_depth"`
	} `json:"nats"`
}

func clusterGetStatus(t testing.TB, g *gateway) clusterStatus {
	t.Helper()
	var st clusterStatus
	body := g.get("/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /status: %v\n%s", err, body)
	}
	return st
}

// TestStreamBreakingContractIsHeldAndReported: a stream created beforehand
// with subjects other.> and a 1-minute duplicate window (issue 10). The
// gateway leaves it unchanged, answers 200 and holds every notification in
// its spool, and says exactly what is wrong in /status, -status, /readyz
// and /metrics. Once the operator fixes the stream, the spool drains.
func TestStreamBreakingContractIsHeldAndReported(t *testing.T) {
	ns := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _ := clusterCreateStream(ctx, t, ns.url(), jetstream.StreamConfig{
		Name: clusterStream, Subjects: []string{"other.>"}, Duplicates: time.Minute, Storage: jetstream.FileStorage,
	})
	g := newGateway(t, gatewayOptions{natsURL: ns.url()})
	g.start()
	for i := range 3 {
		code, ans := g.post(testSecret, notification(fmt.Sprintf("held-%d", i), time.Now().UnixMilli()))
		if code != http.StatusOK || !strings.Contains(ans, `"spooled"`) {
			t.Fatalf("post %d: got %d %s, want 200 spooled", i, code, ans)
		}
	}

	st := clusterGetStatus(t, g)
	var names []string
	for _, p := range st.NATS.StreamProblems {
		names = append(names, p.Problem)
	}
	if !st.NATS.Holding || !slices.Equal(names, []string{"subjects", "duplicate_window"}) || st.NATS.SpoolDepth != 3 {
		t.Errorf("/status: got holding %t, problems %v, spool depth %d; want true, [subjects duplicate_window], 3",
			st.NATS.Holding, names, st.NATS.SpoolDepth)
	}
	if !st.Ready {
		t.Errorf("/status ready: got false (%v), want true: the spool takes every notification", st.NotReady)
	}
	resp, err := g.client.Get(g.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var rz struct {
		Degraded []string `json:"degraded"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&rz)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(rz.Degraded) != 2 || !strings.Contains(rz.Degraded[0], "agora.ncs.>") {
		t.Errorf("/readyz: got %d, degraded %q; want 200 naming both problems and the subjects to add", resp.StatusCode, rz.Degraded)
	}
	out, _, _ := g.run("-status")
	if !strings.Contains(out, "STREAM PROBLEM subjects (HOLDING") || !strings.Contains(out, "--dupe-window 2h") {
		t.Errorf("-status: want both problems with their fix:\n%s", out)
	}
	m := g.get("/metrics")
	for series, want := range map[string]float64{
		`ncs_gateway_nats_stream_contract_problem{problem="subjects"}`:         1,
		`ncs_gateway_nats_stream_contract_problem{problem="duplicate_window"}`: 1,
		`ncs_gateway_nats_stream_contract_problem{problem="replicas"}`:         0,
		`ncs_gateway_nats_stream_holding`:                                      1,
	} {
		if v := faultsMetric(t, m, series); v != want || !strings.Contains(m, series+" ") {
			t.Errorf("%s: got %v, want %v", series, v, want)
		}
	}
	if info, err := s.Info(ctx); err != nil || !slices.Equal(info.Config.Subjects, []string{"other.>"}) || info.Config.Duplicates != time.Minute {
		t.Fatalf("stream after start: got %+v (%v), want it unchanged", info, err)
	}

	// The operator edits the stream as -status says; the gateway sees it.
	fixed := s.CachedInfo().Config
	fixed.Subjects = []string{"other.>", "agora.ncs.>"}
	fixed.Duplicates = 2 * time.Hour
	clusterUpdateStream(ctx, t, ns.url(), fixed)
	faultsWaitDrained(t, g, 30*time.Second)
	seen := faultsStreamIDs(t, ns.url(), clusterStream)
	for i := range 3 {
		if id := fmt.Sprintf("held-%d", i); seen[id] != 1 {
			t.Errorf("%s: in the stream %d times, want 1", id, seen[id])
		}
	}
	if st := clusterGetStatus(t, g); st.NATS.Holding || len(st.NATS.StreamProblems) != 0 {
		t.Errorf("/status after the fix: got holding %t, problems %v; want false, none", st.NATS.Holding, st.NATS.StreamProblems)
	}
}

// TestClusterConfigChecks: configs/cluster.yaml, the README's scale-out
// example, passes -check-config with its secrets in the environment and its
// certificate files in place, and names each file when it is missing (the
// daemon would not start without them).
func TestClusterConfigChecks(t *testing.T) {
	env := append(os.Environ(), "NCS_GATEWAY_WEBHOOK_SECRETS="+testSecret,
		"NCS_GATEWAY_CUSTOMER_ID=id", "NCS_GATEWAY_CUSTOMER_SECRET=secret")
	check := func(env []string) (string, error) {
		cmd := exec.Command(binary, "-config", "../../configs/cluster.yaml", "-check-config")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := check(env)
	if err == nil || !strings.Contains(out, "webhook.tls_cert_file") || !strings.Contains(out, "nats.tls_ca_file") {
		t.Errorf("-check-config configs/cluster.yaml without its certificates: got %v:\n%s\nwant a refusal naming webhook.tls_cert_file and nats.tls_ca_file", err, out)
	}
	dir := t.TempDir()
	pair := newTLSPair(t, "gateway.example.internal")
	files := map[string][]byte{"fullchain.pem": pair.cert, "privkey.pem": pair.key, "ca.pem": pair.cert}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env = append(env,
		"NCS_GATEWAY_WEBHOOK_TLS_CERT_FILE="+filepath.Join(dir, "fullchain.pem"),
		"NCS_GATEWAY_WEBHOOK_TLS_KEY_FILE="+filepath.Join(dir, "privkey.pem"),
		"NCS_GATEWAY_NATS_TLS_CA_FILE="+filepath.Join(dir, "ca.pem"))
	if out, err := check(env); err != nil || !strings.Contains(out, "ok") {
		t.Errorf("-check-config configs/cluster.yaml: got %v:\n%s\nwant ok", err, out)
	}
}
