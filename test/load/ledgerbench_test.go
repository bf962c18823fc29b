package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// benchBody is the part of a benchmark body the tests read.
type benchBody struct {
	NoticeID  string `json:"noticeId"`
	ProductID int    `json:"productId"`
	EventType int    `json:"eventType"`
	NotifyMs  int64  `json:"notifyMs"`
	Payload   struct {
		SID      string         `json:"sid"`
		Sequence int            `json:"sequence"`
		Details  map[string]any `json:"details"`
	} `json:"payload"`
}

func TestLedgerWorkload(t *testing.T) {
	w := newLedgerWorkload(2000, 64, 1)
	if len(w.notes) != 20_000 || w.sessions != 2000 || w.wantCompleted != 2000 || w.wantFailed != 200 || w.wantAbnormal != 200 {
		t.Fatalf("got %d notes, %d sessions, completed %d failed %d abnormal %d, want 20000, 2000, 2000, 200, 200",
			len(w.notes), w.sessions, w.wantCompleted, w.wantFailed, w.wantAbnormal)
	}
	ids := map[string]bool{}
	types := map[string][]int{}
	var buf []byte
	for i, n := range w.notes {
		buf = n.body(buf, 1_800_000_000_000+int64(i))
		var b benchBody
		if err := json.Unmarshal(buf, &b); err != nil {
			t.Fatalf("note %d: %s: %v", i, buf, err)
		}
		if ids[b.NoticeID] {
			t.Fatalf("noticeId %s repeated", b.NoticeID)
		}
		ids[b.NoticeID] = true
		if b.ProductID != 3 || b.NotifyMs != 1_800_000_000_000+int64(i) || b.Payload.SID != n.sid || b.EventType != n.eventType {
			t.Fatalf("note %d: %s disagrees with %+v", i, buf, n)
		}
		if got := len(types[n.sid]); b.Payload.Sequence != got {
			t.Fatalf("sid %s: sequence %d arrives as its event %d: a session's order is not kept", n.sid, b.Payload.Sequence, got)
		}
		types[n.sid] = append(types[n.sid], b.EventType)
		if b.EventType == 11 && b.Payload.Details["exitStatus"] != 0.0 && !slices.Contains(types[n.sid], 32) {
			t.Errorf("sid %s: abnormal exit without its backuped (32)", n.sid)
		}
	}
	if len(types) != 2000 {
		t.Fatalf("got %d sids, want 2000", len(types))
	}
	for sid, ts := range types {
		if len(ts) != sessionEvents || ts[0] != 40 || ts[len(ts)-1] != 11 {
			t.Fatalf("sid %s: types %v, want %d from 40 to 11", sid, ts, sessionEvents)
		}
	}
	again := newLedgerWorkload(2000, 64, 1)
	for i := range w.notes {
		if !bytes.Equal(w.notes[i].pre, again.notes[i].pre) || !bytes.Equal(w.notes[i].post, again.notes[i].post) {
			t.Fatalf("note %d differs between two workloads of one seed: the on and off bursts would not compare", i)
		}
	}
}

func TestOpenSessionNotes(t *testing.T) {
	notes := openSessionNotes(1000, 2)
	sids := map[string]bool{}
	for _, n := range notes {
		var b benchBody
		if err := json.Unmarshal(n.body(nil, 1), &b); err != nil {
			t.Fatal(err)
		}
		if b.EventType != 40 || b.Payload.Details["msgName"] != "recorder_started" {
			t.Fatalf("got event %d %v, want recorder_started 40", b.EventType, b.Payload.Details["msgName"])
		}
		sids[b.Payload.SID] = true
	}
	if len(sids) != 1000 {
		t.Errorf("got %d distinct sids, want 1000", len(sids))
	}
}

func TestLedgerGatewayConfig(t *testing.T) {
	for _, on := range []bool{true, false} {
		var cfg struct {
			StateDir string `yaml:"state_dir"`
			NATS     struct {
				URL          string `yaml:"url"`
				Sync         string `yaml:"embedded_sync_interval"`
				EmbeddedAddr string `yaml:"embedded_listen"`
			} `yaml:"nats"`
			Ledger struct {
				Enabled     bool   `yaml:"enabled"`
				Bucket      string `yaml:"bucket"`
				UploadGrace string `yaml:"upload_grace"`
				StallAfter  string `yaml:"stall_after"`
			} `yaml:"ledger"`
			Firewall struct {
				Backend string `yaml:"backend"`
			} `yaml:"firewall"`
		}
		text := ledgerGatewayConfig("/tmp/x", 1, 2, 3, on)
		if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if cfg.Ledger.Enabled != on || cfg.Ledger.Bucket != "NCS_SESSIONS" || cfg.Ledger.UploadGrace != "1h" || cfg.Ledger.StallAfter != "26h" {
			t.Errorf("ledger %+v, want enabled %t, NCS_SESSIONS, 1h, 26h", cfg.Ledger, on)
		}
		if cfg.NATS.URL != "" || cfg.NATS.Sync != "always" || cfg.NATS.EmbeddedAddr != "127.0.0.1:3" || cfg.Firewall.Backend != "none" || cfg.StateDir != "/tmp/x" {
			t.Errorf("got %+v, want embedded NATS on 127.0.0.1:3 with sync always, firewall none, state /tmp/x", cfg)
		}
	}
}

// phase makes a burst of n 200s over wall with every latency lat.
func phase(on bool, n int, wall, lat time.Duration) ledgerPhase {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = lat
	}
	return ledgerPhase{ledgerOn: on, burst: burstResult{ok: n, wall: wall, samples: s}}
}

func TestCompareLedger(t *testing.T) {
	tests := []struct {
		name           string
		phases         []ledgerPhase
		wantT, wantP   float64
		metT, metP     bool
		wantOffEvents  float64
		wantOnP99Milli float64
	}{
		{"same", []ledgerPhase{phase(false, 1000, time.Second, 10*time.Millisecond), phase(true, 1000, time.Second, 10*time.Millisecond)},
			1, 1, true, true, 1000, 10},
		// The two off bursts pool: 3000 in 2 s = 1500/s; on 1000/s.
		{"off pooled", []ledgerPhase{phase(false, 1000, time.Second, 10*time.Millisecond), phase(true, 1000, time.Second, 12*time.Millisecond),
			phase(false, 2000, time.Second, 10*time.Millisecond)}, 1000.0 / 1500, 1.2, false, true, 1500, 12},
		{"p99 over", []ledgerPhase{phase(false, 100, time.Second, 10*time.Millisecond), phase(true, 90, time.Second, 13*time.Millisecond)},
			0.9, 1.3, true, false, 100, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compareLedger(tt.phases)
			if diff(c.throughputRatio, tt.wantT) > 1e-9 || diff(c.p99Ratio, tt.wantP) > 1e-9 {
				t.Errorf("ratios %.4f, %.4f, want %.4f, %.4f", c.throughputRatio, c.p99Ratio, tt.wantT, tt.wantP)
			}
			if mt, mp := c.met(); mt != tt.metT || mp != tt.metP {
				t.Errorf("met %t, %t, want %t, %t", mt, mp, tt.metT, tt.metP)
			}
			if c.off.eventsPerSecond() != tt.wantOffEvents || millis(c.on.latency.P99) != tt.wantOnP99Milli {
				t.Errorf("off %.0f/s, on p99 %.2f ms, want %.0f and %.2f", c.off.eventsPerSecond(), millis(c.on.latency.P99), tt.wantOffEvents, tt.wantOnP99Milli)
			}
		})
	}
}

func diff(a, b float64) float64 {
	if a > b {
		return a - b
	}
	return b - a
}

// ledgerMetrics renders the ledger's series as the daemon exposes them.
func ledgerMetrics(lag int, caughtUp bool) string {
	return ledgerMetricsOpen(lag, caughtUp, 7)
}

// ledgerMetricsOpen is ledgerMetrics with open recording sessions.
func ledgerMetricsOpen(lag int, caughtUp bool, open int) string {
	c := 0
	if caughtUp {
		c = 1
	}
	return fmt.Sprintf(`# HELP ncs_gateway_ledger_enabled x
ncs_gateway_ledger_enabled 1
ncs_gateway_ledger_caught_up %d
ncs_gateway_ledger_lag_messages %d
ncs_gateway_ledger_lag_seconds %d
ncs_gateway_ledger_completed_total{outcome="failed"} 200
ncs_gateway_ledger_completed_total{outcome="ok"} 1800
ncs_gateway_ledger_flagged_total{reason="abnormal_exit"} 200
ncs_gateway_ledger_flagged_total{reason="no_upload"} 0
ncs_gateway_ledger_sessions{state="exited"} 2000
ncs_gateway_ledger_sessions{state="recording"} %d
`, c, lag, lag/10, open)
}

func TestReadLedgerLag(t *testing.T) {
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader(ledgerMetrics(35, false))))
	if err != nil {
		t.Fatal(err)
	}
	l, err := readLedgerLag(m)
	if err != nil {
		t.Fatal(err)
	}
	want := ledgerLag{enabled: true, messages: 35, seconds: 3, completed: 2000, failed: 200, abnormal: 200, recording: 7}
	if l != want || l.done() {
		t.Errorf("got %+v (done %t), want %+v, not done", l, l.done(), want)
	}
	m, _ = parseMetrics(bufio.NewScanner(strings.NewReader("ncs_gateway_webhook_accepted_total 5\n")))
	if _, err := readLedgerLag(m); err == nil || !strings.Contains(err.Error(), "ncs_gateway_ledger_caught_up") {
		t.Errorf("a daemon without the ledger: got %v, want an error naming its missing series", err)
	}
}

// TestWaitCaughtUp polls a real /metrics over loopback whose lag falls by
// 10 per scrape.
func TestWaitCaughtUp(t *testing.T) {
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lag := max(0, 30-10*int(scrapes.Add(1)-1))
		io.WriteString(w, ledgerMetrics(lag, lag == 0))
	}))
	defer srv.Close()
	took, last, ok, err := waitCaughtUp(t.Context(), srv.URL, time.Now(), 10*time.Second)
	if err != nil || !ok || !last.done() || scrapes.Load() != 4 {
		t.Errorf("got %s, %+v, %t, %v after %d scrapes, want caught up after 4", took, last, ok, err, scrapes.Load())
	}
}

// TestSendBurst sends a small workload to a loopback server that checks
// every signature with the gateway's verifier and every notifyMs for being
// the send time.
func TestSendBurst(t *testing.T) {
	const secret = "burst-secret"
	v, err := webhook.NewVerifier([]string{secret}, false)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := v.Verify(body, r.Header); err != nil {
			http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
			return
		}
		var b benchBody
		if err := json.Unmarshal(body, &b); err != nil || time.Since(time.UnixMilli(b.NotifyMs)).Abs() > time.Minute {
			http.Error(w, `{"error":"stale"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[b.NoticeID]++
		mu.Unlock()
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	w := newLedgerWorkload(20, 4, 3)
	res, err := sendBurst(t.Context(), srv.URL+"/agora/ncs", secret, 4, w.notes)
	if err != nil {
		t.Fatal(err)
	}
	if res.ok != 200 || res.errors != 0 || res.sent != 200 || len(seen) != 200 || res.latency.N != 200 || res.eventsPerSecond() <= 0 {
		t.Errorf("got %+v with %d distinct ids at the server, want 200 200s, each id once", res, len(seen))
	}
	bad, err := sendBurst(t.Context(), srv.URL+"/agora/ncs", "wrong", 2, w.notes[:5])
	if err != nil || bad.errors != 5 || !strings.Contains(bad.firstError, "status 401") {
		t.Errorf("wrong secret: got %+v, %v, want 5 errors, the first a 401", bad, err)
	}
}

func TestParseLedgerFlags(t *testing.T) {
	cfg, err := parseLedgerFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.sessions != 2000 || cfg.c != 32 || cfg.open != 100_000 || !slices.Equal(cfg.phases, []bool{false, true, false}) ||
		cfg.catchUp != 30*time.Second || cfg.maxRSS != 150<<20 {
		t.Errorf("defaults %+v, want 2000 sessions, c=32, 100000 open, off,on,off, 30s, 150 MiB", cfg)
	}
	if cfg, _ := parseLedgerFlags([]string{"-quick"}, io.Discard); cfg.sessions != 200 || cfg.open != 10_000 {
		t.Errorf("-quick: %d sessions, %d open, want 200 and 10000", cfg.sessions, cfg.open)
	}
	for _, args := range [][]string{{"-phases", "on,on"}, {"-phases", "off,maybe"}, {"-c", "0"}, {"-wait-max", "1s"}} {
		if _, err := parseLedgerFlags(args, io.Discard); err == nil {
			t.Errorf("%v: got no error", args)
		}
	}
}

func TestWriteLedgerReport(t *testing.T) {
	on := phase(true, 20_000, 8*time.Second, 9*time.Millisecond)
	off2 := phase(false, 20_000, 8*time.Second, 8*time.Millisecond)
	off2.streamOK = true
	on.caughtUp, on.catchUp, on.streamOK = true, 4*time.Second, true
	on.final = ledgerLag{completed: 2000, failed: 200, abnormal: 200}
	off := phase(false, 20_000, 7*time.Second, 8*time.Millisecond)
	off.streamOK = true
	res := &ledgerResult{cfg: ledgerConfig{catchUp: 30 * time.Second, maxRSS: 150 << 20, rssSettle: 10 * time.Second, c: 32, active: 64},
		work: newLedgerWorkload(2000, 64, 1), phases: []ledgerPhase{off, on, off2},
		memory: &ledgerMemory{open: 100_000, fillPeak: 140 << 20, restart: 160 << 20, restartRSS: 120 << 20, offPeak: 90 << 20}}
	var b strings.Builder
	writeLedgerReport(&b, res, nil)
	text := b.String()
	for _, want := range []string{
		"| 2 | on | 20000 | 0 | 2500 |",
		"0.94× off's 2667 (aim ≥ 0.80×) (met)",
		"1.12× off's 8.00 ms (aim ≤ 1.20×) (met)",
		"noise: the 2 off bursts ran at 2500 to 2857 events/s (14% apart)",
		"lag back to 0 4s after the burst (aim within 30s) (met)",
		"peak RSS while filling: 140.0 MiB (met)",
		"120.0 MiB) (**not met**)",
		"with the ledger off, 10s idle: 90.0 MiB (the embedded NATS",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

// TestWriteLedgerReportStopped: a run that stopped early shows what it
// measured and judges nothing.
func TestWriteLedgerReportStopped(t *testing.T) {
	res := &ledgerResult{cfg: ledgerConfig{catchUp: 30 * time.Second}, work: newLedgerWorkload(10, 4, 1),
		phases: []ledgerPhase{phase(false, 100, time.Second, time.Millisecond), {ledgerOn: true, peakRSS: -1}}}
	var b strings.Builder
	writeLedgerReport(&b, res, fmt.Errorf("wait for the gateway's /readyz: ncs-gateway exited\n  | ledger: unknown key"))
	text := b.String()
	for _, want := range []string{"| 1 | off | 100 | 0 | 100 |", "- not judged: the run stopped early", "**The benchmark stopped early: wait for the gateway's /readyz: ncs-gateway exited**"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "not met") {
		t.Errorf("a stopped run judged an aim:\n%s", text)
	}
}

// TestWaitSessions: after a restart the ledger is caught up with the
// stream before it has read every record of the bucket; the wait holds out
// for the count.
func TestWaitSessions(t *testing.T) {
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, ledgerMetricsOpen(0, true, min(100_000, 40_000*int(scrapes.Add(1)))))
	}))
	defer srv.Close()
	l, err := waitSessions(t.Context(), srv.URL, 100_000, 10*time.Second)
	if err != nil || l.recording != 100_000 || scrapes.Load() != 3 {
		t.Errorf("got %+v, %v after %d scrapes, want 100000 recording after 3", l, err, scrapes.Load())
	}
	if _, err := waitSessions(t.Context(), srv.URL, 200_000, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "counts 100000 recording sessions, want 200000") {
		t.Errorf("got %v, want an error giving the count", err)
	}
}
