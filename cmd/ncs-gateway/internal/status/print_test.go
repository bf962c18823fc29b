package status

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall"
	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// TestStatusClockSkew: a host whose clock is off shows it in -status, with
// the consequence, before an operator goes looking for the alert.
func TestStatusClockSkew(t *testing.T) {
	sec := func(d time.Duration) *float64 { s := d.Seconds(); return &s }
	for _, c := range []struct {
		name string
		ws   Webhook
		want string
	}{
		{"none seen", Webhook{MaxNotifyAge: "30m0s", MaxNotifyFuture: "5m0s"}, "no signed notification with notifyMs seen yet"},
		{"in sync", Webhook{ClockSkewSeconds: sec(80 * time.Millisecond), MaxNotifyAge: "30m0s", MaxNotifyFuture: "5m0s"}, "= 80ms at"},
		{"host behind", Webhook{ClockSkewSeconds: sec(-time.Hour), MaxNotifyAge: "30m0s", MaxNotifyFuture: "5m0s"}, "WRONG CLOCK: notifications this far ahead are refused as future"},
		{"host ahead", Webhook{ClockSkewSeconds: sec(2 * time.Hour), MaxNotifyAge: "30m0s", MaxNotifyFuture: "5m0s"}, "refused as stale"},
	} {
		var b bytes.Buffer
		c.ws.SkewSeenAt = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		c.ws.Print(&b)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("%s: got %q, want it to contain %q", c.name, b.String(), c.want)
		}
		if c.name == "in sync" && strings.Contains(b.String(), "WRONG") {
			t.Errorf("%s: got %q, want no WRONG CLOCK", c.name, b.String())
		}
	}
}

// fakePublisher stands in for the publisher.
type fakePublisher struct{}

func (fakePublisher) Ready() bool                             { return true }
func (fakePublisher) Status(context.Context) publish.Status   { return publish.Status{} }
func (fakePublisher) StreamProblems() []publish.StreamProblem { return nil }

// skewer is a webhook that has seen a fixed clock skew.
type skewer time.Duration

func (s skewer) ClockSkew() (time.Duration, time.Time, bool) {
	return time.Duration(s), time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), true
}

// TestStatusJudgesAgainstTheLimitsInForce: webhook.max_notify_age and
// max_notify_future of 0 mean the webhook's defaults; -status shows those
// and judges a small skew fine, not WRONG CLOCK.
func TestStatusJudgesAgainstTheLimitsInForce(t *testing.T) {
	fw, err := firewall.New(firewall.Config{Backend: firewall.BackendNone, Ports: []uint16{8443}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := refresh.New(refresh.Config{Firewall: fw, Store: refresh.NewFileStore(t.TempDir()), MinIPs: 1, MaxShrink: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	for _, skew := range []time.Duration{10 * time.Second, -time.Minute} {
		src := &Source{Backend: "none", Ref: ref, Pub: fakePublisher{}, Hook: skewer(skew)} // max_notify_age and _future: 0
		ws := src.Status(context.Background()).Webhook
		if ws.MaxNotifyAge != webhook.DefaultMaxNotifyAge.String() || ws.MaxNotifyFuture != webhook.DefaultMaxNotifyFuture.String() {
			t.Errorf("skew %s: got limits %s and %s, want the webhook's defaults %s and %s", skew, ws.MaxNotifyAge, ws.MaxNotifyFuture,
				webhook.DefaultMaxNotifyAge, webhook.DefaultMaxNotifyFuture)
		}
		var b bytes.Buffer
		ws.Print(&b)
		if strings.Contains(b.String(), "WRONG") {
			t.Errorf("skew %s: got %q, want no WRONG CLOCK within the default limits", skew, b.String())
		}
	}
}
