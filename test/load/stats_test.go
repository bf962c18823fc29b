package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i + 1) // 1..1000 ns
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", []time.Duration{7}, 99.9, 7},
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 100 is the max", hundred, 99.9, 100 * time.Millisecond},
		{"p100", hundred, 100, 100 * time.Millisecond},
		{"p99.9 of 1000 without float noise", thousand, 99.9, 999},
		{"p1 of 1000", thousand, 1, 10},
		{"tiny p is the min", thousand, 0.0001, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(p=%g) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	samples := []time.Duration{5, 1, 4, 2, 3}
	got := summarize(samples)
	want := latencySummary{N: 5, Mean: 3, P50: 3, P99: 5, P999: 5, Max: 5}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if samples[0] != 1 || samples[4] != 5 {
		t.Errorf("samples not sorted in place: %v", samples)
	}
	if got := summarize(nil); got != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

func TestPool(t *testing.T) {
	a := measurement{res: genResult{Window: time.Second, Requests: 2, Samples: []time.Duration{1, 3}, OK: 3, Errors: 1},
		cpu: 10 * time.Millisecond, peakRSS: 5}
	b := measurement{res: genResult{Window: time.Second, Requests: 2, Samples: []time.Duration{2, 4}, OK: 2},
		cpu: 30 * time.Millisecond, peakRSS: 9}
	got := pool(a, b)
	if got.res.Requests != 4 || got.res.Window != 2*time.Second || got.res.OK != 5 || got.res.Errors != 1 {
		t.Errorf("pooled counts = %+v, want 4 requests in 2s, 5 OK, 1 error", got.res)
	}
	if eps := got.res.EventsPerSecond(); eps != 2 {
		t.Errorf("pooled events/s = %g, want 2", eps)
	}
	if got.res.Latency.P50 != 2 || got.res.Latency.Max != 4 {
		t.Errorf("pooled latency = %+v, want p50 2, max 4", got.res.Latency)
	}
	if got.cpu != 40*time.Millisecond || got.peakRSS != 9 {
		t.Errorf("pooled cpu %v, rss %d; want 40ms, 9", got.cpu, got.peakRSS)
	}
	if us := perEvent(got.cpu, got.res.Requests); us != 10000 {
		t.Errorf("perEvent = %g µs, want 10000", us)
	}
}
