package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// measurement is one generator run against one target with the CPU time
// its processes spent inside the measured window.
type measurement struct {
	res     genResult
	cpu     time.Duration // the target process
	natsCPU time.Duration // the separate NATS process, if any
	genCPU  time.Duration // the generator (this process)
	peakRSS int64         // the target's VmHWM over the run, bytes
	rssErr  error         // why peakRSS may cover more than the run
}

// cpuReader samples the CPU time of a fixed set of processes; errors are
// kept and reported once at the end, not at the window's edge.
type cpuReader struct {
	pids []int
	at   []time.Duration
	err  error
}

func (c *cpuReader) read() []time.Duration {
	out := make([]time.Duration, len(c.pids))
	for i, pid := range c.pids {
		if pid == 0 {
			continue
		}
		d, err := procCPU(pid)
		if err != nil && c.err == nil {
			c.err = err
		}
		out[i] = d
	}
	return out
}

// measure runs the generator at t with c workers for d (after warm), and
// reads the CPU time of t, of nh (the NATS process when it is another
// process than t; nil otherwise) and of the generator at the window's edges.
func measure(ctx context.Context, t *target, nh *natsHost, base genConfig, c int, warm, d time.Duration) (measurement, error) {
	natsPID := 0
	if nh != nil && nh.proc != t.proc {
		natsPID = nh.pid()
	}
	cr := &cpuReader{pids: []int{t.pid(), natsPID, os.Getpid()}}
	var m measurement
	// Reset before the warm-up, so the peak covers this run only (the
	// process may have served earlier runs); if the kernel refuses, the
	// peak covers the process's life and the report says so.
	m.rssErr = resetPeakRSS(t.pid())

	var before []time.Duration
	cfg := base
	cfg.URL, cfg.Concurrency, cfg.Warmup, cfg.Duration = t.url, c, warm, d
	res, err := runGen(ctx, cfg, genHooks{
		Start: func() { before = cr.read() },
		End: func() {
			after := cr.read()
			m.cpu, m.natsCPU, m.genCPU = after[0]-before[0], after[1]-before[1], after[2]-before[2]
		},
	})
	m.res = res
	if err != nil {
		return m, err
	}
	if t.exited() {
		return m, fmt.Errorf("measure %s: it exited during the run: %v\n%s", t.name, t.err, t.logTail(20))
	}
	if cr.err != nil {
		return m, fmt.Errorf("measure %s: %w", t.name, cr.err)
	}
	if m.peakRSS, err = procPeakRSS(t.pid()); err != nil {
		return m, fmt.Errorf("measure %s: %w", t.name, err)
	}
	return m, nil
}

// pool merges measurements of one target taken in several windows (the
// minimal receiver's two halves) as if they were one long window.
func pool(ms ...measurement) measurement {
	var out measurement
	var errs []error
	for _, m := range ms {
		r := &out.res
		r.Concurrency = m.res.Concurrency
		r.Window += m.res.Window
		r.Requests += m.res.Requests
		r.Samples = append(r.Samples, m.res.Samples...)
		r.SchedSamples = append(r.SchedSamples, m.res.SchedSamples...)
		r.Sent += m.res.Sent
		r.OK += m.res.OK
		r.Errors += m.res.Errors
		r.Spooled += m.res.Spooled
		r.Interrupted = r.Interrupted || m.res.Interrupted
		if r.FirstError == "" {
			r.FirstError = m.res.FirstError
		}
		out.cpu += m.cpu
		out.natsCPU += m.natsCPU
		out.genCPU += m.genCPU
		out.peakRSS = max(out.peakRSS, m.peakRSS)
		errs = append(errs, m.rssErr)
	}
	out.rssErr = errors.Join(errs...)
	out.res.Latency = summarize(out.res.Samples)
	out.res.SchedLatency = summarize(out.res.SchedSamples)
	return out
}

// perEvent is CPU time per measured event in microseconds.
func perEvent(cpu time.Duration, events int64) float64 {
	if events == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(events)
}
