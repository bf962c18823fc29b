package ncsip

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// ErrUnauthorized means Agora refused the customer ID and secret (401 or 403).
var ErrUnauthorized = errors.New("unauthorized")

// ErrEmpty means an answer held no usable address; it must never be applied.
var ErrEmpty = errors.New("no usable address")

// The other failure kinds only feed Reason: no caller branches on them.
var (
	errNotFound    = errors.New("not found")
	errRateLimited = errors.New("rate limited")
	errServer      = errors.New("server error")
	errTimeout     = errors.New("timeout")
	errNetwork     = errors.New("network error")
	errBadResponse = errors.New("bad response")
	errTooMany     = errors.New("too many addresses")
)

// reasons maps each failure kind to its metric label; Reason walks it in order.
var reasons = []struct {
	kind   error
	reason string
}{
	{ErrUnauthorized, "unauthorized"},
	{errNotFound, "not_found"},
	{errRateLimited, "rate_limited"},
	{errServer, "server_error"},
	{errTimeout, "timeout"},
	{errNetwork, "network"},
	{errBadResponse, "bad_response"},
	{errTooMany, "too_many"},
	{ErrEmpty, "empty"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "timeout"},
}

// Reason returns the metric label of an error from Fetch or decode: one of
// unauthorized, not_found, rate_limited, server_error, timeout, network,
// bad_response, too_many, empty or canceled. It returns "" for nil and "network" for an
// error this package did not make. For a fetch of several attempts the label
// is the last attempt's.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var ae *attemptError
	if errors.As(err, &ae) {
		err = ae.kind
	}
	for _, r := range reasons {
		if errors.Is(err, r.kind) {
			return r.reason
		}
	}
	return "network"
}

// Reasons lists every label Reason can return, so metrics can be
// initialised before the first failure.
func Reasons() []string {
	return []string{"unauthorized", "not_found", "rate_limited", "server_error",
		"timeout", "network", "bad_response", "too_many", "empty", "canceled"}
}

// attemptError is the failure of one HTTP attempt. Its text is written for
// an operator and never holds the credentials.
type attemptError struct {
	endpoint string
	status   int    // HTTP status, 0 when none was received
	kind     error  // one of the sentinels above, or a context error
	detail   string // what went wrong, already sanitised
	cause    error  // underlying error, may be nil
}

func (e *attemptError) Error() string {
	return "GET " + e.endpoint + ": " + e.detail
}

func (e *attemptError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// fetchError is the failure of a whole fetch. It unwraps to the last attempt
// so that errors.Is and Reason describe how the fetch ended, and its text
// lists every attempt so the operator sees each endpoint's fault.
type fetchError struct {
	attempts []error
}

func (e *fetchError) Error() string {
	if len(e.attempts) == 1 {
		return e.attempts[0].Error()
	}
	n := 0
	parts := make([]string, len(e.attempts))
	for i, a := range e.attempts {
		parts[i] = a.Error()
		if _, ok := a.(*attemptError); ok {
			n++
		}
	}
	head := strconv.Itoa(n) + " attempts failed: "
	if n == 1 {
		head = "1 attempt failed: "
	}
	return head + strings.Join(parts, "; ")
}

func (e *fetchError) Unwrap() error {
	return e.attempts[len(e.attempts)-1]
}
