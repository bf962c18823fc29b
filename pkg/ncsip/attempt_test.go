package ncsip

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", -1},
		{"2", 2 * time.Second},
		{" 0 ", 0},
		{"-3", -1},
		{"soon", -1},
		{"99999999999999999", maxRetryAfterSeconds * time.Second},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.value, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q): got %s, want %s", tt.value, got, tt.want)
		}
	}
}

func TestStatusLine(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{401, "401 Unauthorized"},
		{429, "429 Too Many Requests"},
		{599, "599"},
	}
	for _, tt := range tests {
		if got := statusLine(tt.code); got != tt.want {
			t.Errorf("statusLine(%d): got %q, want %q", tt.code, got, tt.want)
		}
	}
}
