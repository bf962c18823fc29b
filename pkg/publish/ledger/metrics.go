package ledger

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values of the ledger's metrics; every one has a series from the start.
const (
	resultApplied   = "applied"
	resultDuplicate = "duplicate"
	resultIgnored   = "ignored"

	anomalyBadFileList    = "bad_file_list"
	anomalyFilesTruncated = "files_truncated"
	anomalyEncodedKey     = "encoded_key"
	anomalyUnknownEvent   = "unknown_event"
	anomalyNoStart        = "no_start"
	anomalyMalformed      = "malformed"

	opRead     = "read"
	opStore    = "store"
	opPublish  = "publish"
	opConsumer = "consumer"
)

type metrics struct {
	enabled   prometheus.Gauge
	sessions  *prometheus.GaugeVec
	completed *prometheus.CounterVec
	flagged   *prometheus.CounterVec
	lagMsgs   prometheus.Gauge
	lagSecs   prometheus.Gauge
	caughtUp  prometheus.Gauge
	events    *prometheus.CounterVec
	anomalies *prometheus.CounterVec
	errors    *prometheus.CounterVec
	conflicts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		enabled: f.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_ledger_enabled",
			Help: "1 when the session ledger runs (ledger.enabled), else 0.",
		}),
		sessions: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ncs_gateway_ledger_sessions",
			Help: "Session records in the bucket, by state (recording, exited).",
		}, []string{"state"}),
		completed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_ledger_completed_total",
			Help: "session.completed notifications this gateway stored in the stream, by outcome (ok, failed).",
		}, []string{"outcome"}),
		flagged: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_ledger_flagged_total",
			Help: "session.flagged notifications this gateway stored in the stream, by reason.",
		}, []string{"reason"}),
		lagMsgs: f.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_ledger_lag_messages",
			Help: "Notifications the ledger has not finished: its consumer's pending plus ack pending.",
		}),
		lagSecs: f.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_ledger_lag_seconds",
			Help: "Age of the oldest notification the ledger has not finished; 0 when caught up.",
		}),
		caughtUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_ledger_caught_up",
			Help: "1 while the ledger has finished every notification in the stream (time flags are raised only then), else 0.",
		}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_ledger_events_total",
			Help: "Notifications the ledger read, by result: applied (a new event of a session), duplicate (a resend or copy), ignored (not a Cloud Recording session).",
		}, []string{"result"}),
		anomalies: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_ledger_anomalies_total",
			Help: "Odd input the ledger handled, by kind: bad_file_list, files_truncated, encoded_key, unknown_event, no_start (an upload before any start), malformed (not JSON, or no sid).",
		}, []string{"kind"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_ledger_errors_total",
			Help: "NATS operations of the ledger that failed and will be retried, by op (read, store, publish, consumer).",
		}, []string{"op"}),
		conflicts: f.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_ledger_conflicts_total",
			Help: "Record writes retried because another writer changed the record first (compare-and-set).",
		}),
	}
	for _, s := range []string{StateRecording, StateExited} {
		m.sessions.WithLabelValues(s)
	}
	for _, o := range []string{OutcomeOK, OutcomeFailed} {
		m.completed.WithLabelValues(o)
	}
	for _, f := range AllFlags {
		m.flagged.WithLabelValues(f)
	}
	for _, r := range []string{resultApplied, resultDuplicate, resultIgnored} {
		m.events.WithLabelValues(r)
	}
	for _, k := range []string{anomalyBadFileList, anomalyFilesTruncated, anomalyEncodedKey, anomalyUnknownEvent, anomalyNoStart, anomalyMalformed} {
		m.anomalies.WithLabelValues(k)
	}
	for _, o := range []string{opRead, opStore, opPublish, opConsumer} {
		m.errors.WithLabelValues(o)
	}
	return m
}
