package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestPublishStoresMessage(t *testing.T) {
	srv := startNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), true)
	_, js := srv.client()

	m := Message{
		Subject: "agora.ncs.3.31",
		ID:      "4eb720f0-8da7-11e9-a43e-53f411c2761f",
		Header: nats.Header{
			"Agora-Signature":    []string{"5a3bb6a6d9fad2ea9ae3fb707a14c9d7f3136df1"},
			"Agora-Signature-V2": []string{"de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24"},
		},
		Data: []byte(`{"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}` + "\n\x00\xff"),
	}
	out, err := p.Publish(context.Background(), m)
	if err != nil || out != Published {
		t.Fatalf("publish: got %v, %v, want published, nil", out, err)
	}
	if _, ok := m.Header[jetstream.MsgIDHeader]; ok {
		t.Errorf("caller's header: got %s added, want it untouched", jetstream.MsgIDHeader)
	}

	got := streamMsgs(t, js, DefaultStream)
	if len(got) != 1 {
		t.Fatalf("stream messages: got %d, want 1", len(got))
	}
	sm := got[0]
	if sm.Subject != m.Subject {
		t.Errorf("subject: got %q, want %q", sm.Subject, m.Subject)
	}
	if !bytes.Equal(sm.Data, m.Data) {
		t.Errorf("data: got %q, want %q", sm.Data, m.Data)
	}
	wantHeaders := map[string]string{
		jetstream.MsgIDHeader: m.ID,
		"Agora-Signature":     m.Header.Get("Agora-Signature"),
		"Agora-Signature-V2":  m.Header.Get("Agora-Signature-V2"),
	}
	for k, want := range wantHeaders {
		if got := sm.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if got := p.metric(t, "ncs_gateway_nats_published_total"); got != 1 {
		t.Errorf("published_total: got %v, want 1", got)
	}
	if got := p.metric(t, "ncs_gateway_nats_publish_duration_seconds"); got != 1 {
		t.Errorf("publish_duration_seconds count: got %v, want 1", got)
	}
	if got := p.metric(t, "ncs_gateway_nats_connected"); got != 1 {
		t.Errorf("nats_connected: got %v, want 1", got)
	}
	st := p.Status(context.Background())
	if !st.Connected || st.StreamMessages != 1 || st.SpoolDepth != 0 || st.StreamError != "" {
		t.Errorf("status: got %+v, want connected, 1 stream message, empty spool", st)
	}
}

func TestPublishDeduplicatesResend(t *testing.T) {
	srv := startNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), true)
	_, js := srv.client()

	first := testMsg(1)
	resend := testMsg(1)
	resend.Data = bytes.Replace(resend.Data, []byte("1560408533119"), []byte("1560408539999"), 1)
	for _, m := range []Message{first, resend} {
		if out, err := p.Publish(context.Background(), m); err != nil || out != Published {
			t.Fatalf("publish: got %v, %v, want published, nil", out, err)
		}
	}
	got := streamMsgs(t, js, DefaultStream)
	if len(got) != 1 {
		t.Fatalf("stream messages: got %d, want 1", len(got))
	}
	if !bytes.Equal(got[0].Data, first.Data) {
		t.Errorf("data: got %q, want the first attempt's %q", got[0].Data, first.Data)
	}
}

func TestOutageSpoolsThenDrains(t *testing.T) {
	const n = 25
	srv := startNATS(t)
	cfg := testConfig(srv.url(), t.TempDir())
	cfg.PublishTimeout = 7 * time.Second // the most nats.publish_timeout allows
	p := newTestPublisher(t, cfg, true)

	srv.stop()
	eventually(t, 5*time.Second, "publisher notices the disconnect", func() error {
		if p.Status(context.Background()).Connected {
			return errors.New("still connected")
		}
		return nil
	})
	if !p.Ready() {
		t.Errorf("ready while disconnected with an empty spool: got false, want true")
	}

	start := time.Now()
	for i := range n {
		out, err := p.Publish(context.Background(), testMsg(i))
		if err != nil || out != Spooled {
			t.Fatalf("publish %d: got %v, %v, want spooled, nil", i, out, err)
		}
	}
	// Failing fast is the point: counted as disconnected (never tried),
	// not as timeout (waited out). The time is a measurement, not a check.
	t.Logf("%d publishes while disconnected took %s (publish timeout %s)", n, time.Since(start), cfg.PublishTimeout)
	if got := p.metric(t, "ncs_gateway_nats_publish_failures_total", "reason", "timeout"); got != 0 {
		t.Errorf("publish_failures_total{timeout}: got %v, want 0 (a disconnected publish must not wait for its timeout)", got)
	}
	st := p.Status(context.Background())
	if st.SpoolDepth != n || st.Connected || st.SpoolBytes <= 0 {
		t.Errorf("status: got %+v, want spool depth %d, disconnected", st, n)
	}
	if got := p.metric(t, "ncs_gateway_nats_publish_failures_total", "reason", "disconnected"); got != n {
		t.Errorf("publish_failures_total{disconnected}: got %v, want %d", got, n)
	}
	if got := p.metric(t, "ncs_gateway_spool_depth"); got != n {
		t.Errorf("spool_depth: got %v, want %d", got, n)
	}

	srv.restart()
	_, js := srv.client()
	eventually(t, 15*time.Second, "forwarder drains the spool", func() error {
		if d := p.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	got := streamMsgs(t, js, DefaultStream)
	if len(got) != n {
		t.Fatalf("stream messages: got %d, want %d", len(got), n)
	}
	for i, sm := range got {
		if want := testMsg(i).ID; sm.Header.Get(jetstream.MsgIDHeader) != want {
			t.Errorf("message %d id: got %q, want %q (oldest first)", i, sm.Header.Get(jetstream.MsgIDHeader), want)
		}
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"ncs_gateway_spool_spooled_total", n},
		{"ncs_gateway_spool_forwarded_total", n},
		{"ncs_gateway_spool_depth", 0},
		{"ncs_gateway_spool_bytes", 0},
		{"ncs_gateway_spool_oldest_age_seconds", 0},
		{"ncs_gateway_nats_disconnects_total", 1},
		{"ncs_gateway_nats_reconnects_total", 1},
		{"ncs_gateway_nats_connected", 1},
	} {
		if got := p.metric(t, c.name); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSpoolSurvivesReopen(t *testing.T) {
	const n = 10
	srv := deadNATS(t)
	cfg := testConfig(srv.url(), t.TempDir())

	first := newTestPublisher(t, cfg, false)
	for i := range n {
		if out, err := first.Publish(context.Background(), testMsg(i)); err != nil || out != Spooled {
			t.Fatalf("publish %d: got %v, %v, want spooled, nil", i, out, err)
		}
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}

	srv.restart()
	second := newTestPublisher(t, cfg, true)
	if got := second.Status(context.Background()).SpoolDepth; got != n {
		t.Errorf("reopened spool depth: got %d, want %d", got, n)
	}
	_, js := srv.client()
	eventually(t, 10*time.Second, "reopened spool drains", func() error {
		if d := second.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	assertIDs(t, streamMsgs(t, js, DefaultStream), n)
}

// assertIDs checks the stream holds exactly testMsg(0..n-1), once each.
func assertIDs(t *testing.T, got []*jetstream.RawStreamMsg, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("stream messages: got %d, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for _, sm := range got {
		seen[sm.Header.Get(jetstream.MsgIDHeader)] = true
	}
	for i := range n {
		if id := testMsg(i).ID; !seen[id] {
			t.Errorf("stream: got no message %s, want it once", id)
		}
	}
}

func TestSpoolFullRejectsThenRecovers(t *testing.T) {
	const fits = 3
	// Large enough that three pass the smallest spool.max_bytes (1 MiB).
	msg := func(i int) Message {
		m := testMsg(i)
		m.Data = append(m.Data, make([]byte, 400<<10)...)
		return m
	}
	srv := deadNATS(t)
	cfg := testConfig(srv.url(), t.TempDir())
	cfg.SpoolMaxBytes = int64(fits * (encodedSize(msg(0)) + spoolKeySize))
	p := newTestPublisher(t, cfg, true)

	for i := range fits {
		if out, err := p.Publish(context.Background(), msg(i)); err != nil || out != Spooled {
			t.Fatalf("publish %d: got %v, %v, want spooled, nil", i, out, err)
		}
	}
	_, err := p.Publish(context.Background(), msg(fits))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("publish to a full spool: got %v, want ErrUnavailable and ErrSpoolFull", err)
	}
	if got := p.metric(t, "ncs_gateway_spool_rejected_total", "reason", "full"); got != 1 {
		t.Errorf("spool_rejected_total{full}: got %v, want 1", got)
	}
	if p.Ready() {
		t.Errorf("ready with NATS down and the spool full: got true, want false")
	}

	srv.restart()
	eventually(t, 10*time.Second, "spool drains", func() error {
		if d := p.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	srv.stop()
	eventually(t, 5*time.Second, "publisher notices the disconnect", func() error {
		if p.Status(context.Background()).Connected {
			return errors.New("still connected")
		}
		return nil
	})
	if !p.Ready() {
		t.Errorf("ready with NATS down and the spool drained: got false, want true")
	}
	if out, err := p.Publish(context.Background(), msg(fits)); err != nil || out != Spooled {
		t.Errorf("publish after draining: got %v, %v, want spooled, nil", out, err)
	}
}

func TestStartWhileNATSDown(t *testing.T) {
	srv := deadNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), true)
	if p.Status(context.Background()).Connected {
		t.Fatalf("connected: got true, want false with nothing listening")
	}
	if out, err := p.Publish(context.Background(), testMsg(0)); err != nil || out != Spooled {
		t.Fatalf("publish while down: got %v, %v, want spooled, nil", out, err)
	}

	srv.restart()
	_, js := srv.client()
	eventually(t, 10*time.Second, "stream created and spool forwarded", func() error {
		n, err := streamCount(js, DefaultStream)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("stream holds %d messages", n)
		}
		return nil
	})
	info, err := js.Stream(context.Background(), DefaultStream)
	if err != nil {
		t.Fatalf("look up stream: %v", err)
	}
	sc := info.CachedInfo().Config
	if len(sc.Subjects) != 1 || sc.Subjects[0] != "agora.ncs.>" || sc.Duplicates != DefaultDuplicateWindow ||
		sc.MaxAge != DefaultStreamMaxAge || sc.Storage != jetstream.FileStorage || sc.Replicas != 1 {
		t.Errorf("created stream: got subjects %v, duplicates %s, max age %s, storage %v, replicas %d; want [agora.ncs.>], %s, %s, file, 1",
			sc.Subjects, sc.Duplicates, sc.MaxAge, sc.Storage, sc.Replicas, DefaultDuplicateWindow, DefaultStreamMaxAge)
	}
	if out, err := p.Publish(context.Background(), testMsg(1)); err != nil || out != Published {
		t.Errorf("publish once up: got %v, %v, want published, nil", out, err)
	}
}

func TestPublishAfterCloseIsUnavailable(t *testing.T) {
	srv := startNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), false)
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := p.Publish(context.Background(), testMsg(0)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("publish after close: got %v, want ErrUnavailable", err)
	}
	if p.Ready() {
		t.Errorf("ready after close: got true, want false")
	}
}
