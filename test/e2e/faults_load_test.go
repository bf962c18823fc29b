package e2e

// The load run of the fault tests: concurrent posters of distinct signed
// notifications that record every answer by notice id, and the final count
// against the stream.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultsHTTPClient reaches a gateway on loopback with keep-alive
// connections for the load workers.
func faultsHTTPClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second,
	}}
}

// faultsLoad is a load run: workers post distinct signed notifications
// until stopped (or a per-worker cap), and every answer is recorded by id.
type faultsLoad struct {
	t      testing.TB
	url    string
	client *http.Client
	prefix string

	stopOnce sync.Once
	stopc    chan struct{}
	wg       sync.WaitGroup
	sent     atomic.Int64

	mu       sync.Mutex
	acked    map[string]string // id -> outcome ("published", "spooled") of a 200
	failed   map[string]string // id -> "503", "transport: ...": answered anything but 200
	outcomes map[string]int    // "200 spooled", "503", "transport" -> count
	events   []faultsLoadEvent // every answer in order, for time-based checks
}

// faultsLoadEvent is one answer and when it arrived.
type faultsLoadEvent struct {
	at      time.Time
	id      string
	code    int // 0: transport error
	outcome string
}

// faultsLoadOptions shape a load run.
type faultsLoadOptions struct {
	workers   int           // concurrent posters; default 8
	interval  time.Duration // pause of each worker between posts; default 10 ms
	maxPerRun int           // cap on posts per worker; default 100000
}

// startFaultsLoad starts the workers at once; Cleanup stops them.
func startFaultsLoad(t testing.TB, client *http.Client, url, prefix string, o faultsLoadOptions) *faultsLoad {
	t.Helper()
	if o.workers == 0 {
		o.workers = 8
	}
	if o.interval == 0 {
		o.interval = 10 * time.Millisecond
	}
	if o.maxPerRun == 0 {
		o.maxPerRun = 100000
	}
	l := &faultsLoad{
		t: t, url: url, client: client, prefix: prefix, stopc: make(chan struct{}),
		acked: map[string]string{}, failed: map[string]string{}, outcomes: map[string]int{},
	}
	for w := range o.workers {
		l.wg.Go(func() { l.worker(w, o) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *faultsLoad) worker(w int, o faultsLoadOptions) {
	for i := range o.maxPerRun {
		select {
		case <-l.stopc:
			return
		default:
		}
		id := fmt.Sprintf("%s-w%d-%06d", l.prefix, w, i)
		code, outcome, err := l.post(id)
		l.sent.Add(1)
		l.record(id, code, outcome, err)
		pause := o.interval
		if err != nil {
			pause = max(pause, 50*time.Millisecond) // the daemon is down: do not spin
		}
		select {
		case <-l.stopc:
			return
		case <-time.After(pause):
		}
	}
}

// post sends one signed notification and returns the status and the
// outcome named in a 200's JSON answer.
func (l *faultsLoad) post(id string) (int, string, error) {
	body := notification(id, time.Now().UnixMilli())
	req, err := http.NewRequest(http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Agora-Signature-V2", sign(testSecret, body))
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("read answer (status %d): %w", resp.StatusCode, err)
	}
	var ans struct {
		Outcome  string `json:"outcome"`
		NoticeID string `json:"noticeId"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &ans); err != nil || ans.NoticeID != id {
			return resp.StatusCode, "", fmt.Errorf("200 with answer %q, want JSON naming noticeId %q", b, id)
		}
	}
	return resp.StatusCode, ans.Outcome, nil
}

func (l *faultsLoad) record(id string, code int, outcome string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := faultsLoadEvent{at: time.Now(), id: id, code: code, outcome: outcome}
	switch {
	case err != nil:
		ev.code = 0
		l.failed[id] = "transport: " + err.Error()
		l.outcomes["transport error"]++
	case code == http.StatusOK:
		l.acked[id] = outcome
		l.outcomes["200 "+outcome]++
	default:
		l.failed[id] = strconv.Itoa(code)
		l.outcomes[strconv.Itoa(code)]++
	}
	l.events = append(l.events, ev)
}

// stop ends the run and waits for the requests in flight.
func (l *faultsLoad) stop() {
	l.stopOnce.Do(func() { close(l.stopc) })
	l.wg.Wait()
}

// counts returns how many answers of each kind arrived so far.
func (l *faultsLoad) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.outcomes))
	for k, v := range l.outcomes {
		out[k] = v
	}
	return out
}

// count returns the number of answers of one kind ("200 spooled", "503").
func (l *faultsLoad) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outcomes[kind]
}

// ackedCount is the number of 200s so far.
func (l *faultsLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitCount waits until answers of kind reach n, failing after d.
func (l *faultsLoad) waitCount(kind string, n int, d time.Duration) {
	l.t.Helper()
	waitFor(l.t, d, fmt.Sprintf("%d answers %q from the load run (have %v)", n, kind, l.counts()), func() bool {
		return l.count(kind) >= n
	})
}

// firstSince returns the first answer of kind (code 0 is a transport error,
// outcome "" any) at or after since.
func (l *faultsLoad) firstSince(since time.Time, code int, outcome string) (faultsLoadEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if !ev.at.Before(since) && ev.code == code && (outcome == "" || ev.outcome == outcome) {
			return ev, true
		}
	}
	return faultsLoadEvent{}, false
}

// summary is a one-line account of the run for logs and reports.
func (l *faultsLoad) summary() string {
	c := l.counts()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, c[k])
	}
	return fmt.Sprintf("%d posts (%s)", l.sent.Load(), strings.Join(parts, ", "))
}

// check compares the stream's ids with the answers: every id answered 200
// is there exactly once, an id answered otherwise at most once, and no id
// of this run is there that was never posted. It returns the counts.
func (l *faultsLoad) check(t testing.TB, seen map[string]int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var missing, dup, failedPresent, unknown int
	for id, outcome := range l.acked {
		if n := seen[id]; n != 1 {
			if n == 0 {
				missing++
			} else {
				dup++
			}
			if missing+dup <= 10 {
				t.Errorf("%s (answered 200 %s) is in the stream %d times, want exactly once", id, outcome, n)
			}
		}
	}
	for id, why := range l.failed {
		switch n := seen[id]; {
		case n == 1:
			failedPresent++
		case n > 1:
			dup++
			t.Errorf("%s (answered %s) is in the stream %d times, want at most once", id, why, n)
		}
	}
	for id, n := range seen {
		if !strings.HasPrefix(id, l.prefix+"-") {
			continue
		}
		if _, ok := l.acked[id]; ok {
			continue
		}
		if _, ok := l.failed[id]; !ok {
			unknown++
			t.Errorf("%s is in the stream %d times but was never posted", id, n)
		}
	}
	if missing > 0 || dup > 0 {
		t.Errorf("stream count: %d of %d ids answered 200 missing, %d duplicated; want 0 and 0",
			missing, len(l.acked), dup)
	}
	t.Logf("stream count: %d ids answered 200, all present once: %v; %d answered non-200 (%d of them present once); %d unknown",
		len(l.acked), missing == 0 && dup == 0, len(l.failed), failedPresent, unknown)
}

// eventsBetween returns the answers that arrived in [from, to).
func (l *faultsLoad) eventsBetween(from, to time.Time) []faultsLoadEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []faultsLoadEvent
	for _, ev := range l.events {
		if !ev.at.Before(from) && ev.at.Before(to) {
			out = append(out, ev)
		}
	}
	return out
}

// failuresSince returns the transport errors (no answer) at or after since.
func (l *faultsLoad) failuresSince(since time.Time) []faultsLoadEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []faultsLoadEvent
	for _, ev := range l.events {
		if ev.code == 0 && !ev.at.Before(since) {
			out = append(out, ev)
		}
	}
	return out
}
