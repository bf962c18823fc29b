package status

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
