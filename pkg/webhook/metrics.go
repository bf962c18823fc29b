package webhook

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons, the values of the rejected_total reason label.
const (
	reasonMissingSignature = "missing_signature"
	reasonBadSignature     = "bad_signature"
	reasonBodyTooLarge     = "body_too_large"
	reasonMethodNotAllowed = "method_not_allowed"
	reasonReadError        = "read_error"
	reasonUnavailable      = "unavailable"
	reasonStale            = "stale"
	reasonFuture           = "future"
)

// rejectReasons are every value of the rejected_total reason label; their
// series exist from the start, so the first rejection counts in increase().
var rejectReasons = []string{
	reasonMissingSignature, reasonBadSignature, reasonBodyTooLarge, reasonMethodNotAllowed,
	reasonReadError, reasonUnavailable, reasonStale, reasonFuture,
}

// Metrics holds the webhook's Prometheus collectors.
type Metrics struct {
	received     prometheus.Counter
	rejected     *prometheus.CounterVec
	accepted     *prometheus.CounterVec
	deadlettered *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	skew         prometheus.Gauge

	// Children resolved once, so the hot path does no label lookups.
	publishedC prometheus.Counter
	spooledC   prometheus.Counter
	byCode     map[int]prometheus.Observer
}

// answerCodes are the status codes the handler writes; their duration
// series exist from the start.
var answerCodes = []int{
	http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusMethodNotAllowed,
	http.StatusRequestEntityTooLarge, statusNotFresh, http.StatusServiceUnavailable,
}

// NewMetrics creates the webhook's collectors and registers them with reg;
// a nil reg leaves them unregistered (tests, benchmarks).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_webhook_received_total",
			Help: "Requests to the webhook path, any method.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_webhook_rejected_total",
			Help: "Webhook requests answered with an error, by reason.",
		}, []string{"reason"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_webhook_accepted_total",
			Help: "Notifications made durable and answered 200, by outcome (dead letters included).",
		}, []string{"outcome"}),
		deadlettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_webhook_deadlettered_total",
			Help: "Signed notifications that could not be routed and went to the dead-letter subject, by reason.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ncs_gateway_webhook_request_duration_seconds",
			Help:    "Time from the handler's start to the answer, by status code.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"code"}),
		skew: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_webhook_notify_skew_seconds",
			Help: "The host's clock minus notifyMs of the latest correctly signed notification that carried one: " +
				"network delay, plus the host clock's error. Far from 0, the host clock is wrong.",
		}),
		byCode: make(map[int]prometheus.Observer, len(answerCodes)),
	}
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	m.publishedC = m.accepted.WithLabelValues(Published.String())
	m.spooledC = m.accepted.WithLabelValues(Spooled.String())
	m.deadlettered.WithLabelValues(DeadLetterNotJSON)
	m.deadlettered.WithLabelValues(DeadLetterNoID)
	for _, c := range answerCodes {
		m.byCode[c] = m.duration.WithLabelValues(strconv.Itoa(c))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.received, m.rejected, m.accepted, m.deadlettered, m.duration, m.skew} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register webhook metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one answered request.
func (m *Metrics) observe(code int, seconds float64) {
	o, ok := m.byCode[code]
	if !ok {
		o = m.duration.WithLabelValues(strconv.Itoa(code))
	}
	o.Observe(seconds)
}

// accept counts a notification made durable.
func (m *Metrics) accept(o Outcome) {
	if o == Spooled {
		m.spooledC.Inc()
		return
	}
	m.publishedC.Inc()
}
