package main

import (
	"math"
	"slices"
	"time"
)

// latencySummary is the distribution of one measurement's request
// latencies, computed exactly from every recorded sample.
type latencySummary struct {
	N    int
	Mean time.Duration
	P50  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
}

// summarize sorts samples in place and returns their summary.
func summarize(samples []time.Duration) latencySummary {
	if len(samples) == 0 {
		return latencySummary{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	return latencySummary{
		N:    len(samples),
		Mean: sum / time.Duration(len(samples)),
		P50:  percentile(samples, 50),
		P99:  percentile(samples, 99),
		P999: percentile(samples, 99.9),
		Max:  samples[len(samples)-1],
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest sample that at least p% of the samples do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// Round away float noise (99.9/100*1000 is 999.0000000000001) before
	// taking the ceiling.
	rank := int(math.Ceil(math.Round(p/100*float64(n)*1e6) / 1e6))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// millis formats d as milliseconds with two decimals, for the table.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*100) / 100
}
