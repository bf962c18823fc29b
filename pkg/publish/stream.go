package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// streamCallTimeout bounds one JetStream API call made to manage the stream.
const streamCallTimeout = 5 * time.Second

// ensureStream creates the stream when it is absent. An existing stream is
// left alone; a warning is logged once if it does not cover the subjects
// or keeps message IDs for a shorter window than configured.
func (p *Publisher) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, streamCallTimeout)
	defer cancel()
	s, err := p.js.Stream(ctx, p.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = p.js.CreateStream(ctx, p.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created by someone else in the meantime: treat it as theirs.
			if s, err = p.js.Stream(ctx, p.cfg.Stream); err != nil {
				return fmt.Errorf("look up stream %s: %w", p.cfg.Stream, err)
			}
			p.checkStream(s.CachedInfo().Config)
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
	default:
		p.checkStream(s.CachedInfo().Config)
	}
	p.streamReady.Store(true)
	return nil
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

// checkStream warns, once per publisher, about an existing stream that does
// not fit: the operator owns it, so it is not changed.
func (p *Publisher) checkStream(sc jetstream.StreamConfig) {
	want := p.subjects()
	covered := false
	for _, s := range sc.Subjects {
		if subjectCovers(s, want) {
			covered = true
			break
		}
	}
	if !covered {
		p.warnSubjects.Do(func() {
			p.log.Warn("nats stream does not cover the publish subjects",
				zap.String("stream", sc.Name),
				zap.Strings("stream_subjects", sc.Subjects),
				zap.String("want_subjects", want),
			)
		})
	}
	if sc.Duplicates < p.cfg.DuplicateWindow {
		p.warnDuplicates.Do(func() {
			p.log.Warn("nats stream duplicate window shorter than configured",
				zap.String("stream", sc.Name),
				zap.Duration("stream_duplicate_window", sc.Duplicates),
				zap.Duration("want_duplicate_window", p.cfg.DuplicateWindow),
			)
		})
	}
}

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
