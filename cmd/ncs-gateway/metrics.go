package main

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// gatewayMetrics are the allowlist's metrics; the webhook and publish
// packages register their own on the same registry.
type gatewayMetrics struct {
	allowlistSize   prometheus.Gauge
	lastSuccess     prometheus.Gauge
	refreshSuccess  prometheus.Counter
	refreshFailures *prometheus.CounterVec
	applyDuration   prometheus.Histogram
	driftRepairs    prometheus.Counter
	reconcileErrors prometheus.Counter
	buildInfo       *prometheus.GaugeVec

	lastSuccessUnix atomic.Int64 // mirrors lastSuccess for the age gauge
}

func newGatewayMetrics(reg prometheus.Registerer) *gatewayMetrics {
	m := &gatewayMetrics{
		allowlistSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_allowlist_size",
			Help: "Entries in the applied allowlist: NCS addresses (including those in their removal grace period) plus static_allow.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ncs_gateway_allowlist_last_success_timestamp_seconds",
			Help: "Unix time of the Agora answer the applied allowlist comes from (0: none yet).",
		}),
		refreshSuccess: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_refresh_success_total",
			Help: "Allowlist refreshes that fetched, passed the gates, applied and persisted.",
		}),
		refreshFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ncs_gateway_refresh_failures_total",
			Help: "Allowlist refreshes that changed nothing, by reason (fetch_<cause>, below_min_ips, shrink_refused, apply, persist, lock).",
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
		reconcileErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ncs_gateway_firewall_reconcile_errors_total",
			Help: "Reconcile passes that could not read or repair the firewall.",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ncs_gateway_build_info",
			Help: "Always 1; labelled with the running version.",
		}, []string{"version"}),
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
	reg.MustRegister(m.allowlistSize, m.lastSuccess, m.refreshSuccess, m.refreshFailures,
		m.applyDuration, m.driftRepairs, m.reconcileErrors, m.buildInfo, age)
	m.buildInfo.WithLabelValues(version).Set(1)
	return m
}

// newRegistry is the daemon's registry, with the Go runtime and process
// collectors for RSS, CPU and goroutines.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// setLastSuccess records the time of the Agora answer now applied.
func (m *gatewayMetrics) setLastSuccess(t time.Time) {
	m.lastSuccessUnix.Store(t.Unix())
	m.lastSuccess.Set(float64(t.Unix()))
}
