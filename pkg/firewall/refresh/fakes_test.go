package refresh

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeFirewall records what it was given and fails on demand.
type fakeFirewall struct {
	mu         sync.Mutex
	applied    []netip.Prefix
	applies    int
	reconciles int
	failApply  error
	repair     bool // the next Reconcile reports a repair
}

var _ Firewall = (*fakeFirewall)(nil)

func (f *fakeFirewall) Apply(_ context.Context, allow []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failApply != nil {
		return f.failApply
	}
	f.applies++
	f.applied = slices.Clone(allow)
	return nil
}

func (f *fakeFirewall) Reconcile(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reconciles++
	r := f.repair
	f.repair = false
	return r, nil
}

func (f *fakeFirewall) kernel() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

// watchingFirewall is a fakeFirewall that also reports ruleset changes.
type watchingFirewall struct {
	*fakeFirewall
	changed chan func()
}

func (w *watchingFirewall) Watch(ctx context.Context, changed func()) error {
	w.changed <- changed
	<-ctx.Done()
	return nil
}

// fakeStore is an in-memory state file whose saves fail on demand.
type fakeStore struct {
	mu       sync.Mutex
	st       *State
	failSave error
	saves    int
}

var _ Store = (*fakeStore)(nil)

func (s *fakeStore) Load() (*State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil, nil
	}
	c := *s.st
	return &c, nil
}

func (s *fakeStore) Save(st *State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSave != nil {
		return s.failSave
	}
	s.saves++
	c := *st
	s.st = &c
	return nil
}

func (s *fakeStore) addrs() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil
	}
	return s.st.Addrs()
}

var errDiskFull = errors.New("write allowlist.json: no space left on device")

// value reads a single-series counter or gauge.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither a counter nor a gauge", m.Desc())
	return 0
}
