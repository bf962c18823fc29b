// Package status is what the running daemon reports of itself: the model
// behind GET /status on the admin listener and the control socket, why it
// is not ready, and the text `ncs-gateway -status` prints from it.
package status

import (
	"cmp"
	"context"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/firewall/refresh"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ledger"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// Publisher is what the status reads from the publisher.
type Publisher interface {
	Ready() bool
	Status(ctx context.Context) publish.Status
	StreamProblems() []publish.StreamProblem
}

// Ledger is what the status reads from the session ledger.
type Ledger interface {
	Status() ledger.Status
	Sessions() []ledger.Summary
}

// ClockSkewer reports how far this host's clock is from Agora's notifyMs.
type ClockSkewer interface {
	ClockSkew() (skew time.Duration, seen time.Time, ok bool)
}

// Source assembles /readyz and /status from the running components.
type Source struct {
	Version     string
	Backend     string
	Ports       []uint16
	StaticAllow []string
	// MaxNotifyAge and MaxNotifyFuture are webhook.max_notify_age and
	// max_notify_future as configured; zero means the webhook's default,
	// and the status shows and judges by the limit in force.
	MaxNotifyAge, MaxNotifyFuture time.Duration
	Ref                           *refresh.Refresher
	Pub                           Publisher
	Hook                          ClockSkewer // nil: not known (a one-shot's view)
	Ledger                        Ledger      // nil: no ledger (tests)
	// Stalled lists the parts whose loop stopped showing it runs (the
	// watchdog's view); nil when there is none.
	Stalled func() []string
}

// Daemon is the JSON of GET /status, read by `ncs-gateway -status`.
type Daemon struct {
	Version   string         `json:"version"`
	Ready     bool           `json:"ready"`
	NotReady  []string       `json:"not_ready,omitempty"`
	Allowlist Allowlist      `json:"allowlist"`
	NATS      publish.Status `json:"nats"`
	Webhook   Webhook        `json:"webhook"`
	Ledger    *ledger.Status `json:"ledger,omitempty"`
}

// Webhook is what the webhook has seen of Agora's clock: the host's clock
// minus notifyMs of the latest signed notification. A host whose clock is
// off refuses every notification as stale or future; this says so.
type Webhook struct {
	ClockSkewSeconds *float64  `json:"clock_skew_seconds,omitempty"`
	SkewSeenAt       time.Time `json:"skew_seen_at,omitzero"`
	MaxNotifyAge     string    `json:"max_notify_age"`
	MaxNotifyFuture  string    `json:"max_notify_future"`
}

// Allowlist describes the applied allowlist.
type Allowlist struct {
	Backend     string          `json:"backend"`
	Ports       []uint16        `json:"ports"`
	Addresses   []string        `json:"addresses"`
	StaticAllow []string        `json:"static_allow"`
	FetchedAt   *time.Time      `json:"fetched_at,omitempty"`
	AgeSeconds  float64         `json:"age_seconds"`
	Source      string          `json:"source,omitempty"`
	LastRefresh *refresh.Record `json:"last_refresh,omitempty"`
	// PersistError: the applied list is not saved to state_dir yet.
	PersistError string `json:"persist_error,omitempty"`
}

// Status is the daemon's state now.
func (s *Source) Status(ctx context.Context) Daemon {
	st := Daemon{Version: s.Version, NATS: s.Pub.Status(ctx)}
	rs := s.Ref.Status()
	al := Allowlist{
		Backend:     s.Backend,
		Ports:       s.Ports,
		StaticAllow: s.StaticAllow,
		Addresses:   []string{},
		AgeSeconds:  -1,
	}
	al.PersistError = rs.PersistError
	if !rs.Last.At.IsZero() {
		al.LastRefresh = &rs.Last
	}
	if state := rs.State; state != nil {
		for _, a := range state.Addrs() {
			al.Addresses = append(al.Addresses, a.String())
		}
		fetched := state.FetchedAt
		al.FetchedAt, al.AgeSeconds, al.Source = &fetched, time.Since(fetched).Seconds(), state.Source
	}
	st.Allowlist = al
	st.Webhook = Webhook{
		MaxNotifyAge:    cmp.Or(s.MaxNotifyAge, webhook.DefaultMaxNotifyAge).String(),
		MaxNotifyFuture: cmp.Or(s.MaxNotifyFuture, webhook.DefaultMaxNotifyFuture).String(),
	}
	if s.Hook != nil {
		if skew, seen, ok := s.Hook.ClockSkew(); ok {
			sec := skew.Seconds()
			st.Webhook.ClockSkewSeconds, st.Webhook.SkewSeenAt = &sec, seen
		}
	}
	if s.Ledger != nil {
		ls := s.Ledger.Status()
		st.Ledger = &ls
	}
	st.NotReady = s.notReady(rs)
	st.Ready = len(st.NotReady) == 0
	return st
}

// Sessions lists the ledger's open and flagged sessions, for -sessions.
func (s *Source) Sessions() []ledger.Summary {
	if s.Ledger == nil {
		return []ledger.Summary{}
	}
	return s.Ledger.Sessions()
}

// NotReady lists why the gateway cannot take Agora's notifications now.
func (s *Source) NotReady() []string { return s.notReady(s.Ref.Status()) }

// notReady judges from the applied allowlist (in memory, whatever state_dir
// holds) and the publisher's local view: no request to NATS, so /readyz
// stays cheap.
func (s *Source) notReady(rs refresh.Status) []string {
	var why []string
	if !s.Pub.Ready() {
		why = append(why, "nats: disconnected and the spool cannot take notifications")
	}
	if s.Backend != "none" && rs.FetchEnabled && (rs.State == nil || len(rs.State.Entries) == 0) {
		why = append(why, "allowlist: no NCS address applied yet; the webhook ports are open only to static_allow (secure default) until a refresh succeeds")
	}
	if s.Stalled != nil {
		for _, part := range s.Stalled() {
			why = append(why, "stalled: "+part)
		}
	}
	return why
}
