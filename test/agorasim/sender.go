package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// agoraTimeout is how long Agora waits for the 200 (agora/NCS.md section 3).
const agoraTimeout = 10 * time.Second

// maxAnswerBytes caps how much of the gateway's answer is read.
const maxAnswerBytes = 64 << 10

// sender posts notifications to the gateway the way Agora's notification
// service does, and counts what happened. It is not safe for concurrent use.
type sender struct {
	client    *http.Client
	url       string
	secret    string
	withSHA1  bool
	retries   int           // attempts after the first; Agora stops after 3
	retryWait time.Duration // the first retry is immediate, then this, doubling
	pResend   float64       // chance that a 200 counts as lost, so Agora resends
	rng       *rand.Rand
	now       func() time.Time
	out       io.Writer

	lastMs int64 // the latest notifyMs used
	stats  stats
}

// stats are the run's counts, printed as the summary.
type stats struct {
	notifications int
	ids           map[string]bool
	posts         int
	ok            int // 200 with a JSON body
	notOK         int // any other answer
	netErrors     int // no answer at all
	resends       int
	duplicates    int
	reordered     int
	unauthorized  int      // 401 answers: the secrets differ
	undelivered   []string // noticeIds that never got a 200
}

// deliver sends one notification: the first attempt, Agora's resends (each
// with a new notifyMs, so new bytes and a new signature) while the answer is
// not a 200 or counts as lost, and the duplicate if the plan asks for one.
// It returns an error only when ctx ends.
func (s *sender) deliver(ctx context.Context, d delivery) error {
	if s.stats.ids == nil {
		s.stats.ids = map[string]bool{}
	}
	s.stats.notifications++
	s.stats.ids[d.n.noticeID] = true
	if d.reordered {
		s.stats.reordered++
	}
	var body []byte
	var hdr http.Header
	delivered := false
	for attempt := 1; attempt <= 1+s.retries; attempt++ {
		kind := "send"
		if attempt > 1 {
			kind = "resend"
			s.stats.resends++
			if err := sleep(ctx, s.retryDelay(attempt)); err != nil {
				return err
			}
		}
		body = d.n.body(s.notifyMs())
		hdr = signatureHeaders(s.secret, body, s.withSHA1)
		ok, err := s.post(ctx, d, attempt, kind, body, hdr)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		delivered = true
		if attempt <= s.retries && s.rng.Float64() < s.pResend {
			fmt.Fprintf(s.out, "%s the 200 counts as lost (as after a timeout at Agora): resending\n", s.label(d))
			continue
		}
		break
	}
	if !delivered {
		s.stats.undelivered = append(s.stats.undelivered, d.n.noticeID)
	}
	if d.duplicated {
		s.stats.duplicates++
		if _, err := s.post(ctx, d, 0, "duplicate", body, hdr); err != nil {
			return err
		}
	}
	return nil
}

// unreachable reports that nothing was ever answered: a notification went
// undelivered with network errors only, before any 200.
func (s *sender) unreachable() bool {
	return s.stats.ok == 0 && s.stats.notOK == 0 && len(s.stats.undelivered) > 0
}

// retryDelay is the wait before attempt (2 or more): none, then retryWait,
// doubling, as Agora resends at once and then at growing intervals.
func (s *sender) retryDelay(attempt int) time.Duration {
	if attempt <= 2 {
		return 0
	}
	return s.retryWait << (attempt - 3)
}

// notifyMs returns the current time in ms, strictly after the previous
// value, so that every attempt's body differs from the one before it.
func (s *sender) notifyMs() int64 {
	ms := s.now().UnixMilli()
	if ms <= s.lastMs {
		ms = s.lastMs + 1
	}
	s.lastMs = ms
	return ms
}

// post sends body once and prints one line. It reports whether the gateway
// answered as Agora requires (200 with a JSON body); the error is only ever
// ctx's.
func (s *sender) post(ctx context.Context, d delivery, attempt int, kind string, body []byte, hdr http.Header) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	req.Header = hdr.Clone()
	req.Header.Set("User-Agent", "agorasim")
	s.stats.posts++
	start := time.Now()
	resp, err := s.client.Do(req)
	var result string
	ok := false
	switch {
	case err != nil && ctx.Err() != nil:
		return false, fmt.Errorf("post notification: %w", ctx.Err())
	case err != nil:
		s.stats.netErrors++
		result = "error: " + shortError(err)
	default:
		answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
		_ = resp.Body.Close()
		result = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode == http.StatusUnauthorized {
			s.stats.unauthorized++
		}
		switch {
		case readErr != nil:
			result += " (answer cut: " + shortError(readErr) + ")"
		case resp.StatusCode == http.StatusOK && !json.Valid(answer):
			result += " (answer is not JSON: Agora counts it as a failure)"
		case resp.StatusCode == http.StatusOK:
			ok = true
		}
	}
	latency := time.Since(start)
	if ok {
		s.stats.ok++
	} else if err == nil {
		s.stats.notOK++
	}
	if attempt > 0 {
		kind += " " + strconv.Itoa(attempt)
	}
	tag := ""
	if d.reordered {
		tag = " out-of-order"
	}
	fmt.Fprintf(s.out, "%s type=%-2d %-36s notice=%s %-11s -> %s %s%s\n",
		s.label(d), d.n.eventType, d.n.msgName, d.n.noticeID, kind, result, latency.Round(10*time.Microsecond), tag)
	return ok, nil
}

// label names a notification's session and sequence at the start of a line.
func (s *sender) label(d delivery) string {
	if d.n.session == 0 {
		return "health     "
	}
	return fmt.Sprintf("s%d seq=%-3d", d.n.session, d.n.sequence)
}

// summary prints the counts and what the gateway's stream should hold.
func (s *sender) summary(w io.Writer) {
	st := s.stats
	fmt.Fprintf(w, "summary: notifications=%d distinct_notice_ids=%d posts=%d status_200=%d other_answers=%d network_errors=%d resends=%d duplicates=%d out_of_order=%d undelivered=%d\n",
		st.notifications, len(st.ids), st.posts, st.ok, st.notOK, st.netErrors, st.resends, st.duplicates, st.reordered, len(st.undelivered))
	fmt.Fprintf(w, "summary: a gateway that deduplicates on noticeId keeps %d new message(s) (fewer if these ids were sent before within its duplicate window)\n",
		len(st.ids)-len(st.undelivered))
}

// err reports the notifications that never got a 200.
func (s *sender) err() error {
	n := len(s.stats.undelivered)
	if n == 0 {
		return nil
	}
	ids := s.stats.undelivered
	if len(ids) > 3 {
		ids = append(ids[:3:3], "...")
	}
	hint := ""
	switch {
	case s.stats.unauthorized > 0:
		hint = " (401: does -secret match the gateway's webhook secret?)"
	case s.stats.netErrors > 0:
		hint = fmt.Sprintf(" (is the gateway listening on %s?)", s.url)
	}
	return fmt.Errorf("%d notification(s) never got a 200 with a JSON body after %d attempt(s)%s: %s",
		n, 1+s.retries, hint, strings.Join(ids, ", "))
}

// shortError drops the url.Error wrapping (method and URL) from err.
func shortError(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("wait: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
