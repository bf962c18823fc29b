package firewall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// fakeIPTables is a map-backed iptRunner for one family's filter table:
// chain name to rules, each rule kept as the text iptables -S prints after
// "-A CHAIN ". It understands the restore scripts write produces, and
// fails on demand.
type fakeIPTables struct {
	chains map[string][]string
	// restoreErr makes RestoreNoflush fail without changing anything;
	// restoreIgnored makes it succeed without changing anything.
	restoreErr     error
	restoreIgnored bool
	restores       []string // scripts received, in order
}

var _ iptRunner = (*fakeIPTables)(nil)

func newFakeIPTables() *fakeIPTables {
	return &fakeIPTables{chains: map[string][]string{"INPUT": nil, "FORWARD": nil, "OUTPUT": nil}}
}

var errFakeNoChain = errors.New("fake iptables: no chain by that name")

func builtin(chain string) bool { return chain == "INPUT" || chain == "FORWARD" || chain == "OUTPUT" }

func (f *fakeIPTables) ChainExists(_, chain string) (bool, error) {
	_, ok := f.chains[chain]
	return ok, nil
}

// List prints the chain the way iptables -S does.
func (f *fakeIPTables) List(_, chain string) ([]string, error) {
	rules, ok := f.chains[chain]
	if !ok {
		return nil, errFakeNoChain
	}
	out := []string{"-N " + chain}
	if builtin(chain) {
		out[0] = "-P " + chain + " ACCEPT"
	}
	for _, r := range rules {
		out = append(out, "-A "+chain+" "+r)
	}
	return out, nil
}

func (f *fakeIPTables) Exists(_, chain string, spec ...string) (bool, error) {
	rules, ok := f.chains[chain]
	if !ok {
		return false, errFakeNoChain
	}
	return slices.Contains(rules, restoreLine(spec)), nil
}

func (f *fakeIPTables) Delete(_, chain string, spec ...string) error {
	return f.delete(chain, restoreLine(spec))
}

func (f *fakeIPTables) delete(chain, rule string) error {
	rules, ok := f.chains[chain]
	if !ok {
		return errFakeNoChain
	}
	i := slices.Index(rules, rule)
	if i < 0 {
		return fmt.Errorf("fake iptables: no rule %q in %s", rule, chain)
	}
	f.chains[chain] = slices.Delete(rules, i, i+1)
	return nil
}

func (f *fakeIPTables) ClearAndDeleteChain(_, chain string) error {
	delete(f.chains, chain)
	return nil
}

// RestoreNoflush applies a script of the shape write produces: a declared
// chain is created or emptied, then -A, -I CHAIN 1 and -D lines apply in
// order. Like iptables-restore, it applies all or nothing.
func (f *fakeIPTables) RestoreNoflush(_ context.Context, script []byte) error {
	f.restores = append(f.restores, string(script))
	if f.restoreErr != nil {
		return f.restoreErr
	}
	if f.restoreIgnored {
		return nil
	}
	next := make(map[string][]string, len(f.chains))
	for c, r := range f.chains {
		next[c] = slices.Clone(r)
	}
	for line := range strings.Lines(string(script)) {
		line = strings.TrimRight(line, "\n")
		fields := strings.SplitN(line, " ", 3)
		switch {
		case line == "*filter" || line == "COMMIT":
		case strings.HasPrefix(line, ":"):
			next[strings.TrimPrefix(fields[0], ":")] = nil
		case fields[0] == "-A" && len(fields) == 3:
			if _, ok := next[fields[1]]; !ok {
				return fmt.Errorf("fake restore: %q: %w", line, errFakeNoChain)
			}
			next[fields[1]] = append(next[fields[1]], fields[2])
		case fields[0] == "-I" && len(fields) == 3 && strings.HasPrefix(fields[2], "1 "):
			next[fields[1]] = slices.Insert(next[fields[1]], 0, strings.TrimPrefix(fields[2], "1 "))
		case fields[0] == "-D" && len(fields) == 3:
			i := slices.Index(next[fields[1]], fields[2])
			if i < 0 {
				return fmt.Errorf("fake restore: %q: no such rule", line)
			}
			next[fields[1]] = slices.Delete(next[fields[1]], i, i+1)
		default:
			return fmt.Errorf("fake restore: line %q not understood", line)
		}
	}
	f.chains = next
	return nil
}

// save prints the table the way iptables-save -t filter does.
func (f *fakeIPTables) save() []byte {
	var b strings.Builder
	b.WriteString("*filter\n")
	names := make([]string, 0, len(f.chains))
	for c := range f.chains {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		policy := "-"
		if builtin(c) {
			policy = "ACCEPT"
		}
		fmt.Fprintf(&b, ":%s %s [0:0]\n", c, policy)
	}
	for _, c := range names {
		for _, r := range f.chains[c] {
			fmt.Fprintf(&b, "-A %s %s\n", c, r)
		}
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}
