package refresh

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

func TestCheckSchedule(t *testing.T) {
	tests := []struct {
		spec string
		ok   bool
	}{
		{"@every 1h", true},
		{"@every 24h", true},
		{"@every 24h1s", false},
		{"@hourly", true},
		{"@daily", true},
		{"0 3 * * *", true},
		{"*/5 * * * *", true},
		{"* * * * *", true}, // once a minute is the floor
		{"@every 1m", true},
		{"0 */12 * * *", true},
		{"CRON_TZ=Europe/Berlin 0 12 * * *", false}, // 25 h across the autumn DST change
		{"CRON_TZ=Europe/Berlin 0 */6 * * *", true},
		{"@weekly", false},
		{"0 3 * * 1", false},
		{"0 0 * * 1-5", false}, // no run over the weekend
		{"0 0 1 * *", false},
		{"0 * 1-30 * *", false}, // nothing on the 31st
		{"not a spec", false},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			err := CheckSchedule(tt.spec)
			if (err == nil) != tt.ok {
				t.Errorf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestCheckScheduleFloor: a schedule faster than once a minute calls
// Agora's API with the customer's credentials for nothing; the refusal
// says the floor and why.
func TestCheckScheduleFloor(t *testing.T) {
	for _, spec := range []string{"@every 1s", "@every 30s", "@every 59s"} {
		err := CheckSchedule(spec)
		if err == nil {
			t.Errorf("%s: got ok, want a refusal", spec)
			continue
		}
		for _, want := range []string{"more than once a minute", "Agora's REST API with the customer's credentials", "at most every 1m0s"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %q, want it to contain %q", spec, err, want)
			}
		}
	}
}

// TestSchedulerRefreshesAtStartAndOnHUP: one Refresh at start, one per
// SIGHUP after the reload hook, and the heartbeat moves while it idles.
func TestSchedulerRefreshesAtStartAndOnHUP(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "198.51.100.1")
	hup := make(chan os.Signal, 1)
	hups := make(chan struct{}, 4)
	s, err := NewScheduler("@every 1h", f.ref, hup, func() { hups <- struct{}{} }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	waitFor(t, "the refresh at start", func() bool { return f.api.Requests() >= 1 })
	first := s.LastBeat()
	if first.IsZero() {
		t.Fatal("LastBeat: got zero, want the start's mark")
	}
	f.api.SetIPs([]string{"198.51.100.1", "198.51.100.2"})
	hup <- syscall.SIGHUP
	waitFor(t, "the SIGHUP's refresh", func() bool { return len(f.store.addrs()) == 2 })
	select {
	case <-hups:
	default:
		t.Error("onHUP: got no call, want one before the refresh")
	}
	if !s.LastBeat().After(first) {
		t.Errorf("LastBeat: got %v, want after %v (marked at the SIGHUP)", s.LastBeat(), first)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("got no %s within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSchedulerRefreshesOnTheSchedule: ticks alone refresh. The schedule
// is set below the operator's floor, which only CheckSchedule enforces, to
// keep the test short.
func TestSchedulerRefreshesOnTheSchedule(t *testing.T) {
	f := newFixture(t, fixtureConfig{}, "198.51.100.1")
	s, err := NewScheduler("@every 1h", f.ref, nil, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.sched = cron.ConstantDelaySchedule{Delay: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "the refresh at start", func() bool { return len(f.store.addrs()) == 1 })
	f.api.SetIPs([]string{"198.51.100.1", "198.51.100.2"})
	waitFor(t, "a scheduled refresh", func() bool { return len(f.store.addrs()) == 2 })
}
