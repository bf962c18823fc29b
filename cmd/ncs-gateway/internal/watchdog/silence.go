package watchdog

import (
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip"
)

// MaxFetchTime is the longest one ncsip fetch may take while Agora is slow
// or failing, and so the longest a loop that waits on it may stay silent:
// every attempt runs to cfg.Timeout, and each wait between two attempts is
// its backoff or a Retry-After capped at cfg.MaxRetryAfter, whichever the
// client picks. Zero fields count as the client's defaults. With the
// defaults (10 s, backoff 1 s 3 s 6 s, Retry-After cap 10 s) it is 70 s.
func MaxFetchTime(cfg ncsip.Config) time.Duration {
	timeout, capRA, backoff := cfg.Timeout, cfg.MaxRetryAfter, cfg.Backoff
	if timeout == 0 {
		timeout = ncsip.DefaultTimeout
	}
	if capRA == 0 {
		capRA = ncsip.DefaultMaxRetryAfter
	}
	if backoff == nil {
		backoff = ncsip.DefaultBackoff
	}
	d := time.Duration(1+len(backoff)) * timeout
	for _, b := range backoff {
		d += max(b, capRA)
	}
	return d
}

// Max silences of the daemon's parts: each is the longest its loop may go
// without a heartbeat while it is only waiting on something legitimate.
// A stalled part stops the pings; systemd then acts after WatchdogSec
// (30 s in the shipped unit) more.
const (
	// WebhookMaxSilence: the self-probe marks every 5 s when answered, and
	// one probe may wait 15 s at the connection cap under a flood; 60 s is
	// three such probes in a row left unanswered.
	WebhookMaxSilence = 60 * time.Second
	// RefresherMaxSilence: the reconcile loop marks every second while it
	// waits; a pass waits for a concurrent refresh's apply and save, then
	// reads the kernel back and repairs it. That is kernel and disk work,
	// seconds at most with nftables, but iptables tools wait for the
	// xtables lock as long as another program holds it.
	RefresherMaxSilence = 120 * time.Second
	// LedgerMaxSilence: the ledger's loop marks at every fetch, at every
	// session it writes and every second while it waits; a session's write
	// is a few NATS calls of 5 s at most each, retried on a conflict, and a
	// NATS outage only makes them fail sooner.
	LedgerMaxSilence = 120 * time.Second
)

// PublisherMaxSilence is the forwarder's max silence for nats.publish_timeout
// d: it marks every second while it waits (NATS down included), and one
// pass is a stream check (5 s at most), a batch whose acknowledgements are
// awaited for up to d, and spool writes with fsync; 30 s plus twice d
// covers all three on a slow disk (36 s with the default 3 s).
func PublisherMaxSilence(d time.Duration) time.Duration { return 30*time.Second + 2*d }

// SchedulerMaxSilence is the refresh scheduler's max silence, if its loop
// marks only between refreshes: a scheduled refresh may first wait for one
// already running (the control socket's, SIGHUP's) and then fetch itself,
// each up to MaxFetchTime, then apply and persist: twice the fetch plus
// 30 s (170 s with the defaults). A loop that marks while its refresh runs
// needs only RefresherMaxSilence.
func SchedulerMaxSilence(fetch ncsip.Config) time.Duration {
	return 2*MaxFetchTime(fetch) + 30*time.Second
}
