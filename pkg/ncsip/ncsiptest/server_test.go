package ncsiptest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testID     = "cust-id"
	testSecret = "cust-secret"
)

type reply struct {
	status     int
	body       string
	retryAfter string
}

func get(t *testing.T, url, id, secret string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id != "" || secret != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return reply{status: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After")}
}

func TestServerAnswers(t *testing.T) {
	s := NewServer(t, testID, testSecret, "198.51.100.1", "2001:db8::1")
	tests := []struct {
		name       string
		url        string
		id, secret string
		want       reply
	}{
		{"list", s.Endpoint(), testID, testSecret, reply{200, `{"data":{"service":{"hosts":[{"primaryIP":"198.51.100.1"},{"primaryIP":"2001:db8::1"}]}}}`, ""}},
		{"no credentials", s.Endpoint(), "", "", reply{401, `{"message":"Unauthorized"}`, ""}},
		{"wrong secret", s.Endpoint(), testID, "nope", reply{401, `{"message":"Invalid authentication credentials"}`, ""}},
		{"wrong id", s.Endpoint(), "other", testSecret, reply{401, `{"message":"Invalid authentication credentials"}`, ""}},
		{"other path", s.URL + "/v1/ncs/ips", testID, testSecret, reply{404, `{"message":"no Route matched with those values"}`, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, tt.url, tt.id, tt.secret); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if got, want := s.Requests(), len(tests); got != want {
		t.Errorf("got %d requests, want %d", got, want)
	}
}

func TestServerQueue(t *testing.T) {
	s := NewServer(t, testID, testSecret, "203.0.113.9")
	s.SetRetryAfter("2")
	s.QueueStatus(429, 503)
	s.QueueFault(Truncated, Garbage)
	s.QueueStatus(500)

	// An unauthorised request is refused without consuming the queue.
	if got := get(t, s.Endpoint(), testID, "bad"); got.status != 401 {
		t.Fatalf("got status %d, want 401", got.status)
	}
	list := `{"data":{"service":{"hosts":[{"primaryIP":"203.0.113.9"}]}}}`
	want := []reply{
		{429, `{"message":"API rate limit exceeded"}`, "2"},
		{503, `{"message":"Service Unavailable"}`, ""},
		{200, list[:len(list)/2], ""},
		{200, "<html><body><h1>Welcome to nginx!</h1></body></html>\n", ""},
		{500, `{"message":"An unexpected error occurred"}`, ""},
		{200, list, ""},
	}
	for i, w := range want {
		if got := get(t, s.Endpoint(), testID, testSecret); got != w {
			t.Errorf("answer %d: got %+v, want %+v", i, got, w)
		}
	}
}

func TestServerHuge(t *testing.T) {
	s := NewServer(t, testID, testSecret, "203.0.113.9")
	s.QueueFault(Huge)
	got := get(t, s.Endpoint(), testID, testSecret)
	if len(got.body) < HugeBodySize {
		t.Errorf("got %d bytes, want at least %d", len(got.body), HugeBodySize)
	}
	// Not decoded: that takes seconds under -race. The shape is checked instead.
	head, entry, tail := `{"data":{"service":{"hosts":[`, `{"primaryIP":"198.51.100.7"},`, `{"primaryIP":"198.51.100.7"}]}}}`
	if !strings.HasPrefix(got.body, head) || !strings.HasSuffix(got.body, tail) {
		t.Fatalf("got body %.40q...%q, want a host list", got.body, got.body[len(got.body)-40:])
	}
	if rest := strings.ReplaceAll(got.body[len(head):len(got.body)-len(tail)], entry, ""); rest != "" {
		t.Errorf("got %d stray bytes between the entries (%.40q), want none", len(rest), rest)
	}
}

func TestServerDelayEndsWithClient(t *testing.T) {
	s := NewServer(t, testID, testSecret, "203.0.113.9")
	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint(), nil)
	req.SetBasicAuth(testID, testSecret)
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	// Close (at cleanup) returning at all shows the handler stopped waiting.
}

func TestServerSlowBody(t *testing.T) {
	s := NewServer(t, testID, testSecret, "203.0.113.9")
	s.SetDelay(20 * time.Millisecond)
	s.QueueFault(SlowBody)
	got := get(t, s.Endpoint(), testID, testSecret)
	want := reply{200, `{"data":{"service":{"hosts":[{"primaryIP":"203.0.113.9"}]}}}`, ""}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestServerConcurrent(t *testing.T) {
	s := NewServer(t, testID, testSecret, "203.0.113.9")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s.SetIPs([]string{"198.51.100.1"})
			s.QueueStatus(500)
			if got := get(t, s.Endpoint(), testID, testSecret); got.status != 200 && got.status != 500 {
				t.Errorf("request %d: got status %d, want 200 or 500", i, got.status)
			}
		})
	}
	wg.Wait()
	if got := s.Requests(); got != 8 {
		t.Errorf("got %d requests, want 8", got)
	}
}
