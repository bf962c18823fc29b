package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Error answers, fixed so that nothing from the request is ever echoed.
var (
	answerMissingSignature = []byte(`{"error":"missing signature"}`)
	answerBadSignature     = []byte(`{"error":"bad signature"}`)
	answerBodyTooLarge     = []byte(`{"error":"body too large"}`)
	answerMethodNotAllowed = []byte(`{"error":"method not allowed"}`)
	answerReadError        = []byte(`{"error":"cannot read body"}`)
	answerUnavailable      = []byte(`{"error":"temporarily unavailable"}`)
	answerStale            = []byte(`{"error":"stale notification: notifyMs too old"}`)
	answerFuture           = []byte(`{"error":"notification from the future: notifyMs too far ahead"}`)
)

// statusNotFresh answers a signed notification whose notifyMs is outside
// the accepted window. Not 401: the signature is good and an operator must
// not chase a secret. A 4xx of its own (422: understood, authenticated,
// refused for its content) keeps it apart from malformed requests (400) in
// the duration histogram. Agora retries any non-200 with a fresh notifyMs,
// so a genuine notification delayed by a hiccup still gets through.
const statusNotFresh = http.StatusUnprocessableEntity

// jsonContentType is the Content-Type of every answer, one slice for all
// of them (net/http only reads it), to save an allocation per request.
var jsonContentType = []string{echo.MIMEApplicationJSON}

// eagerBodyBytes is the largest announced Content-Length allocated before
// the body arrives; Agora's notifications are a few KiB.
const eagerBodyBytes = 64 << 10

// errBodyTooLarge means the body exceeds the configured limit.
var errBodyTooLarge = errors.New("body too large")

// bodyBufs serves bodies sent without a Content-Length or with a large
// one; each body is copied out before its buffer returns here, because a
// publisher may keep Notification.Body (the spool does).
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handleNotify serves POST <path>: read, verify, parse, check freshness,
// publish, answer.
func (s *Server) handleNotify(c echo.Context) (err error) {
	defer s.recovered(&err)
	start := time.Now()
	now := start
	if s.clock != nil {
		now = s.clock()
	}
	s.metrics.received.Inc()
	r, w := c.Request(), c.Response()

	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			s.reject(w, r, start, http.StatusRequestEntityTooLarge, reasonBodyTooLarge, answerBodyTooLarge)
		} else {
			s.reject(w, r, start, http.StatusBadRequest, reasonReadError, answerReadError)
		}
		return nil
	}
	// Verify before anything looks inside the body.
	if err := s.verifier.Verify(body, r.Header); err != nil {
		if errors.Is(err, ErrMissingSignature) {
			s.reject(w, r, start, http.StatusUnauthorized, reasonMissingSignature, answerMissingSignature)
		} else {
			s.reject(w, r, start, http.StatusUnauthorized, reasonBadSignature, answerBadSignature)
		}
		return nil
	}

	n := Parse(body, now.UTC())
	if !n.NotifyAt.IsZero() && !s.fresh(w, r, start, now, n.NotifyAt, n.ID) {
		return nil
	}
	// Detached from the request: a client that hangs up must not abort a
	// write to the spool half-way. Bounded: a stuck publisher must not hold
	// the answer past Agora's 10 s.
	ctx, cancel := context.WithDeadline(context.WithoutCancel(r.Context()), start.Add(s.cfg.PublishTimeout))
	outcome, err := s.pub.Publish(ctx, n)
	cancel()
	if err == nil && outcome != Published && outcome != Spooled {
		err = fmt.Errorf("publish: unexpected outcome %d without error", int(outcome))
	}
	if err != nil {
		s.metrics.rejected.WithLabelValues(reasonUnavailable).Inc()
		s.answer(w, start, http.StatusServiceUnavailable, answerUnavailable)
		reason := zap.Skip()
		if n.DeadLetterReason != "" {
			reason = zap.String("reason", n.DeadLetterReason)
		}
		s.log.Error("notification not stored",
			zap.String("notice_id", n.ID),
			zap.String("product_id", n.ProductID),
			zap.String("event_type", n.EventType),
			zap.String("outcome", "unavailable"),
			reason,
			zap.Duration("latency", time.Since(start)),
			zap.String("remote_addr", r.RemoteAddr),
			zap.Error(err))
		return nil
	}

	s.metrics.accept(outcome)
	if n.DeadLetterReason != "" {
		s.metrics.deadlettered.WithLabelValues(n.DeadLetterReason).Inc()
		s.answer(w, start, http.StatusOK, okAnswer("", outcome, n.DeadLetterReason))
		s.log.Warn("notification deadlettered",
			zap.String("product_id", n.ProductID),
			zap.String("event_type", n.EventType),
			zap.String("outcome", "deadletter"),
			zap.String("reason", n.DeadLetterReason),
			zap.String("delivery", outcome.String()),
			zap.String("message_id", n.Key()),
			zap.Duration("latency", time.Since(start)),
			zap.String("remote_addr", r.RemoteAddr))
		return nil
	}
	buf := answerBufs.Get().(*[]byte)
	*buf = appendOKAnswer((*buf)[:0], n.ID, outcome, "")
	s.answer(w, start, http.StatusOK, *buf)
	answerBufs.Put(buf)
	if ce := s.log.Check(zap.InfoLevel, "notification accepted"); ce != nil {
		logAccepted(ce, &n, outcome, start, r.RemoteAddr)
	}
	return nil
}

// logAccepted writes the info line of an accepted notification, the one
// line per request at the default level. Its cost is the encoding: the
// fields are plain strings (no reflection), the latency is taken from the
// entry's own clock reading instead of a second one, and the fields' array
// is recycled: a variadic slice passed to a logger escapes, one allocation
// per request otherwise. Cores encode fields during Write and keep no
// reference to the slice.
func logAccepted(ce *zapcore.CheckedEntry, n *Notification, outcome Outcome, start time.Time, remoteAddr string) {
	fs := acceptedFields.Get().(*[6]zap.Field)
	fs[0] = zap.String("notice_id", n.ID)
	fs[1] = zap.String("product_id", n.ProductID)
	fs[2] = zap.String("event_type", n.EventType)
	fs[3] = zap.String("outcome", outcome.String())
	fs[4] = zap.Duration("latency", ce.Time.Sub(start))
	fs[5] = zap.String("remote_addr", remoteAddr)
	ce.Write(fs[:]...)
	*fs = [6]zap.Field{}
	acceptedFields.Put(fs)
}

// answerBufs and acceptedFields recycle the 200 answer's bytes and the
// accepted log line's fields across requests.
var (
	answerBufs     = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}
	acceptedFields = sync.Pool{New: func() any { return new([6]zap.Field) }}
)

// handleOtherMethod answers every method but POST on the webhook path.
func (s *Server) handleOtherMethod(c echo.Context) (err error) {
	defer s.recovered(&err)
	start := time.Now()
	s.metrics.received.Inc()
	r, w := c.Request(), c.Response()
	w.Header().Set(echo.HeaderAllow, http.MethodPost)
	s.metrics.rejected.WithLabelValues(reasonMethodNotAllowed).Inc()
	s.answer(w, start, http.StatusMethodNotAllowed, answerMethodNotAllowed)
	s.rejectLog.Warn("notification rejected",
		zap.String("outcome", "rejected"),
		zap.String("reason", reasonMethodNotAllowed),
		zap.String("method", r.Method),
		zap.Duration("latency", time.Since(start)),
		zap.String("remote_addr", r.RemoteAddr))
	return nil
}

// fresh records the skew between the host's clock and notifyAt, and reports
// whether notifyAt is inside the accepted window; when it is not, it
// answers, counts and logs (sampled) the refusal of notification id.
func (s *Server) fresh(w http.ResponseWriter, r *http.Request, start, now, notifyAt time.Time, id string) bool {
	skew := now.Sub(notifyAt)
	s.skew.record(skew, now)
	s.metrics.skew.Set(skew.Seconds())
	reason, answer := "", []byte(nil)
	switch {
	case skew > s.cfg.MaxNotifyAge:
		reason, answer = reasonStale, answerStale
	case -skew > s.cfg.MaxNotifyFuture:
		reason, answer = reasonFuture, answerFuture
	default:
		return true
	}
	s.metrics.rejected.WithLabelValues(reason).Inc()
	s.answer(w, start, statusNotFresh, answer)
	s.rejectLog.Warn("notification rejected",
		zap.String("outcome", "rejected"),
		zap.String("reason", reason),
		zap.Int("status", statusNotFresh),
		zap.String("notice_id", id),
		zap.Duration("notify_skew", skew),
		zap.Duration("latency", time.Since(start)),
		zap.String("remote_addr", r.RemoteAddr))
	return false
}

// reject answers an error, counts it by reason and logs it at warn.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, start time.Time, code int, reason string, body []byte) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	s.answer(w, start, code, body)
	s.rejectLog.Warn("notification rejected",
		zap.String("outcome", "rejected"),
		zap.String("reason", reason),
		zap.Int("status", code),
		zap.Duration("latency", time.Since(start)),
		zap.String("remote_addr", r.RemoteAddr))
}

// answer writes a JSON answer and records its duration. A write error means
// the client is gone; there is nobody left to tell.
func (s *Server) answer(w http.ResponseWriter, start time.Time, code int, body []byte) {
	w.Header()[echo.HeaderContentType] = jsonContentType
	w.WriteHeader(code)
	_, _ = w.Write(body)
	s.metrics.observe(code, time.Since(start).Seconds())
}

// okAnswer builds the 200 body, e.g.
// {"status":"ok","noticeId":"...","outcome":"published"}.
func okAnswer(id string, o Outcome, deadletter string) []byte {
	return appendOKAnswer(make([]byte, 0, 80+len(id)), id, o, deadletter)
}

// appendOKAnswer appends okAnswer's body to b.
func appendOKAnswer(b []byte, id string, o Outcome, deadletter string) []byte {
	b = append(b, `{"status":"ok"`...)
	if id != "" {
		b = append(b, `,"noticeId":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"outcome":"`...)
	b = append(b, o.String()...)
	b = append(b, '"')
	if deadletter != "" {
		b = append(b, `,"deadletter":"`...)
		b = append(b, deadletter...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. s is header-safe (valid
// UTF-8, see headerValue), so only quotes, backslashes and control
// characters need escaping.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// readBody reads the whole body, never more than limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if r.ContentLength >= 0 && r.ContentLength <= eagerBodyBytes {
		// net/http stops the body at Content-Length: one exact allocation.
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		return body, nil
	}
	// Unknown or large length: grow with what arrives, so a client that
	// announces a megabyte and then trickles costs what it sent, not what
	// it announced.
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer bodyBufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(buf.Len()) > limit {
		return nil, errBodyTooLarge
	}
	return bytes.Clone(buf.Bytes()), nil
}
