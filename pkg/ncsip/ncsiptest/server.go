// Package ncsiptest fakes Agora's GET /v1/ncs/ip (the NCS address list) over
// real HTTP, errors included, for tests of any package and for a simulator
// that serves Handler on a real port.
package ncsiptest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Path is the only route the fake serves; others get Agora's 404.
const Path = "/v1/ncs/ip"

// HugeBodySize is the size of the Huge answer, far above any sane limit.
const HugeBodySize = 16 << 20

// Fault is a broken 200 answer.
type Fault int

const (
	// Truncated answers 200 with the JSON cut in half (a complete HTTP
	// message whose body is not a complete JSON document).
	Truncated Fault = iota + 1
	// Garbage answers 200 with an HTML page, as a captive proxy would.
	Garbage
	// Huge answers 200 with a valid JSON list of HugeBodySize bytes, streamed
	// without Content-Length.
	Huge
	// SlowBody sends the headers and half the body at once, waits the delay
	// given to SetDelay, then sends the rest.
	SlowBody
)

// messages are the bodies Agora's gateway sends with its error statuses.
var messages = map[int]string{
	http.StatusUnauthorized:        "Invalid authentication credentials",
	http.StatusForbidden:           "You cannot consume this service",
	http.StatusNotFound:            "no Route matched with those values",
	http.StatusTooManyRequests:     "API rate limit exceeded",
	http.StatusInternalServerError: "An unexpected error occurred",
	http.StatusBadGateway:          "An invalid response was received from the upstream server",
}

// answer is one queued reply: a status with Agora's body, or a fault.
type answer struct {
	status int
	fault  Fault
}

// Handler serves Agora's NCS address list. Settings can change while it
// serves; it is safe for concurrent use.
type Handler struct {
	customerID, customerSecret string
	requests                   atomic.Int64

	mu         sync.Mutex
	ips        []string
	queue      []answer
	delay      time.Duration
	retryAfter string
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a fake that accepts only these credentials and lists ips.
func NewHandler(customerID, customerSecret string, ips ...string) *Handler {
	return &Handler{customerID: customerID, customerSecret: customerSecret, ips: slices.Clone(ips)}
}

// SetIPs replaces the listed addresses; strings are sent as given, so
// invalid ones can be tested too.
func (h *Handler) SetIPs(ips []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ips = slices.Clone(ips)
}

// SetDelay makes every answer on Path wait d before its headers (SlowBody: in the
// middle of its body). The wait ends early if the client goes away.
func (h *Handler) SetDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delay = d
}

// SetRetryAfter sets the Retry-After header of 429 answers ("" for none).
func (h *Handler) SetRetryAfter(v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.retryAfter = v
}

// QueueStatus makes the next authorised requests on Path get these statuses,
// one per request, each with Agora's body for it.
func (h *Handler) QueueStatus(codes ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range codes {
		h.queue = append(h.queue, answer{status: c})
	}
}

// QueueFault makes the next authorised requests on Path get these broken
// answers; it shares one first-in first-out queue with QueueStatus.
func (h *Handler) QueueFault(faults ...Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range faults {
		h.queue = append(h.queue, answer{fault: f})
	}
}

// Requests returns how many requests arrived, on any path.
func (h *Handler) Requests() int {
	return int(h.requests.Load())
}

// ServeHTTP answers like Agora: route first, then HTTP Basic auth, then a
// queued answer if any, else the list.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	if r.URL.Path != Path || r.Method != http.MethodGet {
		writeMessage(w, http.StatusNotFound)
		return
	}
	authorized := h.authorized(r)
	h.mu.Lock()
	var next answer
	if authorized && len(h.queue) > 0 {
		next, h.queue = h.queue[0], h.queue[1:]
	}
	ips, delay, retryAfter := slices.Clone(h.ips), h.delay, h.retryAfter
	h.mu.Unlock()

	if next.fault != SlowBody && !wait(r.Context(), delay) {
		return
	}
	if !authorized {
		if _, _, ok := r.BasicAuth(); !ok {
			writeJSON(w, http.StatusUnauthorized, []byte(`{"message":"Unauthorized"}`))
			return
		}
		writeMessage(w, http.StatusUnauthorized)
		return
	}
	if next.status != 0 {
		if next.status == http.StatusTooManyRequests && retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeMessage(w, next.status)
		return
	}

	body := listBody(ips)
	switch next.fault {
	case Truncated:
		writeJSON(w, http.StatusOK, body[:len(body)/2])
	case Garbage:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<html><body><h1>Welcome to nginx!</h1></body></html>\n"))
	case Huge:
		writeHuge(w)
	case SlowBody:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		half := len(body) / 2
		if _, err := w.Write(body[:half]); err != nil {
			return
		}
		_ = http.NewResponseController(w).Flush()
		if !wait(r.Context(), delay) {
			return
		}
		_, _ = w.Write(body[half:])
	default:
		writeJSON(w, http.StatusOK, body)
	}
}

// authorized checks the request's HTTP Basic credentials in constant time.
func (h *Handler) authorized(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	return ok &&
		subtle.ConstantTimeCompare([]byte(id), []byte(h.customerID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(h.customerSecret)) == 1
}

// listBody renders the documented answer shape.
func listBody(ips []string) []byte {
	type host struct {
		PrimaryIP string `json:"primaryIP"`
	}
	var v struct {
		Data struct {
			Service struct {
				Hosts []host `json:"hosts"`
			} `json:"service"`
		} `json:"data"`
	}
	v.Data.Service.Hosts = []host{}
	for _, ip := range ips {
		v.Data.Service.Hosts = append(v.Data.Service.Hosts, host{PrimaryIP: ip})
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("ncsiptest: marshal list: " + err.Error()) // strings always marshal
	}
	return b
}

// writeHuge streams a valid list of HugeBodySize bytes, stopping when the
// client goes away.
func writeHuge(w http.ResponseWriter) {
	const entry = `{"primaryIP":"198.51.100.7"},`
	head := []byte(`{"data":{"service":{"hosts":[`)
	tail := []byte(`{"primaryIP":"198.51.100.7"}]}}}`)
	chunk := make([]byte, 0, 32<<10)
	for len(chunk)+len(entry) <= cap(chunk) {
		chunk = append(chunk, entry...)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head); err != nil {
		return
	}
	for sent := len(head) + len(tail); sent < HugeBodySize; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
	_, _ = w.Write(tail)
}

func writeMessage(w http.ResponseWriter, status int) {
	msg, ok := messages[status]
	if !ok {
		msg = http.StatusText(status)
	}
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// wait sleeps d unless ctx ends first; it reports whether to go on.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Server is a Handler behind an httptest.Server on loopback.
type Server struct {
	*httptest.Server
	*Handler
}

// NewServer starts a fake for tb and closes it when tb ends.
func NewServer(tb testing.TB, customerID, customerSecret string, ips ...string) *Server {
	tb.Helper()
	h := NewHandler(customerID, customerSecret, ips...)
	s := &Server{Server: httptest.NewServer(h), Handler: h}
	tb.Cleanup(s.Close)
	return s
}

// Endpoint returns the URL of the fake's GET /v1/ncs/ip.
func (s *Server) Endpoint() string {
	return s.URL + Path
}
