package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// metricsSnapshot is one scrape of the gateway's admin /metrics: the value
// of every series, keyed by the series as written, e.g.
// `ncs_gateway_webhook_rejected_total{reason="bad_signature"}`.
type metricsSnapshot map[string]float64

// scrapeClient reads /metrics on its own connection: an attack on the
// webhook port must not make the measurement fail for another reason.
var scrapeClient = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true},
}

// scrapeMetrics reads adminURL/metrics in the Prometheus text format.
func scrapeMetrics(ctx context.Context, adminURL string) (metricsSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: status %d", resp.StatusCode)
	}
	m, err := parseMetrics(bufio.NewScanner(resp.Body))
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	return m, nil
}

// parseMetrics reads the text exposition format: comments are skipped, and
// each sample line is "series value" (client_golang writes no timestamps).
func parseMetrics(sc *bufio.Scanner) (metricsSnapshot, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	m := metricsSnapshot{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("parse metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("parse metrics line %q: %w", line, err)
		}
		m[strings.TrimSpace(line[:i])] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return m, nil
}

// sum adds every series of the metric name whose labels include all of
// labels (`reason="bad_signature"`); no labels: the whole metric. ok is
// false when no series matched: a missing series is not a 0, and a report
// must say so rather than print a count that was never scraped.
func (m metricsSnapshot) sum(name string, labels ...string) (total float64, ok bool) {
	for k, v := range m {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if match {
			total += v
			ok = true
		}
	}
	return total, ok
}

// need is sum for a series the caller cannot do without: a missing one is
// an error naming it.
func (m metricsSnapshot) need(name string, labels ...string) (float64, error) {
	v, ok := m.sum(name, labels...)
	if !ok {
		return 0, fmt.Errorf("metrics: no series %s%v", name, labels)
	}
	return v, nil
}

// gwSample is one look at the gateway process: /proc for its RSS, the
// admin /metrics for the rest. A failed scrape leaves those at -1.
type gwSample struct {
	at         time.Time
	rss        int64 // VmRSS, bytes
	goroutines float64
	heapInuse  float64 // go_memstats_heap_inuse_bytes
	fds        float64 // process_open_fds
	spool      float64 // ncs_gateway_spool_depth
	metrics    metricsSnapshot
	err        error
}

// sampleGateway takes one gwSample of the process pid with its admin
// listener at adminURL.
func sampleGateway(ctx context.Context, pid int, adminURL string) gwSample {
	s := gwSample{at: time.Now(), goroutines: -1, heapInuse: -1, fds: -1, spool: -1}
	rss, rerr := procRSS(pid)
	s.rss = rss
	m, err := scrapeMetrics(ctx, adminURL)
	if err == nil {
		s.metrics = m
		for _, f := range []struct {
			dst  *float64
			name string
		}{
			{&s.goroutines, "go_goroutines"}, {&s.heapInuse, "go_memstats_heap_inuse_bytes"},
			{&s.fds, "process_open_fds"}, {&s.spool, "ncs_gateway_spool_depth"},
		} {
			v, nerr := m.need(f.name)
			if nerr != nil {
				err = errors.Join(err, nerr) // the sample counts as a failed scrape
				continue
			}
			*f.dst = v
		}
	}
	if rerr != nil {
		err = rerr
	}
	s.err = err
	return s
}

// sampler takes a gwSample every interval in the background, until stop.
type sampler struct {
	pid      int
	admin    string
	interval time.Duration

	mu      sync.Mutex
	samples []gwSample
	cancel  context.CancelFunc
	done    chan struct{}
}

// startSampler begins sampling the gateway at once and every interval.
func startSampler(ctx context.Context, g *gatewayProc, interval time.Duration) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{pid: g.pid(), admin: g.admin, interval: interval, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			smp := sampleGateway(ctx, s.pid, s.admin)
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.samples = append(s.samples, smp)
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns every sample taken.
func (s *sampler) stop() []gwSample {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// peaks are the maxima over some samples, and how many scrapes failed.
type peaks struct {
	n, failed  int
	rss        int64
	goroutines float64
	heapInuse  float64
	fds        float64
	spool      float64
	firstErr   error
}

// peakOf returns the maxima of samples; a failed scrape counts in failed
// and adds nothing else but its RSS.
func peakOf(samples []gwSample) peaks {
	p := peaks{n: len(samples)}
	for _, s := range samples {
		p.rss = max(p.rss, s.rss)
		if s.err != nil {
			p.failed++
			if p.firstErr == nil {
				p.firstErr = s.err
			}
			continue
		}
		p.goroutines = max(p.goroutines, s.goroutines)
		p.heapInuse = max(p.heapInuse, s.heapInuse)
		p.fds = max(p.fds, s.fds)
		p.spool = max(p.spool, s.spool)
	}
	return p
}

// mb formats bytes as MB with no decimals.
func mb(b float64) string { return fmt.Sprintf("%.0f", b/(1<<20)) }
