package publish

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Failure reasons of a direct publish (label "reason").
const (
	reasonTimeout      = "timeout"
	reasonDisconnected = "disconnected"
	reasonNoStream     = "no_stream"
	reasonError        = "error"
	reasonHeld         = "stream_contract" // not attempted: see contract.go
)

// Rejection reasons of a spool write (label "reason").
const (
	rejectFull       = "full"
	rejectWriteError = "write_error"
)

// metrics holds the package's Prometheus collectors. Labelled children are
// resolved once so the publish path does no map look-ups.
type metrics struct {
	published       prometheus.Counter
	failures        map[string]prometheus.Counter
	duration        prometheus.Histogram
	connected       prometheus.Gauge
	disconnects     prometheus.Counter
	reconnects      prometheus.Counter
	spooled         prometheus.Counter
	forwarded       prometheus.Counter
	forwardFailures prometheus.Counter
	rejected        map[string]prometheus.Counter
	ignored         map[string]prometheus.Counter // answers on the publish inbox that end nothing (ack.go)
}

// newMetrics creates the collectors and registers them with reg (nil: not
// registered). The spool gauges read s when scraped.
func newMetrics(reg prometheus.Registerer, s *spool) *metrics {
	f := promauto.With(reg)
	failures := f.NewCounterVec(prometheus.CounterOpts{
		Name: "ncs_gateway_nats_publish_failures_total",
		Help: "Direct JetStream publishes that failed, by reason (timeout, disconnected, no_stream, error, stream_contract: not attempted because the stream breaks the contract); the message was then spooled or rejected.",
	}, []string{"reason"})
	rejected := f.NewCounterVec(prometheus.CounterOpts{
		Name: "ncs_gateway_spool_rejected_total",
		Help: "Messages neither JetStream nor the spool could take, by reason (full, write_error); the webhook answered 503.",
	}, []string{"reason"})
	ignored := f.NewCounterVec(prometheus.CounterOpts{
		Name: "ncs_gateway_nats_ignored_replies_total",
		Help: "Answers on the gateway's publish inbox that were not JetStream's acknowledgement and were ignored, by kind (error: API error JSON; message: a stored message; status: a status other than no responders; other). A reader who sees the notifications' reply subjects can make the server send them; a real JetStream error counts here too, and its publish then ends at the publish timeout.",
	}, []string{"kind"})
	m := &metrics{
		published: f.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_nats_published_total",
			Help: "Direct JetStream publishes acknowledged.",
		}),
		failures: map[string]prometheus.Counter{},
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "ncs_gateway_nats_publish_duration_seconds",
			Help:    "Duration of direct JetStream publishes that reached the network, acknowledgement included, successful or not.",
			Buckets: []float64{0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		connected: f.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_nats_connected",
			Help: "1 while the NATS connection is up, else 0.",
		}),
		disconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_nats_disconnects_total",
			Help: "NATS connection losses.",
		}),
		reconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_nats_reconnects_total",
			Help: "NATS reconnections after a loss.",
		}),
		spooled: f.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_spool_spooled_total",
			Help: "Messages written to the local spool because JetStream did not take them.",
		}),
		forwarded: f.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_spool_forwarded_total",
			Help: "Spooled messages acknowledged by JetStream and removed from the spool.",
		}),
		forwardFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_spool_forward_failures_total",
			Help: "Spooled messages whose republish failed; they stay spooled and are retried.",
		}),
		rejected: map[string]prometheus.Counter{},
		ignored:  map[string]prometheus.Counter{},
	}
	for _, r := range []string{reasonTimeout, reasonDisconnected, reasonNoStream, reasonError, reasonHeld} {
		m.failures[r] = failures.WithLabelValues(r)
	}
	for _, r := range []string{rejectFull, rejectWriteError} {
		m.rejected[r] = rejected.WithLabelValues(r)
	}
	for _, k := range ignoredKinds {
		m.ignored[k] = ignored.WithLabelValues(k)
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ncs_gateway_spool_depth",
		Help: "Messages waiting in the local spool.",
	}, func() float64 { return float64(s.stats().depth) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ncs_gateway_spool_bytes",
		Help: "Encoded bytes of the messages waiting in the local spool (what spool.max_bytes limits).",
	}, func() float64 { return float64(s.stats().bytes) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ncs_gateway_spool_oldest_age_seconds",
		Help: "Age of the oldest spooled message, 0 when the spool is empty.",
	}, func() float64 { return s.stats().oldestAge().Seconds() })
	return m
}
