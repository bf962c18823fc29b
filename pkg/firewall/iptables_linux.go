package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"go.uber.org/zap"
)

// multiportMax is the most ports one multiport match takes.
const multiportMax = 15

// iptBackend owns, per family (iptables and ip6tables): one chain in the
// filter table, one jump to it at the top of INPUT, and one hash:net ipset.
//
// How a list is replaced with no moment when a listed address is dropped or
// an unlisted one allowed: the chain's rules name the set, never addresses,
// so a new list only changes set members, and those are replaced by filling
// a temporary set and swapping it with the live one (ipset swap, a single
// kernel operation per family) in one "ipset restore" run for both
// families. Chosen over "iptables-restore --noflush" of per-address rules
// (a rule walk per packet, and a big ruleset rewrite per change) and over
// make-before-break chains (two jumps, more moving parts to repair). The
// witness counters of TestKernelBackends saw no allowed SYN dropped and no
// unlisted SYN let through over 500 swaps. The chain itself is only
// rewritten when it is missing or differs (first Apply, drift, other
// ports), with "iptables-restore --noflush", which replaces the chain's
// rules and inserts the jump in one commit.
//
// One process per address is never run. A steady-state Apply runs four:
// "ipset restore", then "ipset save", "iptables-save" and "ip6tables-save"
// at once to read everything back.
//
// All work happens on the calling goroutine (go-iptables and os/exec fork
// from the calling thread), so the backend acts in the caller's network
// namespace; the tests rely on that.
type iptBackend struct {
	cfg Config
	log *zap.Logger

	mu         sync.Mutex
	families   []*iptFamily    // nil until first used: New must not run tools
	nftVariant bool            // iptables is iptables-nft, whose changes the nftables monitor reports
	setNames   map[string]bool // ipsets seen by the last read; nil if unknown
	applied    *allowlist
}

// iptFamily is the state of one IP family.
type iptFamily struct {
	name  string // "ipv4" or "ipv6", for logs and errors
	ipt   iptRunner
	save  string // iptables-save or ip6tables-save
	set   ipsetSpec
	chain string
	rules [][]string // rule specs of our chain, in order
	jump  []string   // rule spec of the jump in INPUT
}

var _ Firewall = (*iptBackend)(nil)

func newIPTables(cfg Config, log *zap.Logger) (*iptBackend, error) {
	return &iptBackend{cfg: cfg, log: log}, nil
}

// Backend returns "iptables".
func (b *iptBackend) Backend() string { return BackendIPTables }

// setup finds the tools on first use.
func (b *iptBackend) setup() error {
	if b.families != nil {
		return nil
	}
	var fams []*iptFamily
	for _, f := range []struct {
		name, tool, suffix, family string
		proto                      iptables.Protocol
	}{
		{"ipv4", "iptables", "v4", "inet", iptables.ProtocolIPv4},
		{"ipv6", "ip6tables", "v6", "inet6", iptables.ProtocolIPv6},
	} {
		ipt, err := iptables.New(iptables.IPFamily(f.proto))
		if err != nil {
			return fmt.Errorf("find %s iptables: %w", f.name, err)
		}
		// The restore and save tools from the same PATH as iptables, so
		// they are the same variant (nft or legacy).
		restore, err := exec.LookPath(f.tool + "-restore")
		if err != nil {
			return fmt.Errorf("find %s-restore: %w", f.tool, err)
		}
		save, err := exec.LookPath(f.tool + "-save")
		if err != nil {
			return fmt.Errorf("find %s-save: %w", f.tool, err)
		}
		fam := newIPTFamily(b.cfg, f.name, f.suffix, f.family, goIPTables{IPTables: ipt, restore: restore})
		fam.save = save
		fams = append(fams, fam)
	}
	if _, err := exec.LookPath("ipset"); err != nil {
		return fmt.Errorf("find ipset: %w", err)
	}
	// "iptables v1.8.9 (nf_tables)" or "(legacy)"; Watch polls less when
	// events report rule changes. A failure only means polling more.
	out, err := exec.Command("iptables", "--version").Output()
	b.nftVariant = err == nil && strings.Contains(string(out), "nf_tables")
	b.families = fams
	return nil
}

// newIPTFamily returns one family's state: our chain's rules and jump as
// we write them, driven through ipt. suffix is "v4" or "v6", family the
// ipset family ("inet" or "inet6").
func newIPTFamily(cfg Config, name, suffix, family string, ipt iptRunner) *iptFamily {
	fam := &iptFamily{
		name:  name,
		ipt:   ipt,
		set:   ipsetSpec{live: cfg.ipsetName(suffix), tmp: cfg.ipsetName(suffix) + "-tmp", family: family},
		chain: cfg.iptablesChain(),
	}
	fam.jump = []string{"-j", fam.chain}
	for ports := range slices.Chunk(cfg.Ports, multiportMax) {
		list := make([]string, len(ports))
		for i, p := range ports {
			list[i] = strconv.Itoa(int(p))
		}
		fam.rules = append(fam.rules, []string{
			"-p", "tcp", "-m", "multiport", "--dports", strings.Join(list, ","),
			"-m", "set", "!", "--match-set", fam.set.live, "src",
			"-m", "comment", "--comment", cfg.Name + " drop unless in allowlist",
			"-j", "DROP",
		})
	}
	return fam
}

// Apply swaps the sets to exactly allow, makes sure chain and jump are in
// place, then reads everything back.
func (b *iptBackend) Apply(ctx context.Context, allow []netip.Prefix) error {
	list, err := newAllowlist(allow)
	if err != nil {
		return fmt.Errorf("apply iptables allowlist: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply iptables allowlist: %w", err)
	}
	start := time.Now()
	if err := b.setup(); err != nil {
		return fmt.Errorf("apply iptables allowlist: %w", err)
	}
	if _, err := b.ensure(ctx, list, true); err != nil {
		return fmt.Errorf("apply iptables allowlist: %w", err)
	}
	logApplied(b.log, BackendIPTables, zap.String("chain", b.cfg.iptablesChain()), b.cfg.Ports, b.applied, list, start)
	b.applied = &list
	return nil
}

// Reconcile checks sets, chains and jumps against the last Apply and puts
// back whatever is missing or different.
func (b *iptBackend) Reconcile(ctx context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.applied == nil {
		return false, nil
	}
	drift, err := b.ensure(ctx, *b.applied, false)
	if err != nil {
		return false, fmt.Errorf("reconcile iptables: %w", err)
	}
	if drift == nil {
		return false, nil
	}
	b.log.Warn("firewall drift repaired",
		zap.String("backend", BackendIPTables),
		zap.String("chain", b.cfg.iptablesChain()),
		zap.String("drift", drift.Error()),
	)
	return true, nil
}

// ensure brings sets, chains and jumps to the state for list and verifies
// it. With swap the sets are refilled whatever they hold (Apply); without,
// only when they differ (Reconcile). It returns what it found different.
func (b *iptBackend) ensure(ctx context.Context, list allowlist, swap bool) (drift, err error) {
	specs := []ipsetSpec{b.families[0].set, b.families[1].set}
	want := [][]netip.Prefix{splitZero(list.v4), splitZero(list.v6)}
	if swap {
		if err := b.replaceSets(ctx, specs, want); err != nil {
			return nil, err
		}
	}
	snap, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	for i, s := range specs {
		drift = errors.Join(drift, compareSet(snap.sets, s, want[i]))
	}
	if drift != nil {
		if swap {
			return nil, fmt.Errorf("verify ipsets: %w", drift)
		}
		if err := b.replaceSets(ctx, specs, want); err != nil {
			return nil, err
		}
		sets, err := ipsetSave(ctx)
		if err != nil {
			return nil, fmt.Errorf("read ipsets: %w", err)
		}
		b.setNames = namesOf(sets)
		for i, s := range specs {
			if err := compareSet(sets, s, want[i]); err != nil {
				return nil, fmt.Errorf("verify ipsets: %w", err)
			}
		}
	}
	for i, f := range b.families {
		if f.quickCheck(snap.filter[i]) {
			continue
		}
		d, err := f.repair(ctx)
		if err != nil {
			return nil, err
		}
		drift = errors.Join(drift, d)
	}
	return drift, nil
}

// snapshot is one read of everything we own.
type snapshot struct {
	sets   map[string]*ipsetInfo
	filter [][]byte // iptables-save -t filter output, per family
}

// snapshot runs "ipset save", "iptables-save" and "ip6tables-save" at once
// (read-only, independent) and parses the sets.
func (b *iptBackend) snapshot(ctx context.Context) (snapshot, error) {
	runs := make([]*toolRun, 0, 1+len(b.families))
	wait := func() {
		for _, r := range runs {
			_, _ = r.wait()
		}
	}
	r, err := startTool(ctx, nil, "ipset", "save")
	if err != nil {
		return snapshot{}, fmt.Errorf("read ipsets: %w", err)
	}
	runs = append(runs, r)
	for _, f := range b.families {
		r, err := startTool(ctx, nil, f.save, "-t", "filter")
		if err != nil {
			wait()
			return snapshot{}, fmt.Errorf("read %s rules: %w", f.name, err)
		}
		runs = append(runs, r)
	}
	outs := make([][]byte, len(runs))
	var errs []error
	for i, r := range runs {
		outs[i], err = r.wait()
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return snapshot{}, fmt.Errorf("read ipsets and rules: %w", err)
	}
	sets, err := parseIPSetSave(outs[0])
	if err != nil {
		return snapshot{}, err
	}
	b.setNames = namesOf(sets)
	return snapshot{sets: sets, filter: outs[1:]}, nil
}

// replaceSets runs one "ipset restore" that swaps in both new sets. The
// script is written from the set names seen last, which saves a process
// per Apply; if they are stale (someone created or destroyed a set) the
// restore fails before any swap of that set, so the names are read again
// and the script, which first destroys any leftover temporary set, is run
// once more.
func (b *iptBackend) replaceSets(ctx context.Context, specs []ipsetSpec, want [][]netip.Prefix) error {
	if b.setNames != nil {
		if _, err := runTool(ctx, ipsetScript(specs, want, b.setNames), "ipset", "restore"); err == nil {
			return nil
		}
	}
	names, err := ipsetNames(ctx)
	if err != nil {
		return fmt.Errorf("replace ipsets: %w", err)
	}
	b.setNames = names
	if _, err := runTool(ctx, ipsetScript(specs, want, names), "ipset", "restore"); err != nil {
		b.setNames = nil
		return fmt.Errorf("replace ipsets: %w", err)
	}
	return nil
}

func namesOf(sets map[string]*ipsetInfo) map[string]bool {
	names := make(map[string]bool, len(sets))
	for n := range sets {
		names[n] = true
	}
	return names
}

// Remove deletes our jumps, chains and sets, and nothing else. Missing
// pieces are skipped, so it is safe to repeat.
func (b *iptBackend) Remove(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove iptables rules: %w", err)
	}
	if err := b.setup(); err != nil {
		return fmt.Errorf("remove iptables rules: %w", err)
	}
	for _, f := range b.families {
		// No chain, no jump: iptables refuses to delete a chain that is
		// still jumped to. (And -C of a jump to a missing chain errors.)
		exists, err := f.ipt.ChainExists("filter", f.chain)
		if err != nil {
			return fmt.Errorf("check %s chain %s: %w", f.name, f.chain, err)
		}
		if !exists {
			continue
		}
		// A jump inserted twice by hand goes too; bounded in case
		// something keeps adding them.
		for range 100 {
			ok, err := f.ipt.Exists("filter", "INPUT", f.jump...)
			if err != nil {
				return fmt.Errorf("check %s jump: %w", f.name, err)
			}
			if !ok {
				break
			}
			if err := f.ipt.Delete("filter", "INPUT", f.jump...); err != nil {
				return fmt.Errorf("delete %s jump: %w", f.name, err)
			}
		}
		if err := f.ipt.ClearAndDeleteChain("filter", f.chain); err != nil {
			return fmt.Errorf("delete %s chain %s: %w", f.name, f.chain, err)
		}
	}
	names, err := ipsetNames(ctx)
	if err != nil {
		return fmt.Errorf("remove ipsets: %w", err)
	}
	for _, f := range b.families {
		for _, s := range []string{f.set.live, f.set.tmp} {
			if names[s] {
				if _, err := runTool(ctx, nil, "ipset", "destroy", s); err != nil {
					return fmt.Errorf("remove ipsets: %w", err)
				}
			}
		}
	}
	b.applied = nil
	b.setNames = nil
	b.log.Info("firewall removed", zap.String("backend", BackendIPTables), zap.String("chain", b.cfg.iptablesChain()))
	return nil
}
