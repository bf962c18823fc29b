package firewall

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// iptRunner is what the iptables backend does to one family's rules: the
// few go-iptables calls it makes, plus iptables-restore, for which
// go-iptables has no API. It is the seam the map-backed fake of the unit
// tests replaces; the namespace tests run the real one.
type iptRunner interface {
	ChainExists(table, chain string) (bool, error)
	List(table, chain string) ([]string, error)
	Exists(table, chain string, rulespec ...string) (bool, error)
	Delete(table, chain string, rulespec ...string) error
	ClearAndDeleteChain(table, chain string) error
	// RestoreNoflush commits an iptables-restore script in one go,
	// leaving every chain it does not declare as it is.
	RestoreNoflush(ctx context.Context, script []byte) error
}

// goIPTables is the real iptRunner: go-iptables and the restore tool of
// the same variant (nft or legacy).
type goIPTables struct {
	*iptables.IPTables
	restore string // path of iptables-restore or ip6tables-restore
}

var _ iptRunner = goIPTables{}

// RestoreNoflush runs the restore tool with --noflush, waiting for the
// xtables lock (iptables-legacy) at most 10 s.
func (g goIPTables) RestoreNoflush(ctx context.Context, script []byte) error {
	_, err := runTool(ctx, script, g.restore, "--noflush", "--wait", "10")
	return err
}

// repair puts this family's chain and jump in place after quickCheck found
// them different, and verifies them; it returns what differed, or nil.
// Someone else's rules are never removed: a rule above our jump is drift
// because it can accept what our chain would drop, and the repair moves
// the jump back to the top, above it.
//
// quickCheck compares iptables-save text with the lines we write. Only
// when they differ (drift, first Apply, or a tool that prints rules in
// another form than we write them) does the semantic check with
// "iptables -C" decide, so a formatting difference costs time but never
// causes a rewrite.
func (f *iptFamily) repair(ctx context.Context) (drift, err error) {
	st, err := f.check()
	if err != nil || st.drift == nil {
		return nil, err
	}
	if err := f.write(ctx, st); err != nil {
		return nil, err
	}
	after, err := f.check()
	if err != nil {
		return nil, fmt.Errorf("verify %s chain: %w", f.name, err)
	}
	if after.drift != nil {
		return nil, fmt.Errorf("verify %s chain: %w", f.name, after.drift)
	}
	return st.drift, nil
}

// quickCheck reports whether iptables-save output shows our chain
// declared, holding exactly our rules, and the jump as the first rule of
// INPUT, in the form we write them.
func (f *iptFamily) quickCheck(save []byte) bool {
	var declared, jump, seenInput bool
	var rules []string
	jumpLine := f.jumpLine()
	for line := range strings.Lines(string(save)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, ":"+f.chain+" "):
			declared = true
		case strings.HasPrefix(line, "-A "+f.chain+" "):
			rules = append(rules, line)
		case strings.HasPrefix(line, "-A INPUT "):
			if !seenInput {
				jump = line == jumpLine
				seenInput = true
			}
		}
	}
	want := make([]string, len(f.rules))
	for i, r := range f.rules {
		want[i] = "-A " + f.chain + " " + restoreLine(r)
	}
	return declared && jump && slices.Equal(rules, want)
}

// jumpLine is the jump as iptables-save and iptables -S print it.
func (f *iptFamily) jumpLine() string {
	return "-A INPUT " + restoreLine(f.jump)
}

// chainState is what check found in one family's filter table.
type chainState struct {
	jumps     int   // how many jumps to our chain INPUT holds
	jumpFirst bool  // the first rule of INPUT is our jump
	drift     error // how chain or jump differ from ours; nil when they match
}

// check compares our chain and jump with what they should be. Rules are
// compared with "iptables -C", which compares meaning, not text.
func (f *iptFamily) check() (chainState, error) {
	// -S of a missing chain exits 1 (iptables-nft 1.8.9 then wrongly
	// says "incompatible", so the message is not matched).
	exists, err := f.ipt.ChainExists("filter", f.chain)
	if err != nil {
		return chainState{}, fmt.Errorf("check %s chain %s: %w", f.name, f.chain, err)
	}
	if !exists {
		return chainState{drift: fmt.Errorf("%s chain %s missing", f.name, f.chain)}, nil
	}
	lines, err := f.ipt.List("filter", f.chain)
	if err != nil {
		return chainState{}, fmt.Errorf("list %s chain %s: %w", f.name, f.chain, err)
	}
	input, err := f.ipt.List("filter", "INPUT")
	if err != nil {
		return chainState{}, fmt.Errorf("list %s INPUT: %w", f.name, err)
	}
	var st chainState
	first := ""
	for _, l := range input {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		if first == "" {
			first = l
		}
		if l == f.jumpLine() {
			st.jumps++
		}
	}
	st.jumpFirst = first == f.jumpLine()
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			n++
		}
	}
	if n != len(f.rules) {
		st.drift = fmt.Errorf("%s chain %s: got %d rules, want %d", f.name, f.chain, n, len(f.rules))
		return st, nil
	}
	for _, r := range f.rules {
		ok, err := f.ipt.Exists("filter", f.chain, r...)
		if err != nil {
			return chainState{}, fmt.Errorf("check %s rule: %w", f.name, err)
		}
		if !ok {
			st.drift = fmt.Errorf("%s chain %s: rule %q missing", f.name, f.chain, strings.Join(r, " "))
			return st, nil
		}
	}
	switch {
	case st.jumps == 0:
		st.drift = fmt.Errorf("%s jump to %s missing from INPUT", f.name, f.chain)
	case !st.jumpFirst:
		st.drift = fmt.Errorf("%s jump to %s is not the first rule of INPUT", f.name, f.chain)
	}
	return st, nil
}

// write replaces our chain's rules and puts the jump first in INPUT, in one
// iptables-restore commit, so no packet sees the chain half written or the
// jump gone. With --noflush nothing else in the table is touched; a
// declared chain is created if missing and emptied if present. A jump that
// is not first is deleted and inserted again at the top; the rules that
// were above it stay, below it.
func (f *iptFamily) write(ctx context.Context, st chainState) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n", f.chain)
	for _, r := range f.rules {
		fmt.Fprintf(&b, "-A %s %s\n", f.chain, restoreLine(r))
	}
	if !st.jumpFirst {
		for range st.jumps {
			fmt.Fprintf(&b, "-D INPUT %s\n", restoreLine(f.jump))
		}
		fmt.Fprintf(&b, "-I INPUT 1 %s\n", restoreLine(f.jump))
	}
	b.WriteString("COMMIT\n")
	if err := f.ipt.RestoreNoflush(ctx, b.Bytes()); err != nil {
		return fmt.Errorf("write %s chain %s: %w", f.name, f.chain, err)
	}
	return nil
}

// restoreLine joins a rule spec for iptables-restore, quoting arguments
// with spaces (only our comment has any, and it holds no quotes).
func restoreLine(spec []string) string {
	q := make([]string, len(spec))
	for i, s := range spec {
		if strings.ContainsAny(s, " \t") {
			s = strconv.Quote(s)
		}
		q[i] = s
	}
	return strings.Join(q, " ")
}
