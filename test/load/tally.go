package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// statusLabel is "HTTP nnn" from the start of an HTTP/1.1 answer.
func statusLabel(b []byte) string {
	if f := strings.Fields(string(b)); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
		return "HTTP " + f[1]
	}
	return "data"
}

// errLabel names a transport error's kind, for counting.
func errLabel(err error) string {
	var ne net.Error
	prefix := ""
	if strings.Contains(err.Error(), "dial") {
		prefix = "dial "
	}
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return prefix + "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return prefix + "refused"
	case errors.Is(err, syscall.EPIPE):
		return prefix + "broken pipe"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return prefix + "client out of fds"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return prefix + "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return prefix + "timeout"
	default:
		return prefix + "error"
	}
}

// tally counts outcomes by label; safe for concurrent use.
type tally struct {
	mu    sync.Mutex
	n     map[string]int64
	other string // the first unlabelled error, for the report
}

func (t *tally) add(label string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int64{}
	}
	t.n[label]++
}

// record counts an answer's status, or err's label; an error caused by
// the attack's own end (ctx done) is not counted.
func (t *tally) record(ctx context.Context, code int, err error) {
	if err == nil {
		t.add(strconv.Itoa(code))
		return
	}
	if ctx.Err() != nil {
		return
	}
	label := errLabel(err)
	t.add(label)
	if strings.HasSuffix(label, "error") {
		t.mu.Lock()
		if t.other == "" {
			t.other = err.Error()
		}
		t.mu.Unlock()
	}
}

// total is the number of outcomes counted.
func (t *tally) total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for _, v := range t.n {
		n += v
	}
	return n
}

// count is the number of outcomes with label.
func (t *tally) count(label string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[label]
}

// String lists the outcomes, most frequent first: "401 ×1234, reset ×3".
func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.n))
	for k := range t.n {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if t.n[a] != t.n[b] {
			return int(t.n[b] - t.n[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, t.n[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// lifetimes collects connection lifetimes; safe for concurrent use.
type lifetimes struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *lifetimes) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// summary is the distribution of the lifetimes collected.
func (l *lifetimes) summary() latencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	return summarize(slices.Clone(l.d))
}
