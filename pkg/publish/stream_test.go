package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		filter, subj string
		want         bool
	}{
		{">", "agora.ncs.>", true},
		{"agora.>", "agora.ncs.>", true},
		{"agora.ncs.>", "agora.ncs.>", true},
		{"agora.*.>", "agora.ncs.>", true},
		{"agora.ncs.*", "agora.ncs.>", false},
		{"agora.ncs.3.>", "agora.ncs.>", false},
		{"agora.ncs", "agora.ncs.>", false},
		{"other.>", "agora.ncs.>", false},
		{"agora.ncs.>", "agora.ncs", false},
		{"agora.ncs.*", "agora.ncs.x", true},
		{"*.*", "agora.ncs", true},
		{"*", "agora.ncs", false},
	}
	for _, tt := range tests {
		if got := subjectCovers(tt.filter, tt.subj); got != tt.want {
			t.Errorf("subjectCovers(%q, %q): got %t, want %t", tt.filter, tt.subj, got, tt.want)
		}
	}
}

func TestCheckContract(t *testing.T) {
	cfg := defaultConfig()
	cfg.StreamReplicas = 3
	fits := jetstream.StreamConfig{
		Name: "S", Subjects: []string{"agora.>"}, Discard: jetstream.DiscardOld,
		MaxAge: 0, Duplicates: 2 * time.Hour, Replicas: 3, MaxMsgs: -1, MaxBytes: 1 << 40,
	}
	tests := []struct {
		name string
		edit func(*jetstream.StreamConfig)
		want []string // problem names; hold is checked by holdWant
		hold bool
	}{
		{"fits", func(*jetstream.StreamConfig) {}, nil, false},
		{"other subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"other.>"} }, []string{problemSubjects}, true},
		{"narrower subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"agora.ncs.3.>", "x"} }, []string{problemSubjects}, true},
		{"short window", func(c *jetstream.StreamConfig) { c.Duplicates = time.Minute }, []string{problemDuplicateWindow}, false},
		{"fewer replicas", func(c *jetstream.StreamConfig) { c.Replicas = 1 }, []string{problemReplicas}, false},
		{"more replicas", func(c *jetstream.StreamConfig) { c.Replicas = 5 }, nil, false},
		{"short max age", func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }, []string{problemMaxAge}, true},
		{"longer max age", func(c *jetstream.StreamConfig) { c.MaxAge = 1000 * time.Hour }, nil, false},
		{"discard new with max bytes", func(c *jetstream.StreamConfig) { c.Discard = jetstream.DiscardNew }, []string{problemDiscardNew}, true},
		{"discard new unlimited", func(c *jetstream.StreamConfig) { c.Discard, c.MaxBytes = jetstream.DiscardNew, -1 }, nil, false},
		{"per subject limit", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 10 }, []string{problemPerSubjectLimit}, true},
		{"sealed", func(c *jetstream.StreamConfig) { c.Sealed = true }, []string{problemNotWritable}, true},
		{"issue 10's stream", func(c *jetstream.StreamConfig) { c.Subjects, c.Duplicates = []string{"other.>"}, time.Minute },
			[]string{problemSubjects, problemDuplicateWindow}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := fits
			tt.edit(&sc)
			got := checkContract(cfg, sc)
			var names []string
			for _, p := range got {
				names = append(names, p.Problem)
				if !strings.Contains(p.Detail, "S") || !strings.Contains(p.Detail, "nats") {
					t.Errorf("detail %q: want it to name the stream and the fix", p.Detail)
				}
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("problems: got %v, want %v", names, tt.want)
			}
			if h := holds(got); h != tt.hold {
				t.Errorf("hold: got %t, want %t", h, tt.hold)
			}
		})
	}
}

// TestStreamBreakingContractHoldsThenDrains: a stream created beforehand
// with subjects other.> and a 1-minute duplicate window. The publisher
// leaves it unchanged, holds every message in the spool, says why in
// Status, the metrics and one warning per problem; once the operator fixes
// the stream the spool drains by itself.
func TestStreamBreakingContractHoldsThenDrains(t *testing.T) {
	srv := startNATS(t)
	_, js := srv.client()
	ctx := context.Background()
	bad := jetstream.StreamConfig{
		Name: DefaultStream, Subjects: []string{"other.>"}, Duplicates: time.Minute, Storage: jetstream.FileStorage,
	}
	if _, err := js.CreateStream(ctx, bad); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	p := newTestPublisher(t, testConfig(srv.url(), t.TempDir()), true)
	eventually(t, 10*time.Second, "the stream checked", func() error {
		if !p.holding() {
			return errors.New("not holding")
		}
		return nil
	})
	for i := range 3 {
		if out, err := p.Publish(ctx, testMsg(i)); err != nil || out != Spooled {
			t.Fatalf("publish %d: got %v, %v, want spooled, nil", i, out, err)
		}
	}
	st := p.Status(ctx)
	var names []string
	for _, pr := range st.StreamProblems {
		names = append(names, pr.Problem)
	}
	if !st.Holding || !slices.Equal(names, []string{problemSubjects, problemDuplicateWindow}) || st.SpoolDepth != 3 {
		t.Errorf("status: got holding %t, problems %v, spool depth %d; want true, [subjects duplicate_window], 3", st.Holding, names, st.SpoolDepth)
	}
	if v := p.metric(t, "ncs_gateway_nats_stream_contract_problem", "problem", problemSubjects); v != 1 {
		t.Errorf("contract_problem{subjects}: got %v, want 1", v)
	}
	if v := p.metric(t, "ncs_gateway_nats_stream_contract_problem", "problem", problemReplicas); v != 0 {
		t.Errorf("contract_problem{replicas}: got %v, want 0", v)
	}
	if v := p.metric(t, "ncs_gateway_nats_stream_holding"); v != 1 {
		t.Errorf("stream_holding: got %v, want 1", v)
	}
	if v := p.metric(t, "ncs_gateway_nats_publish_failures_total", "reason", reasonHeld); v != 3 {
		t.Errorf("publish_failures{stream_contract}: got %v, want 3", v)
	}
	if n := p.logs.FilterMessage("nats stream breaks the contract").Len(); n != 2 {
		t.Errorf("contract warnings after several checks: got %d, want 2 (one per problem)", n)
	}
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatalf("look up stream: %v", err)
	}
	if sc := s.CachedInfo().Config; sc.Duplicates != time.Minute || !slices.Equal(sc.Subjects, []string{"other.>"}) {
		t.Errorf("stream after start: got subjects %v, duplicates %s; want it unchanged", sc.Subjects, sc.Duplicates)
	}

	// The operator fixes the stream; the gateway sees it within seconds.
	fixed := bad
	fixed.Subjects = []string{"other.>", "agora.ncs.>"}
	fixed.Duplicates = DefaultDuplicateWindow
	if _, err := js.UpdateStream(ctx, fixed); err != nil {
		t.Fatalf("update stream: %v", err)
	}
	eventually(t, 30*time.Second, "the spool drained into the fixed stream", func() error {
		if n, err := streamCount(js, DefaultStream); err != nil || n != 3 {
			return fmt.Errorf("stream holds %d messages (%v), want 3", n, err)
		}
		if d := p.spool.stats().depth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	if p.holding() || p.metric(t, "ncs_gateway_nats_stream_contract_problem", "problem", problemSubjects) != 0 {
		t.Errorf("after the fix: still holding or reporting the subjects problem")
	}
	if n := p.logs.FilterMessage("nats stream fits the contract again").Len(); n != 1 {
		t.Errorf("recovery log lines: got %d, want 1", n)
	}
}
