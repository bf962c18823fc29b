package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersionAndCheckConfig(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	out, _, code := g.run("-version")
	if code != 0 || !strings.HasPrefix(out, "ncs-gateway ") {
		t.Errorf("-version: got %q exit %d, want \"ncs-gateway <version>\" exit 0", out, code)
	}
	out, errOut, code := g.run("-check-config")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("-check-config: got %q %q exit %d, want ok exit 0", out, errOut, code)
	}
	if strings.Contains(out+errOut, testSecret) {
		t.Errorf("-check-config printed the webhook secret")
	}

	bad := newGateway(t, gatewayOptions{extra: "spool: {max_bytes: 1, max_files: 2}"})
	bad.env = nil // and no secret
	_, errOut, code = bad.run("-check-config")
	if code != 1 {
		t.Errorf("bad config: got exit %d, want 1", code)
	}
	for _, want := range []string{"spool.max_files: unknown key", "spool.max_bytes: 1 is below 1 MiB"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad config: stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// TestPipelineEmbeddedNATS runs the quickstart shape: embedded NATS, a
// signed notification in, the same bytes and headers out of the stream.
func TestPipelineEmbeddedNATS(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	g.start()
	natsURL := embeddedURL(t, g)

	now := time.Now().UnixMilli()
	body := notification("e2e-1", now)
	if code, ans := g.post(testSecret, body); code != http.StatusOK || !strings.Contains(ans, `"published"`) {
		t.Fatalf("signed: got %d %s, want 200 published", code, ans)
	}
	// Agora's retry: same noticeId, new notifyMs, so new bytes and signature.
	if code, _ := g.post(testSecret, notification("e2e-1", now+999)); code != http.StatusOK {
		t.Fatalf("resend: got %d, want 200", code)
	}
	// A captured notification replayed after webhook.max_notify_age (30m):
	// correctly signed, refused, and never in the stream.
	if code, ans := g.post(testSecret, notification("replayed", now-int64(3*time.Hour/time.Millisecond))); code != http.StatusUnprocessableEntity {
		t.Errorf("replay of a 3 h old capture: got %d %s, want 422", code, ans)
	}
	if code, _ := g.post("wrong-secret", notification("forged", 1)); code != http.StatusUnauthorized {
		t.Errorf("forged: got %d, want 401", code)
	}
	if code, _ := g.post("", notification("unsigned", 1)); code != http.StatusUnauthorized {
		t.Errorf("unsigned: got %d, want 401", code)
	}
	if code, _ := g.post(testSecret, []byte("not json")); code != http.StatusOK {
		t.Errorf("signed non-JSON: got %d, want 200 (dead-lettered)", code)
	}

	msgs := streamMessages(t, natsURL, "AGORA_NCS")
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2 (the notification once, the dead letter)", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "agora.ncs.3.31" || !bytes.Equal(m.Data, body) {
		t.Errorf("got subject %q data %q, want agora.ncs.3.31 and the first body byte for byte", m.Subject, m.Data)
	}
	for k, want := range map[string]string{
		"Nats-Msg-Id": "e2e-1", "Agora-Notice-Id": "e2e-1", "Agora-Product-Id": "3",
		"Agora-Event-Type": "31", "Agora-Event-Name": "uploaded", "Agora-Sid": "sid-1", "Agora-Cname": "room-1",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, m.Header.Get("Agora-Received-At")); err != nil {
		t.Errorf("Agora-Received-At %q: %v", m.Header.Get("Agora-Received-At"), err)
	}
	if dl := msgs[1]; dl.Subject != "agora.ncs.deadletter" || dl.Header.Get("Agora-Deadletter-Reason") != "not_json" {
		t.Errorf("dead letter: got subject %q reason %q", dl.Subject, dl.Header.Get("Agora-Deadletter-Reason"))
	}

	// The latest signed notifyMs was the 3 h old replay: -status says the
	// host clock or replays are to blame.
	out, _, code := g.run("-status")
	if code != 0 || !strings.Contains(out, "ready: yes") || !strings.Contains(out, "stream AGORA_NCS: 2 messages") ||
		!strings.Contains(out, "WRONG CLOCK or replays") {
		t.Errorf("-status: exit %d:\n%s", code, out)
	}
	metrics := g.get("/metrics")
	for _, want := range []string{
		`ncs_gateway_webhook_rejected_total{reason="bad_signature"} 1`,
		`ncs_gateway_webhook_rejected_total{reason="missing_signature"} 1`,
		`ncs_gateway_webhook_deadlettered_total{reason="not_json"} 1`,
		`ncs_gateway_webhook_rejected_total{reason="stale"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := g.stop(); err != nil {
		t.Errorf("SIGTERM: got exit %v, want a clean exit", err)
	}
	// After the exit, which flushes the buffered log: all of it is read.
	if strings.Contains(g.log(), testSecret) || strings.Contains(g.log(), sign(testSecret, body)) {
		t.Error("the log holds the webhook secret or a signature")
	}
}

// TestNothingLostWhenNATSIsDownAndTheDaemonIsKilled: NATS stops, the gateway
// spools and answers 200, it is killed with SIGKILL (twice, once with events
// in the spool), NATS comes back, and every acknowledged notification is in
// the stream exactly once.
func TestNothingLostWhenNATSIsDownAndTheDaemonIsKilled(t *testing.T) {
	ns := startNATS(t)
	g := newGateway(t, gatewayOptions{natsURL: ns.url()})
	g.start()

	acked := map[string]bool{}
	send := func(prefix string, n int, wantOutcome string) {
		t.Helper()
		for i := range n {
			id := fmt.Sprintf("%s-%d", prefix, i)
			code, ans := g.post(testSecret, notification(id, time.Now().UnixMilli()))
			if code != http.StatusOK || !strings.Contains(ans, wantOutcome) {
				t.Fatalf("%s: got %d %s, want 200 %s", id, code, ans, wantOutcome)
			}
			acked[id] = true
		}
	}
	send("up", 5, "published")
	ns.stop()
	waitFor(t, 15*time.Second, "the gateway to notice NATS is gone", func() bool {
		return strings.Contains(g.get("/status"), `"connected": false`)
	})
	start := time.Now()
	send("down", 50, "spooled")
	t.Logf("50 notifications spooled in %s", time.Since(start))

	g.kill() // SIGKILL with 50 in the spool
	g.start()
	send("restarted", 10, "spooled")
	g.signal(syscall.SIGKILL)
	_ = g.wait(10 * time.Second)
	g.start()

	ns.start()
	waitFor(t, 60*time.Second, "the spool to drain into the stream", func() bool {
		return streamCount(ns.url(), "AGORA_NCS") == len(acked)
	})
	seen := map[string]int{}
	for _, m := range streamMessages(t, ns.url(), "AGORA_NCS") {
		seen[m.Header.Get("Nats-Msg-Id")]++
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("%s is in the stream %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("stream holds %d ids, want %d", len(seen), len(acked))
	}
	waitFor(t, 10*time.Second, "spool depth 0 in /status", func() bool {
		return strings.Contains(g.get("/status"), `"spool_depth": 0`)
	})
}

// embeddedURL reads the embedded server's URL from the daemon's /status.
func embeddedURL(t testing.TB, g *gateway) string {
	t.Helper()
	var st struct {
		NATS struct {
			ServerURL string `json:"server_url"`
		} `json:"nats"`
	}
	if err := json.Unmarshal([]byte(g.get("/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.NATS.ServerURL == "" {
		t.Fatal("status has no nats server_url")
	}
	return st.NATS.ServerURL
}
