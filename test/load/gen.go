package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// genConfig is one generator run.
type genConfig struct {
	URL         string
	Secret      string
	Concurrency int
	Warmup      time.Duration // requests sent but not measured
	Duration    time.Duration // the measured window
	MaxRequests int64         // cap on requests sent, warm-up included
	Timeout     time.Duration // per request; Agora waits 10 s
	Corpus      *corpus
	// Rate, when above 0, paces the workers to that many requests per
	// second in total (open loop, for comparing CPU per event at equal
	// throughput); 0 sends as fast as the workers get answers.
	Rate float64
	// NewConns opens a new connection for every request (no keep-alive),
	// as a client that reconnects each time: it probes the accept path.
	NewConns bool
	// TLS, when set, is the client side of an HTTPS URL.
	TLS *tls.Config
	// Observe, when set, is called from the workers for every request
	// completed inside the measured window, with its latency and its error
	// (nil for a 200). It must be safe for concurrent use.
	Observe func(lat time.Duration, err error)
}

// genHooks run at the edges of the measured window, on the controlling
// goroutine, so the suite can read a server's CPU time exactly there.
type genHooks struct {
	Start func()
	End   func()
}

// genResult is what one generator run measured. Window figures count the
// requests that completed inside the measured window; totals count every
// request sent, warm-up and tail included (each 200 is a published message).
type genResult struct {
	Concurrency int
	Window      time.Duration
	Requests    int64           // completed with 200 inside the window
	Samples     []time.Duration // their latencies, sorted by summarize
	Latency     latencySummary
	// SchedSamples are, with a Rate, the same requests' latencies counted
	// from the moment the schedule meant to send them: a stalled server
	// also delays the requests queued behind it, which the latency from
	// the actual send hides (coordinated omission).
	SchedSamples []time.Duration
	SchedLatency latencySummary
	Sent         int64 // every request sent
	OK           int64 // every 200
	Errors       int64 // every non-200 answer or transport error
	Spooled      int64 // 200s whose answer said "spooled" (JetStream did not ack in time)
	FirstError   string
	Interrupted  bool // the context ended the run early
}

// EventsPerSecond is the measured throughput.
func (r genResult) EventsPerSecond() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Window.Seconds()
}

// Phases of a run, read by workers at each completion.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// spooledMark is how the gateway's 200 says the message went to the spool.
var spooledMark = []byte(`"outcome":"spooled"`)

// newTransport returns one keep-alive transport for c workers to loopback.
func newTransport(c int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback only: never via a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * c,
		MaxIdleConnsPerHost: 2 * c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// newTransportFor returns the transport cfg asks for: keep-alive, or a new
// connection per request.
func newTransportFor(cfg genConfig) *http.Transport {
	tr := withTLS(newTransport(cfg.Concurrency), cfg.TLS)
	tr.DisableKeepAlives = cfg.NewConns
	return tr
}

// checkLoopback refuses any URL whose host is not 127.0.0.1 or ::1.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse url: %w", err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("url %q: the load tool only sends to a loopback address such as 127.0.0.1", raw)
	}
	return nil
}

// runGen posts notifications with cfg.Concurrency workers: warm-up, then the
// measured window, then it waits for the requests in flight. It returns
// early, with Interrupted set, when ctx ends or MaxRequests is reached.
func runGen(ctx context.Context, cfg genConfig, hooks genHooks) (genResult, error) {
	if err := checkLoopback(cfg.URL); err != nil {
		return genResult{}, err
	}
	if cfg.Concurrency < 1 || cfg.Duration <= 0 || cfg.Corpus == nil {
		return genResult{}, errors.New("run generator: need concurrency >= 1, a duration and a corpus")
	}
	var runID [8]byte
	if _, err := rand.Read(runID[:]); err != nil {
		return genResult{}, fmt.Errorf("draw run id: %w", err)
	}
	tr := newTransportFor(cfg)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	g := &generator{cfg: cfg, client: client, run: binary.BigEndian.Uint64(runID[:]), begin: time.Now()}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		w := &worker{g: g, sign: newSigner(cfg.Secret), samples: make([]time.Duration, 0, 4096)}
		workers[i] = w
		wg.Go(func() { w.loop(wctx) })
	}

	// Workers stop early only when MaxRequests is reached.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()

	res := genResult{Concurrency: cfg.Concurrency}
	var start time.Time
	if sleepCtx(ctx, cfg.Warmup, stopped) {
		if hooks.Start != nil {
			hooks.Start()
		}
		start = time.Now()
		g.phase.Store(phaseMeasure)
		sleepCtx(ctx, cfg.Duration, stopped)
	}
	g.phase.Store(phaseStop)
	if !start.IsZero() {
		res.Window = time.Since(start)
		if hooks.End != nil {
			hooks.End()
		}
	}
	// Requests in flight finish (bounded by the client timeout) so that
	// every 200 is counted; only an interrupt cuts them off.
	<-stopped

	for _, w := range workers {
		res.Samples = append(res.Samples, w.samples...)
		res.SchedSamples = append(res.SchedSamples, w.schedSamples...)
		res.Requests += int64(len(w.samples))
		res.OK += w.ok
		res.Errors += w.errs
		res.Spooled += w.spooled
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
	}
	res.Sent = g.next.Load()
	if cfg.MaxRequests > 0 && res.Sent > cfg.MaxRequests {
		res.Sent = cfg.MaxRequests
	}
	res.Interrupted = ctx.Err() != nil || g.exhausted.Load()
	res.Latency = summarize(res.Samples)
	res.SchedLatency = summarize(res.SchedSamples)
	if ctx.Err() != nil {
		return res, fmt.Errorf("run generator: %w", ctx.Err())
	}
	return res, nil
}

// generator is the state shared by the workers of one run.
type generator struct {
	cfg       genConfig
	client    *http.Client
	run       uint64 // random per run, so ids never repeat across runs
	begin     time.Time
	next      atomic.Int64
	phase     atomic.Int32
	exhausted atomic.Bool // MaxRequests reached
}

// worker sends one request at a time and records its own results, so the
// hot path shares nothing but two atomics.
type worker struct {
	g       *generator
	sign    *signer
	buf     bytes.Buffer
	samples []time.Duration
	// schedSamples are latencies from the scheduled send time (Rate > 0).
	schedSamples []time.Duration
	ok           int64
	errs         int64
	spooled      int64
	firstErr     string
}

func (w *worker) loop(ctx context.Context) {
	var id [idLen]byte
	for ctx.Err() == nil && w.g.phase.Load() != phaseStop {
		seq := w.g.next.Add(1)
		if limit := w.g.cfg.MaxRequests; limit > 0 && seq > limit {
			w.g.exhausted.Store(true)
			return
		}
		var due time.Time
		if rate := w.g.cfg.Rate; rate > 0 {
			due = w.g.begin.Add(time.Duration(float64(seq) / rate * float64(time.Second)))
			if !sleepCtx(ctx, time.Until(due), nil) {
				return
			}
		}
		noticeID(w.g.run, uint64(seq), &id)
		body := w.g.cfg.Corpus.body(uint64(seq), &id)
		sig := w.sign.sign(body)
		begin := time.Now()
		err := w.post(ctx, body, sig)
		end := time.Now()
		lat := end.Sub(begin)
		if err != nil && ctx.Err() != nil {
			return // interrupted: not the server's fault
		}
		measured := w.g.phase.Load() == phaseMeasure
		if measured && w.g.cfg.Observe != nil {
			w.g.cfg.Observe(lat, err)
		}
		if err != nil {
			w.errs++
			if w.firstErr == "" {
				w.firstErr = err.Error()
			}
			continue
		}
		w.ok++
		if measured {
			w.samples = append(w.samples, lat)
			if !due.IsZero() {
				w.schedSamples = append(w.schedSamples, end.Sub(due))
			}
		}
	}
}

// post sends one notification and reads the whole answer; any status but
// 200 is an error.
func (w *worker) post(ctx context.Context, body []byte, sig string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.g.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Agora-Signature-V2", sig)
	resp, err := w.g.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, w.buf.Bytes())
	}
	if bytes.Contains(w.buf.Bytes(), spooledMark) {
		w.spooled++
	}
	return nil
}

// sleepCtx sleeps for d unless ctx ends or stop closes first; it reports
// whether it slept the whole time.
func sleepCtx(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}
