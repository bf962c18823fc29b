package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

const testSecret = "sim-test-secret"

// post is one request the fake gateway received.
type post struct {
	body   []byte
	header http.Header
}

// fakeGateway verifies signatures with the gateway's own verifier and
// answers from answer(n), n counting requests from 1.
type fakeGateway struct {
	t      *testing.T
	verify *webhook.Verifier
	answer func(n int) (int, string)

	mu    sync.Mutex
	posts []post
}

func newFakeGateway(t *testing.T, answer func(n int) (int, string)) (*fakeGateway, *httptest.Server) {
	t.Helper()
	v, err := webhook.NewVerifier([]string{testSecret}, true)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, verify: v, answer: answer}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		g.t.Errorf("read body: %v", err)
	}
	if err := g.verify.Verify(body, r.Header); err != nil {
		g.t.Errorf("signature of %s: %v", body, err)
	}
	g.mu.Lock()
	g.posts = append(g.posts, post{body: body, header: r.Header.Clone()})
	n := len(g.posts)
	g.mu.Unlock()
	code, text := http.StatusOK, `{"status":"ok"}`
	if g.answer != nil {
		code, text = g.answer(n)
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text)
}

func (g *fakeGateway) received() []post {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.posts
}

// newTestSender returns a sender whose clock stands still, so only the
// sender's own rule makes notifyMs advance.
func newTestSender(url string, out io.Writer) *sender {
	return &sender{
		client:  &http.Client{Timeout: 5 * time.Second},
		url:     url,
		secret:  testSecret,
		retries: 3,
		rng:     rand.New(rand.NewPCG(1, 1)),
		now:     func() time.Time { return time.UnixMilli(1_700_000_000_000) },
		out:     out,
	}
}

func testNotification() *notification {
	rng := rand.New(rand.NewPCG(5, 5))
	return newSession(rng, 1).events(rng, time.UnixMilli(1_700_000_000_000), time.Second)[2]
}

// TestResendKeepsNoticeID: a failed attempt is resent with the same
// noticeId, a new notifyMs, and so new bytes and a new signature.
func TestResendKeepsNoticeID(t *testing.T) {
	g, srv := newFakeGateway(t, func(n int) (int, string) {
		if n == 1 {
			return http.StatusServiceUnavailable, `{"error":"unavailable"}`
		}
		return http.StatusOK, `{"status":"ok"}`
	})
	s := newTestSender(srv.URL, io.Discard)
	s.withSHA1 = true
	if err := s.deliver(context.Background(), delivery{n: testNotification()}); err != nil {
		t.Fatal(err)
	}
	posts := g.received()
	if len(posts) != 2 {
		t.Fatalf("got %d posts, want 2", len(posts))
	}
	a, b := decodeBody(t, posts[0].body), decodeBody(t, posts[1].body)
	if a.NoticeID != b.NoticeID {
		t.Errorf("noticeId %s then %s, want the same", a.NoticeID, b.NoticeID)
	}
	if a.NotifyMs >= b.NotifyMs {
		t.Errorf("notifyMs %d then %d, want it to grow", a.NotifyMs, b.NotifyMs)
	}
	for _, h := range []string{headerSignatureV2, headerSignature} {
		if posts[0].header.Get(h) == posts[1].header.Get(h) {
			t.Errorf("%s unchanged across the resend", h)
		}
	}
	if s.stats.resends != 1 || s.stats.ok != 1 || s.stats.notOK != 1 || len(s.stats.undelivered) != 0 {
		t.Errorf("stats %+v, want 1 resend, 1 ok, 1 not ok, none undelivered", s.stats)
	}
	if err := s.err(); err != nil {
		t.Errorf("err() = %v, want nil", err)
	}
}

// TestDuplicateSameBytes: a redundant notification repeats the bytes and
// signature exactly.
func TestDuplicateSameBytes(t *testing.T) {
	g, srv := newFakeGateway(t, nil)
	s := newTestSender(srv.URL, io.Discard)
	if err := s.deliver(context.Background(), delivery{n: testNotification(), duplicated: true}); err != nil {
		t.Fatal(err)
	}
	posts := g.received()
	if len(posts) != 2 {
		t.Fatalf("got %d posts, want 2", len(posts))
	}
	if string(posts[0].body) != string(posts[1].body) {
		t.Errorf("duplicate body differs:\n%s\n%s", posts[0].body, posts[1].body)
	}
	if posts[0].header.Get(headerSignatureV2) != posts[1].header.Get(headerSignatureV2) {
		t.Error("duplicate signature differs")
	}
	if s.stats.duplicates != 1 || s.stats.resends != 0 || len(s.stats.ids) != 1 {
		t.Errorf("stats %+v, want 1 duplicate, 0 resends, 1 id", s.stats)
	}
}

func TestUndelivered(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		answer string
	}{
		{"server error", http.StatusInternalServerError, `{"error":"boom"}`},
		{"unauthorized", http.StatusUnauthorized, `{"error":"bad signature"}`},
		{"200 without JSON", http.StatusOK, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, srv := newFakeGateway(t, func(int) (int, string) { return tt.code, tt.answer })
			s := newTestSender(srv.URL, io.Discard)
			n := testNotification()
			if err := s.deliver(context.Background(), delivery{n: n}); err != nil {
				t.Fatal(err)
			}
			if got := len(g.received()); got != 4 {
				t.Errorf("got %d attempts, want 4 (Agora stops after 3 retries)", got)
			}
			err := s.err()
			if err == nil || !strings.Contains(err.Error(), n.noticeID) {
				t.Errorf("err() = %v, want one naming %s", err, n.noticeID)
			}
		})
	}
}

// TestLostAnswerResends: with pResend 1 every 200 counts as lost, so all
// four attempts are made, and the notification still counts as delivered.
func TestLostAnswerResends(t *testing.T) {
	g, srv := newFakeGateway(t, nil)
	s := newTestSender(srv.URL, io.Discard)
	s.pResend = 1
	if err := s.deliver(context.Background(), delivery{n: testNotification()}); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, p := range g.received() {
		seen[decodeBody(t, p.body).NotifyMs] = true
	}
	if len(seen) != 4 {
		t.Errorf("got %d distinct notifyMs over the attempts, want 4", len(seen))
	}
	if err := s.err(); err != nil {
		t.Errorf("err() = %v, want nil", err)
	}
}

func TestRetryDelay(t *testing.T) {
	s := &sender{retryWait: time.Second}
	for attempt, want := range map[int]time.Duration{2: 0, 3: time.Second, 4: 2 * time.Second} {
		if got := s.retryDelay(attempt); got != want {
			t.Errorf("retryDelay(%d) = %s, want %s", attempt, got, want)
		}
	}
}
