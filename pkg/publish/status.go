package publish

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// statusStreamTimeout bounds the stream look-up of Status, so the admin
// endpoint answers quickly when NATS is slow.
const statusStreamTimeout = time.Second

// Status is a snapshot of the publisher for the admin endpoint.
type Status struct {
	Connected bool   `json:"connected"`
	ServerURL string `json:"server_url"` // without credentials
	// ConnectedServer and ConnectedCluster name the nats-server the
	// gateway is connected to, as the server reports them.
	ConnectedServer  string `json:"connected_server,omitempty"`
	ConnectedCluster string `json:"connected_cluster,omitempty"`
	Stream           string `json:"stream"`
	// StreamMessages and StreamBytes are read from JetStream when connected;
	// StreamError says why they are missing otherwise.
	StreamMessages uint64 `json:"stream_messages"`
	StreamBytes    uint64 `json:"stream_bytes"`
	StreamError    string `json:"stream_error,omitempty"`
	// StreamLeader is the server leading the stream's replicas (empty
	// outside a cluster, or while an election is going on), and
	// StreamPeers every server holding a replica, the leader first.
	StreamLeader string       `json:"stream_leader,omitempty"`
	StreamPeers  []StreamPeer `json:"stream_peers,omitempty"`
	// StreamProblems are the ways the stream breaks the contract, from the
	// last look at it; Holding is true when one of them makes the gateway
	// spool every notification instead of publishing it.
	StreamProblems []StreamProblem `json:"stream_problems,omitempty"`
	Holding        bool            `json:"holding"`

	SpoolDepth    int64 `json:"spool_depth"`
	SpoolBytes    int64 `json:"spool_bytes"`
	SpoolMaxBytes int64 `json:"spool_max_bytes"`
	// OldestSpooledAgeSeconds is how long the oldest spooled message has waited.
	OldestSpooledAgeSeconds float64 `json:"oldest_spooled_age_seconds"`
}

// StreamPeer is one server holding a replica of the stream.
type StreamPeer struct {
	Name   string `json:"name"`
	Leader bool   `json:"leader"`
	// Current is true when the replica is up to date with the leader (the
	// leader always is).
	Current bool `json:"current"`
	Offline bool `json:"offline,omitempty"`
	// Lag is how many operations the replica is behind the leader.
	Lag uint64 `json:"lag,omitempty"`
	// ActiveSeconds is how long ago the leader last heard from it.
	ActiveSeconds float64 `json:"active_seconds,omitempty"`
}

// Status reports the connection, the stream and the spool. The stream
// look-up is bounded by a short timeout and ctx; it also refreshes the
// contract check, so -status shows a fix at once.
func (p *Publisher) Status(ctx context.Context) Status {
	st := p.spool.stats()
	s := Status{
		Connected:               p.nc.IsConnected(),
		ServerURL:               p.serverURL,
		Stream:                  p.cfg.Stream,
		Holding:                 p.holding(),
		SpoolDepth:              st.depth,
		SpoolBytes:              st.bytes,
		SpoolMaxBytes:           p.cfg.SpoolMaxBytes,
		OldestSpooledAgeSeconds: st.oldestAge().Seconds(),
	}
	s.StreamProblems, _ = p.streamSnapshot()
	if !s.Connected {
		s.StreamError = "nats not connected"
		return s
	}
	if u := p.nc.ConnectedUrl(); u != "" && p.cfg.Embedded == nil {
		s.ServerURL = redactURLs(u)
	}
	s.ConnectedServer = p.nc.ConnectedServerName()
	s.ConnectedCluster = p.nc.ConnectedClusterName()
	ctx, cancel := context.WithTimeout(ctx, statusStreamTimeout)
	defer cancel()
	stream, err := p.js.Stream(ctx, p.cfg.Stream)
	if err != nil {
		s.StreamError = err.Error()
		return s
	}
	info := stream.CachedInfo()
	p.observeStream(info)
	s.StreamProblems, _ = p.streamSnapshot()
	s.Holding = p.holding()
	s.StreamMessages = info.State.Msgs
	s.StreamBytes = info.State.Bytes
	s.StreamLeader, s.StreamPeers = streamPeers(info.Cluster)
	return s
}

// streamPeers lists the leader and the replicas of a clustered stream.
func streamPeers(ci *jetstream.ClusterInfo) (string, []StreamPeer) {
	if ci == nil || (ci.Leader == "" && len(ci.Replicas) == 0) {
		return "", nil
	}
	var peers []StreamPeer
	if ci.Leader != "" {
		peers = append(peers, StreamPeer{Name: ci.Leader, Leader: true, Current: true})
	}
	for _, r := range ci.Replicas {
		if r == nil {
			continue
		}
		peers = append(peers, StreamPeer{
			Name: r.Name, Current: r.Current, Offline: r.Offline, Lag: r.Lag,
			ActiveSeconds: r.Active.Seconds(),
		})
	}
	return ci.Leader, peers
}

// streamMetrics are the stream and server gauges: the contract problems
// (set at each look at the stream) and, read when scraped, the connected
// server and the replicas of the last look.
type streamMetrics struct {
	problem map[string]prometheus.Gauge
}

var (
	serverInfoDesc = prometheus.NewDesc("ncs_gateway_nats_server_info",
		"1 for the nats-server the gateway is connected to (absent while disconnected).",
		[]string{"server_name", "cluster"}, nil)
	peerCurrentDesc = prometheus.NewDesc("ncs_gateway_nats_stream_peer_current",
		"Replicas of the stream at the last look (every 10 to 30 s): 1 when up to date with the leader; role is leader or replica.",
		[]string{"peer", "role"}, nil)
)

// newStreamMetrics creates the gauges and registers them, and a collector
// reading p when scraped, with reg (nil: not registered).
func newStreamMetrics(reg prometheus.Registerer, p *Publisher) *streamMetrics {
	f := promauto.With(reg)
	vec := f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ncs_gateway_nats_stream_contract_problem",
		Help: "1 while the stream breaks the contract in this way (subjects, duplicate_window, replicas, max_age, discard_new, max_msgs_per_subject, not_writable); see -status for the fix.",
	}, []string{"problem"})
	m := &streamMetrics{problem: map[string]prometheus.Gauge{}}
	for _, name := range contractProblems {
		m.problem[name] = vec.WithLabelValues(name)
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ncs_gateway_nats_stream_holding",
		Help: "1 while the stream breaks the contract in a way that would lose notifications, so every notification is held in the spool.",
	}, func() float64 {
		if p.holding() {
			return 1
		}
		return 0
	})
	if reg != nil {
		reg.MustRegister(peerCollector{p})
	}
	return m
}

// peerCollector exports the connected server and the stream's replicas
// without a network call at scrape time.
type peerCollector struct{ p *Publisher }

func (c peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- serverInfoDesc
	ch <- peerCurrentDesc
}

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	nc := c.p.nc
	if nc != nil && nc.IsConnected() {
		ch <- prometheus.MustNewConstMetric(serverInfoDesc, prometheus.GaugeValue, 1,
			nc.ConnectedServerName(), nc.ConnectedClusterName())
	}
	_, ci := c.p.streamSnapshot()
	_, peers := streamPeers(ci)
	for _, pe := range peers {
		role, v := "replica", 0.0
		if pe.Leader {
			role = "leader"
		}
		if pe.Current {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(peerCurrentDesc, prometheus.GaugeValue, v, pe.Name, role)
	}
}

// StreamProblems returns the stream's contract problems from the last look
// at it, without a network call (for /readyz).
func (p *Publisher) StreamProblems() []StreamProblem {
	problems, _ := p.streamSnapshot()
	return problems
}
