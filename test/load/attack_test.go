package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
ncs_gateway_webhook_rejected_total{reason="bad_signature"} 1234
ncs_gateway_webhook_rejected_total{reason="body_too_large"} 5
ncs_gateway_webhook_accepted_total{outcome="published"} 7
ncs_gateway_webhook_accepted_total{outcome="spooled"} 3
process_resident_memory_bytes 2.5165824e+07
`
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
		wantOK bool
	}{
		{"go_goroutines", nil, 42, true},
		{"ncs_gateway_webhook_rejected_total", []string{`reason="bad_signature"`}, 1234, true},
		{"ncs_gateway_webhook_rejected_total", nil, 1239, true},
		{"ncs_gateway_webhook_accepted_total", nil, 10, true},
		{"process_resident_memory_bytes", nil, 25165824, true},
		{"ncs_gateway_spool_depth", nil, 0, false},                                         // missing, not 0
		{"ncs_gateway_webhook_rejected_total", []string{`reason="unavailable"`}, 0, false}, // no such label
		{"go_goroutine", nil, 0, false},                                                    // a prefix is not the name
	}
	for _, tt := range tests {
		if got, ok := m.sum(tt.name, tt.labels...); got != tt.want || ok != tt.wantOK {
			t.Errorf("sum(%s, %v) = %v, %v, want %v, %v", tt.name, tt.labels, got, ok, tt.want, tt.wantOK)
		}
	}
	if _, err := m.need("ncs_gateway_spool_depth"); err == nil {
		t.Error("need of a missing series: got no error")
	}
	if _, err := parseMetrics(bufio.NewScanner(strings.NewReader("novalue\n"))); err == nil {
		t.Error("a line without a value: got no error")
	}
}

func TestTally(t *testing.T) {
	var tl tally
	if got := tl.String(); got != "none" {
		t.Errorf("empty tally: %q, want none", got)
	}
	ctx := context.Background()
	tl.record(ctx, 401, nil)
	tl.record(ctx, 401, nil)
	tl.record(ctx, 413, nil)
	tl.record(ctx, 0, fmt.Errorf("post: %w", syscall.ECONNRESET))
	tl.record(ctx, 0, errors.New("something odd"))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tl.record(canceled, 0, io.EOF) // our own stop: not counted
	if got, want := tl.String(), "401 ×2, 413 ×1, error ×1, reset ×1"; got != want {
		t.Errorf("tally = %q, want %q", got, want)
	}
	if tl.total() != 5 || tl.count("401") != 2 || tl.other != "something odd" {
		t.Errorf("total %d, 401s %d, other %q; want 5, 2, something odd", tl.total(), tl.count("401"), tl.other)
	}
}

func TestLabels(t *testing.T) {
	if got := statusLabel([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain")); got != "HTTP 400" {
		t.Errorf("statusLabel = %q, want HTTP 400", got)
	}
	if got := statusLabel([]byte("garbage")); got != "data" {
		t.Errorf("statusLabel(garbage) = %q, want data", got)
	}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		err  error
		want string
	}{
		{io.EOF, "closed"},
		{fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF), "closed"},
		{&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, "broken pipe"},
		{fmt.Errorf("dial 127.0.0.1:1: %w", syscall.ECONNREFUSED), "dial refused"},
		{timeout, "timeout"},
		{errors.New("odd"), "error"},
	}
	for _, tt := range tests {
		if got := errLabel(tt.err); got != tt.want {
			t.Errorf("errLabel(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestFlatVerdicts(t *testing.T) {
	sample := func(rss int64, heap, gor, fds float64) soakSample {
		return soakSample{gwSample: gwSample{rss: rss, heapInuse: heap, goroutines: gor, fds: fds}}
	}
	flat := []soakSample{
		sample(100, 50, 40, 30), sample(110, 60, 41, 30), sample(105, 55, 40, 31),
		sample(108, 58, 40, 30), sample(112, 52, 42, 31), sample(109, 61, 41, 30),
		sample(120, 70, 43, 32), sample(115, 62, 44, 33), sample(125, 71, 42, 31),
	}
	for _, v := range flatVerdicts(flat, 0.2, 0.1) {
		if !v.ok {
			t.Errorf("flat series: %s judged growing (%v -> %v)", v.name, v.first, v.last)
		}
	}
	growing := append([]soakSample(nil), flat...)
	growing[8] = sample(200, 71, 60, 31) // RSS +82%, goroutines +46%
	got := map[string]bool{}
	for _, v := range flatVerdicts(growing, 0.2, 0.1) {
		got[v.name] = v.ok
	}
	if got["RSS"] || got["goroutines"] || !got["heap in use"] || !got["open fds"] {
		t.Errorf("growing series: verdicts %v, want RSS and goroutines growing, the rest flat", got)
	}
	failed := append([]soakSample(nil), flat...)
	for i := range 3 {
		failed[6+i].err = errors.New("scrape failed")
	}
	for _, v := range flatVerdicts(failed, 0.2, 0.1) {
		if v.name != "RSS" && v.ok {
			t.Errorf("last third unscraped: %s judged flat, want unknown (not ok)", v.name)
		}
	}
	if flatVerdicts(flat[:2], 0.2, 0.1) != nil {
		t.Error("two samples: want no verdict")
	}
}

func TestIntervalStats(t *testing.T) {
	var s intervalStats
	for i := 1; i <= 100; i++ {
		s.observe(time.Duration(i)*time.Millisecond, nil)
	}
	s.observe(time.Second, errors.New("status 503"))
	n, errs, p99 := s.take()
	if n != 100 || errs != 1 || p99 != 99*time.Millisecond {
		t.Errorf("take = %d, %d, %v; want 100, 1, 99ms", n, errs, p99)
	}
	if n, errs, _ := s.take(); n != 0 || errs != 0 {
		t.Errorf("second take = %d, %d; want a fresh interval", n, errs)
	}
}

func TestAttackFlags(t *testing.T) {
	cfg, err := parseAttackFlags([]string{"-quick", "-idle", "10"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.duration != 10*time.Second || cfg.plan.idle != 10 || cfg.plan.loris != 500 {
		t.Errorf("got d %v, idle %d, loris %d; want 10s, 10, 500", cfg.duration, cfg.plan.idle, cfg.plan.loris)
	}
	if _, err := parseAttackFlags([]string{"-loris", "-1"}, io.Discard); err == nil {
		t.Error("negative -loris: got no error")
	}
	if _, err := parseSoakFlags([]string{"-d", "10s", "-every", "5s"}, io.Discard); err == nil {
		t.Error("soak shorter than 3 intervals: got no error")
	}
}
