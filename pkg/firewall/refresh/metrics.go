package refresh

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
)

// Metrics are the allowlist's Prometheus metrics.
type Metrics struct {
	allowlistSize   prometheus.Gauge
	lastSuccess     prometheus.Gauge
	fetchEnabled    prometheus.Gauge
	refreshSuccess  prometheus.Counter
	refreshFailures *prometheus.CounterVec
	applyDuration   prometheus.Histogram
	driftRepairs    prometheus.Counter
	reconciles      prometheus.Counter
	reconcileErrors prometheus.Counter
	persistFailures prometheus.Counter
	persistPending  prometheus.Gauge

	lastSuccessUnix atomic.Int64 // mirrors lastSuccess for the age gauge
}

// failureReasons are the labels created at 0 at start, so that the first
// failure of each shows in increase().
func failureReasons() []string {
	out := []string{ReasonBelowMinIPs, ReasonShrinkRefused, ReasonApply, ReasonPersist}
	for _, r := range ncsip.Reasons() {
		out = append(out, "fetch_"+r)
	}
	return out
}

// NewMetrics registers the allowlist metrics on reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		allowlistSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_allowlist_size",
			Help: "Entries in the applied allowlist: NCS addresses (including those in their removal grace period) plus static_allow.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_allowlist_last_success_timestamp_seconds",
			Help: "Unix time of the Agora answer the applied allowlist comes from (0: none yet).",
		}),
		fetchEnabled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_allowlist_fetch_enabled",
			Help: "1 when ncs.endpoints lists Agora and the allowlist is refreshed from it; 0 when it is static_allow alone by design.",
		}),
		refreshSuccess: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_refresh_success_total",
			Help: "Allowlist refreshes that fetched, passed the gates, applied and persisted.",
		}),
		refreshFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_refresh_failures_total",
			Help: "Allowlist refreshes that failed, by reason (fetch_<cause>, below_min_ips, shrink_refused, apply: nothing changed; persist: applied but not yet saved).",
		}, []string{"reason"}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ncs_gateway_firewall_apply_duration_seconds",
			Help:    "Time to apply the allowlist to the firewall, read-back included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		driftRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_firewall_drift_repairs_total",
			Help: "Times the reconcile loop found our table, chain, rule or set changed by someone else and put it back.",
		}),
		reconciles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_firewall_reconciles_total",
			Help: "Reconcile passes run (periodic and on ruleset change), whatever their outcome.",
		}),
		reconcileErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_firewall_reconcile_errors_total",
			Help: "Reconcile passes that could not read or repair the firewall.",
		}),
		persistFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_allowlist_persist_failures_total",
			Help: "Saves of the applied allowlist to state_dir that failed (at a refresh or a retry); the applied list stays.",
		}),
		persistPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_allowlist_persist_pending",
			Help: "1 while the applied allowlist is not saved to state_dir yet (a restart would apply the older saved list).",
		}),
	}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ncs_gateway_allowlist_age_seconds",
		Help: "Seconds since the Agora answer the applied allowlist comes from; -1 when no answer was ever applied.",
	}, func() float64 {
		ts := m.lastSuccessUnix.Load()
		if ts == 0 {
			return -1
		}
		return time.Since(time.Unix(ts, 0)).Seconds()
	})
	reg.MustRegister(m.allowlistSize, m.lastSuccess, m.fetchEnabled, m.refreshSuccess, m.refreshFailures,
		m.applyDuration, m.driftRepairs, m.reconciles, m.reconcileErrors, m.persistFailures, m.persistPending, age)
	for _, r := range failureReasons() {
		m.refreshFailures.WithLabelValues(r)
	}
	return m
}

// setLastSuccess records the time of the Agora answer now applied.
func (m *Metrics) setLastSuccess(t time.Time) {
	m.lastSuccessUnix.Store(t.Unix())
	m.lastSuccess.Set(float64(t.Unix()))
}
