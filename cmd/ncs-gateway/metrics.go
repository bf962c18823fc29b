package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry is the daemon's registry, with the Go runtime and process
// collectors for RSS, CPU and goroutines, and the build info. The
// allowlist, webhook and publish packages register their own metrics on it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ncs_gateway_build_info",
		Help: "Always 1; labelled with the running version.",
	}, []string{"version"})
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo)
	buildInfo.WithLabelValues(version).Set(1)
	return reg
}
