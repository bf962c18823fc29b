package publish

import (
	"context"
	"testing"
)

// TestLoggerNamedOnce: the publisher names its logger "publish" itself, so
// the daemon passes its root logger and no line says "publish.publish".
func TestLoggerNamedOnce(t *testing.T) {
	srv := deadNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), true)
	if _, err := p.Publish(context.Background(), testMsg(0)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	want := map[string]string{
		"publisher started":             "publish",
		"nats publish failed, spooling": "publish",
	}
	for msg, name := range want {
		entries := p.logs.FilterMessage(msg).All()
		if len(entries) == 0 {
			t.Errorf("log %q: got none, want one", msg)
			continue
		}
		if got := entries[0].LoggerName; got != name {
			t.Errorf("log %q: got logger %q, want %q", msg, got, name)
		}
	}
}

// TestFailureSeriesExistAtStart: every reason series is exported at 0
// before any traffic, so the first failure of each counts in increase().
func TestFailureSeriesExistAtStart(t *testing.T) {
	srv := startNATS(t)
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), false)
	series := map[string][]string{
		"ncs_gateway_nats_publish_failures_total": {reasonTimeout, reasonDisconnected, reasonNoStream, reasonError},
		"ncs_gateway_spool_rejected_total":        {rejectFull, rejectWriteError},
	}
	for name, reasons := range series {
		for _, r := range reasons {
			if got := p.metric(t, name, "reason", r); got != 0 {
				t.Errorf("%s{reason=%q} before traffic: got %v (-1: absent), want 0", name, r, got)
			}
		}
	}
	for _, name := range []string{"ncs_gateway_spool_forward_failures_total", "ncs_gateway_nats_disconnects_total"} {
		if got := p.metric(t, name); got != 0 {
			t.Errorf("%s before traffic: got %v (-1: absent), want 0", name, got)
		}
	}
}
