package ncsip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestReason(t *testing.T) {
	attempt := func(kind error) error {
		return &attemptError{endpoint: "https://x/v1/ncs/ip", kind: kind, detail: "d"}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"foreign error", errors.New("boom"), "network"},
		{"unauthorized", attempt(ErrUnauthorized), "unauthorized"},
		{"not found", attempt(errNotFound), "not_found"},
		{"rate limited", attempt(errRateLimited), "rate_limited"},
		{"server error", attempt(errServer), "server_error"},
		{"timeout", attempt(errTimeout), "timeout"},
		{"network", attempt(errNetwork), "network"},
		{"bad response", attempt(errBadResponse), "bad_response"},
		{"empty", attempt(ErrEmpty), "empty"},
		{"canceled", attempt(context.Canceled), "canceled"},
		{"caller's deadline", attempt(context.DeadlineExceeded), "timeout"},
		{"kind wins over its cause", &attemptError{kind: errTimeout, cause: context.Canceled}, "timeout"},
		{"last attempt wins", &fetchError{attempts: []error{attempt(errNotFound), attempt(errServer)}}, "server_error"},
		{"wrapped by the caller", fmt.Errorf("refresh: %w", &fetchError{attempts: []error{attempt(ErrEmpty)}}), "empty"},
		{"canceled while waiting", &fetchError{attempts: []error{attempt(errServer), fmt.Errorf("wait: %w", context.Canceled)}}, "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Reason(tt.err)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got != "" && !slices.Contains(Reasons(), got) {
				t.Errorf("got %q, which Reasons does not list", got)
			}
		})
	}
}

func TestFetchErrorText(t *testing.T) {
	one := &attemptError{endpoint: "https://a/v1/ncs/ip", detail: "404 Not Found"}
	two := &attemptError{endpoint: "https://b/v1/ncs/ip", detail: "503 Service Unavailable"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"one attempt", &fetchError{attempts: []error{one}}, "GET https://a/v1/ncs/ip: 404 Not Found"},
		{"two attempts", &fetchError{attempts: []error{one, two}},
			"2 attempts failed: GET https://a/v1/ncs/ip: 404 Not Found; GET https://b/v1/ncs/ip: 503 Service Unavailable"},
		{"canceled while waiting", &fetchError{attempts: []error{two, errors.New("wait 1s before attempt 2: context canceled")}},
			"1 attempt failed: GET https://b/v1/ncs/ip: 503 Service Unavailable; wait 1s before attempt 2: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
