package ncsip

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

const (
	testID     = "0123456789abcdef0123456789abcdef"
	testSecret = "fedcba9876543210fedcba9876543210"
)

// testConfig has tiny waits so retries cost milliseconds.
func testConfig(endpoints ...string) Config {
	return Config{
		Endpoints:      endpoints,
		CustomerID:     testID,
		CustomerSecret: testSecret,
		Timeout:        5 * time.Second,
		Backoff:        []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond},
		MaxRetryAfter:  5 * time.Millisecond,
		UserAgent:      "ncs-gateway/test",
	}
}

func newTestClient(t *testing.T, cfg Config, opts ...zap.Option) (*Client, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	c, err := New(cfg, zap.New(core, opts...))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c, logs
}

// endpointSetup describes one fake Agora endpoint of a walk test.
type endpointSetup struct {
	path     string // "" means ncsiptest.Path
	down     bool   // the connection is dropped before any answer
	ips      []string
	statuses []int
	faults   []ncsiptest.Fault
	delay    time.Duration
}

var docIPs = []string{"203.0.113.2", "198.51.100.1"}

func TestFetchWalk(t *testing.T) {
	tests := []struct {
		name         string
		endpoints    []endpointSetup
		cfg          func(*Config)
		want         []string // nil: an error is expected
		wantEndpoint int
		wantReason   string
		wantRequests []int
		wantAttempts int // 0: the sum of wantRequests
		wantInErr    []string
	}{
		{name: "success", endpoints: []endpointSetup{{ips: docIPs}, {ips: docIPs}},
			want: []string{"198.51.100.1", "203.0.113.2"}, wantRequests: []int{1, 0}},
		{name: "IPv6", endpoints: []endpointSetup{{ips: []string{"2001:db8::2", "2001:db8::1"}}},
			want: []string{"2001:db8::1", "2001:db8::2"}, wantRequests: []int{1}},
		{name: "404 moves to the next endpoint at once",
			endpoints: []endpointSetup{{path: "/v2/ncs/ip", ips: docIPs}, {ips: docIPs}},
			want:      []string{"198.51.100.1", "203.0.113.2"}, wantEndpoint: 1, wantRequests: []int{1, 1}},
		{name: "429 then success", endpoints: []endpointSetup{{ips: docIPs, statuses: []int{429}}},
			want: []string{"198.51.100.1", "203.0.113.2"}, wantRequests: []int{2}},
		{name: "500 then success on the next endpoint",
			endpoints: []endpointSetup{{ips: docIPs, statuses: []int{500, 500, 500, 500}}, {ips: docIPs}},
			want:      []string{"198.51.100.1", "203.0.113.2"}, wantEndpoint: 1, wantRequests: []int{1, 1}},
		{name: "network error then success on the next endpoint",
			endpoints: []endpointSetup{{down: true}, {ips: docIPs}},
			want:      []string{"198.51.100.1", "203.0.113.2"}, wantEndpoint: 1, wantRequests: []int{0, 1}, wantAttempts: 2},
		{name: "retries wrap around to the first endpoint",
			endpoints: []endpointSetup{{ips: docIPs, statuses: []int{502}}, {ips: docIPs, statuses: []int{503}}},
			want:      []string{"198.51.100.1", "203.0.113.2"}, wantEndpoint: 0, wantRequests: []int{2, 1}},
		{name: "private accepted when allowed", endpoints: []endpointSetup{{ips: []string{"10.0.0.1"}}},
			cfg: func(c *Config) { c.AllowPrivate = true }, want: []string{"10.0.0.1"}, wantRequests: []int{1}},

		{name: "dropped connection", endpoints: []endpointSetup{{down: true}},
			cfg: func(c *Config) { c.Backoff = []time.Duration{} }, wantReason: "network", wantRequests: []int{0}, wantInErr: []string{"EOF"}},
		{name: "server errors use up the attempts", endpoints: []endpointSetup{{ips: docIPs, statuses: []int{503, 503, 503, 503}}},
			wantReason: "server_error", wantRequests: []int{4},
			wantInErr: []string{"4 attempts failed", "503 Service Unavailable: \"Service Unavailable\""}},
		{name: "no backoff means one attempt", endpoints: []endpointSetup{{ips: docIPs, statuses: []int{500}}, {ips: docIPs}},
			cfg: func(c *Config) { c.Backoff = []time.Duration{} }, wantReason: "server_error", wantRequests: []int{1, 0}},
		{name: "404 everywhere stops early", endpoints: []endpointSetup{{path: "/nope"}, {path: "/nope"}},
			wantReason: "not_found", wantRequests: []int{1, 1},
			wantInErr: []string{"2 attempts failed", `404 Not Found: "no Route matched with those values" (check the endpoint URL)`}},
		{name: "rate limited throughout", endpoints: []endpointSetup{{ips: docIPs, statuses: []int{429, 429, 429, 429}}},
			wantReason: "rate_limited", wantRequests: []int{4}, wantInErr: []string{`429 Too Many Requests: "API rate limit exceeded"`}},
		{name: "unexpected status", endpoints: []endpointSetup{{ips: docIPs, statuses: []int{418}}},
			wantReason: "bad_response", wantRequests: []int{1}, wantInErr: []string{"unexpected status 418"}},
		{name: "garbage", endpoints: []endpointSetup{{ips: docIPs, faults: []ncsiptest.Fault{ncsiptest.Garbage}}},
			wantReason: "bad_response", wantRequests: []int{1}, wantInErr: []string{"200 OK: bad response: decode json"}},
		{name: "truncated", endpoints: []endpointSetup{{ips: docIPs, faults: []ncsiptest.Fault{ncsiptest.Truncated}}},
			wantReason: "bad_response", wantRequests: []int{1}, wantInErr: []string{"unexpected end of JSON input"}},
		{name: "garbage then a good endpoint",
			endpoints: []endpointSetup{{ips: docIPs, faults: []ncsiptest.Fault{ncsiptest.Garbage}}, {ips: docIPs}},
			want:      []string{"198.51.100.1", "203.0.113.2"}, wantEndpoint: 1, wantRequests: []int{1, 1}},
		{name: "huge body", endpoints: []endpointSetup{{ips: docIPs, faults: []ncsiptest.Fault{ncsiptest.Huge}}},
			wantReason: "bad_response", wantRequests: []int{1}, wantInErr: []string{"exceeds the limit of 4194304 bytes"}},
		{name: "empty list", endpoints: []endpointSetup{{}},
			wantReason: "empty", wantRequests: []int{1}, wantInErr: []string{"no usable address: the host list is empty"}},
		{name: "only 0.0.0.0", endpoints: []endpointSetup{{ips: []string{"0.0.0.0"}}},
			wantReason: "empty", wantRequests: []int{1}, wantInErr: []string{`"0.0.0.0": unspecified`}},
		{name: "private rejected by default", endpoints: []endpointSetup{{ips: []string{"10.0.0.1", "fd00::1"}}},
			wantReason: "empty", wantRequests: []int{1}, wantInErr: []string{`"10.0.0.1": private`}},
		{name: "timeout", endpoints: []endpointSetup{{ips: docIPs, delay: time.Hour}},
			cfg:        func(c *Config) { c.Timeout = 50 * time.Millisecond; c.Backoff = []time.Duration{} },
			wantReason: "timeout", wantRequests: []int{1}, wantInErr: []string{"no complete answer within 50ms"}},
		{name: "slow body", endpoints: []endpointSetup{{ips: docIPs, delay: time.Hour, faults: []ncsiptest.Fault{ncsiptest.SlowBody}}},
			cfg:        func(c *Config) { c.Timeout = 50 * time.Millisecond; c.Backoff = []time.Duration{} },
			wantReason: "timeout", wantRequests: []int{1}, wantInErr: []string{"200 OK: read answer: no complete answer within 50ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fakes []*ncsiptest.Server
			var endpoints []string
			for _, e := range tt.endpoints {
				s := ncsiptest.NewServer(t, testID, testSecret, e.ips...)
				s.QueueStatus(e.statuses...)
				s.QueueFault(e.faults...)
				s.SetDelay(e.delay)
				path := ncsiptest.Path
				if e.path != "" {
					path = e.path
				}
				fakes = append(fakes, s)
				if e.down {
					endpoints = append(endpoints, hangUpServer(t).URL+path)
					continue
				}
				endpoints = append(endpoints, s.URL+path)
			}
			cfg := testConfig(endpoints...)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			c, _ := newTestClient(t, cfg)

			res, err := c.Fetch(t.Context())

			for i, s := range fakes {
				if got := s.Requests(); got != tt.wantRequests[i] {
					t.Errorf("endpoint %d: got %d requests, want %d", i, got, tt.wantRequests[i])
				}
			}
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %v, want an error", res.Addrs)
				}
				if got := Reason(err); got != tt.wantReason {
					t.Errorf("got reason %q, want %q (error: %v)", got, tt.wantReason, err)
				}
				for _, w := range tt.wantInErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("got error %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if got := addrStrings(res.Addrs); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got, want := res.Endpoint, endpoints[tt.wantEndpoint]; got != want {
				t.Errorf("got endpoint %q, want %q", got, want)
			}
			wantAttempts := tt.wantAttempts
			if wantAttempts == 0 {
				wantAttempts = sum(tt.wantRequests)
			}
			if got, want := res.Attempts, wantAttempts; got != want {
				t.Errorf("got %d attempts, want %d", got, want)
			}
		})
	}
}

// hangUpServer drops every connection unanswered. It keeps its port, unlike
// a closed server whose port another test's server could take over.
func hangUpServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(s.Close)
	return s
}

func sum(n []int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}

func TestFetchRequest(t *testing.T) {
	fake := ncsiptest.NewHandler(testID, testSecret, docIPs...)
	var mu sync.Mutex
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, testConfig(srv.URL+ncsiptest.Path))
	if _, err := c.Fetch(t.Context()); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{
		"Accept":        "application/json",
		"User-Agent":    "ncs-gateway/test",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(testID+":"+testSecret)),
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("got %s %q, want %q", k, got.Get(k), v)
		}
	}
}

func TestFetchExtraFields(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true,"data":{"ttl":86400,"service":{"name":"ncs","hosts":[`+
			`{"primaryIP":"198.51.100.1","region":"us","weight":1.5},{"primaryIP":"203.0.113.2","extra":{"nested":[1,2]}}]}},"meta":null}`)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, testConfig(srv.URL+ncsiptest.Path))
	res, err := c.Fetch(t.Context())
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got, want := addrStrings(res.Addrs), []string{"198.51.100.1", "203.0.113.2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestFetchLogsAttempts(t *testing.T) {
	bad := ncsiptest.NewServer(t, testID, testSecret)
	good := ncsiptest.NewServer(t, testID, testSecret, docIPs...)
	bad.QueueStatus(503)
	c, logs := newTestClient(t, testConfig(bad.Endpoint(), good.Endpoint()))
	if _, err := c.Fetch(t.Context()); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 1 {
		t.Fatalf("got %d warnings, want 1", len(warns))
	}
	w := warns[0]
	if got, want := w.LoggerName, "ncsip"; got != want {
		t.Errorf("got logger %q, want %q", got, want)
	}
	fields := w.ContextMap()
	want := map[string]any{
		"endpoint":      bad.Endpoint(),
		"attempt":       int64(1),
		"status":        int64(503),
		"reason":        "server_error",
		"next_wait":     time.Millisecond,
		"next_endpoint": good.Endpoint(),
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("got %s %v (%T), want %v (%T)", k, fields[k], fields[k], v, v)
		}
	}
}

func TestFetchRetryAfter(t *testing.T) {
	tests := []struct {
		retryAfter string
		want       time.Duration
	}{
		{"", time.Millisecond},        // the backoff
		{"0", 0},                      // the server's word
		{"120", 5 * time.Millisecond}, // capped by MaxRetryAfter
		{"later", time.Millisecond},   // malformed: the backoff
	}
	for _, tt := range tests {
		t.Run(tt.retryAfter, func(t *testing.T) {
			fake := ncsiptest.NewServer(t, testID, testSecret, docIPs...)
			fake.SetRetryAfter(tt.retryAfter)
			fake.QueueStatus(429)
			c, logs := newTestClient(t, testConfig(fake.Endpoint()))
			if _, err := c.Fetch(t.Context()); err != nil {
				t.Fatalf("fetch: %v", err)
			}
			warns := logs.FilterMessage("ncs ip fetch attempt failed").All()
			if len(warns) != 1 {
				t.Fatalf("got %d warnings, want 1", len(warns))
			}
			if got := warns[0].ContextMap()["next_wait"]; got != tt.want {
				t.Errorf("got next_wait %v, want %v", got, tt.want)
			}
		})
	}
}
