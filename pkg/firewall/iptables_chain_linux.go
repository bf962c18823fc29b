package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// repair puts this family's chain and jump in place after quickCheck found
// them different, and verifies them; it returns what differed, or nil.
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
	if err := f.write(ctx, st.jump); err != nil {
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
// declared, holding exactly our rules, and the jump in INPUT, in the form
// we write them.
func (f *iptFamily) quickCheck(save []byte) bool {
	var declared, jump bool
	var rules []string
	jumpLine := "-A INPUT " + strings.Join(f.jump, " ")
	for line := range strings.Lines(string(save)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, ":"+f.chain+" "):
			declared = true
		case strings.HasPrefix(line, "-A "+f.chain+" "):
			rules = append(rules, line)
		case line == jumpLine:
			jump = true
		}
	}
	want := make([]string, len(f.rules))
	for i, r := range f.rules {
		want[i] = "-A " + f.chain + " " + restoreLine(r)
	}
	return declared && jump && slices.Equal(rules, want)
}

// chainState is what check found in one family's filter table.
type chainState struct {
	jump  bool  // the jump to our chain is in INPUT
	drift error // how chain or jump differ from ours; nil when they match
}

// check compares our chain and jump with what they should be. Rules are
// compared with "iptables -C", which compares meaning, not text.
func (f *iptFamily) check() (chainState, error) {
	lines, err := f.ipt.List("filter", f.chain)
	if err != nil {
		// -S of a missing chain exits 1 (iptables-nft 1.8.9 then wrongly
		// says "incompatible", so the message is not matched).
		var e *iptables.Error
		if errors.As(err, &e) && e.ExitStatus() == 1 {
			return chainState{drift: fmt.Errorf("%s chain %s missing", f.name, f.chain)}, nil
		}
		return chainState{}, fmt.Errorf("list %s chain %s: %w", f.name, f.chain, err)
	}
	var st chainState
	// A jump can only exist when the chain does, else -C fails outright.
	if st.jump, err = f.ipt.Exists("filter", "INPUT", f.jump...); err != nil {
		return chainState{}, fmt.Errorf("check %s jump: %w", f.name, err)
	}
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
	if !st.jump {
		st.drift = fmt.Errorf("%s jump to %s missing from INPUT", f.name, f.chain)
	}
	return st, nil
}

// write replaces our chain's rules and adds the jump if absent, in one
// iptables-restore commit. With --noflush nothing else in the table is
// touched; a declared chain is created if missing and emptied if present.
func (f *iptFamily) write(ctx context.Context, jump bool) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n", f.chain)
	for _, r := range f.rules {
		fmt.Fprintf(&b, "-A %s %s\n", f.chain, restoreLine(r))
	}
	if !jump {
		fmt.Fprintf(&b, "-I INPUT 1 %s\n", restoreLine(f.jump))
	}
	b.WriteString("COMMIT\n")
	if _, err := runTool(ctx, b.Bytes(), f.restore, "--noflush", "--wait", "10"); err != nil {
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
