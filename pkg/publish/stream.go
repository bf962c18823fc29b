package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// streamCallTimeout bounds one JetStream API call made to manage the stream.
const streamCallTimeout = 5 * time.Second

// ensureStream creates the stream when it is absent and checks an existing
// one against the contract (contract.go). An existing stream is never
// changed: its problems are reported, and those that would lose
// notifications make the publisher hold them in the spool.
func (p *Publisher) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, streamCallTimeout)
	defer cancel()
	s, err := p.js.Stream(ctx, p.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = p.js.CreateStream(ctx, p.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created by someone else in the meantime: treat it as theirs.
			if s, err = p.js.Stream(ctx, p.cfg.Stream); err != nil {
				return fmt.Errorf("look up stream %s: %w", p.cfg.Stream, err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %w", p.cfg.Stream, err)
		}
		p.log.Info("nats stream created",
			zap.String("stream", p.cfg.Stream),
			zap.String("subjects", p.subjects()),
			zap.Duration("duplicate_window", p.cfg.DuplicateWindow),
			zap.Duration("max_age", p.cfg.StreamMaxAge),
			zap.Int("replicas", p.cfg.StreamReplicas),
		)
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", p.cfg.Stream, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		// A create answer carries no placement; ask for it, so that the
		// leader and replicas are known from the start, not from the
		// first recheck.
		if full, err := s.Info(ctx); err == nil {
			info = full
		}
	}
	p.observeStream(info)
	p.streamReady.Store(true)
	return nil
}

// streamState is what the publisher last learnt of its stream.
type streamState struct {
	hold atomic.Bool // a problem makes Publish spool instead of publishing

	mu       sync.Mutex
	checked  time.Time // when the stream was last looked at; zero: never
	problems []StreamProblem
	cluster  *jetstream.ClusterInfo // nil for a stream outside a cluster
}

// observeStream records a fresh look at the stream: its contract problems
// (logged when they appear and clear) and its cluster placement.
func (p *Publisher) observeStream(info *jetstream.StreamInfo) {
	if info == nil {
		return
	}
	problems := checkContract(p.cfg, info.Config)
	st := &p.stream
	st.mu.Lock()
	old := st.problems
	st.checked = time.Now()
	st.problems = problems
	st.cluster = info.Cluster
	st.hold.Store(holds(problems))
	st.mu.Unlock()
	for _, pr := range problems {
		if !slices.ContainsFunc(old, func(o StreamProblem) bool { return o == pr }) {
			p.log.Warn("nats stream breaks the contract",
				zap.String("stream", info.Config.Name),
				zap.String("problem", pr.Problem),
				zap.Bool("hold", pr.Hold),
				zap.String("detail", pr.Detail),
			)
		}
	}
	if len(old) > 0 && len(problems) == 0 {
		p.log.Info("nats stream fits the contract again", zap.String("stream", info.Config.Name))
	}
	for _, name := range contractProblems {
		v := 0.0
		if slices.ContainsFunc(problems, func(pr StreamProblem) bool { return pr.Problem == name }) {
			v = 1
		}
		p.sm.problem[name].Set(v)
	}
}

// streamCheckDue reports whether the stream should be looked at again.
func (p *Publisher) streamCheckDue() bool {
	st := &p.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	every := contractRecheckOK
	if len(st.problems) > 0 {
		every = contractRecheckBroken
	}
	return time.Since(st.checked) >= every
}

// recheckWait is how long the forwarder may sleep before the next look at
// the stream.
func (p *Publisher) recheckWait() time.Duration {
	if p.stream.hold.Load() {
		return contractRecheckBroken
	}
	return idleRecheck
}

// holding reports whether notifications are held in the spool because the
// stream breaks the contract.
func (p *Publisher) holding() bool { return p.stream.hold.Load() }

// streamSnapshot returns the last problems and cluster placement seen.
func (p *Publisher) streamSnapshot() ([]StreamProblem, *jetstream.ClusterInfo) {
	st := &p.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.problems), st.cluster
}

// streamConfig is the configuration of a stream this package creates.
func (p *Publisher) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        p.cfg.Stream,
		Description: "Agora NCS webhook notifications published by ncs-gateway",
		Subjects:    []string{p.subjects()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      p.cfg.StreamMaxAge,
		Duplicates:  p.cfg.DuplicateWindow,
		Replicas:    p.cfg.StreamReplicas,
	}
}

// subjects is the wildcard subject the stream must cover.
func (p *Publisher) subjects() string { return p.cfg.SubjectPrefix + ".>" }

// subjectCovers reports whether every subject matching subj (which may
// hold wildcards) also matches filter.
func subjectCovers(filter, subj string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subj, ".")
	for i, f := range ft {
		if f == ">" {
			return i < len(st)
		}
		if i >= len(st) {
			return false
		}
		switch s := st[i]; {
		case f == "*":
			if s == ">" {
				return false
			}
		case f != s:
			return false
		}
	}
	return len(ft) == len(st)
}
