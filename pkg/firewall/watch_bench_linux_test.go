package firewall

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
	"go.uber.org/zap"
)

// BenchmarkWatchRepair measures how long the webhook ports stay open after
// an external flush, with Watch running and each reported change answered
// by Reconcile, as the daemon does: from the moment the flush command has
// returned until Reconcile has put everything back and verified it. Each
// iteration is one flush; p50-ms and max-ms are over the iterations, and
// seen-p50-ms is the part until Watch reported the change. The allowlist
// holds 100 addresses.
//
//	go test -run '^$' -bench BenchmarkWatchRepair -benchtime 20x ./pkg/firewall/
func BenchmarkWatchRepair(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireTools(b, toolsFor(BackendIPTables)...)
	testenv.RequireTools(b, "nft")
	for _, bench := range []struct {
		name, backend string
		legacy        bool
		flush         [][]string
	}{
		{"nftables/nft-flush-ruleset", BackendNFTables, false, [][]string{{"nft", "flush", "ruleset"}}},
		{"iptables-nft/iptables-F", BackendIPTables, false, [][]string{{"iptables", "-F"}, {"ip6tables", "-F"}}},
		{"iptables-legacy/iptables-F", BackendIPTables, true, [][]string{{"iptables", "-F"}, {"ip6tables", "-F"}}},
	} {
		b.Run(bench.name, func(b *testing.B) {
			if bench.legacy {
				useLegacyIPTables(b)
			}
			ns := testenv.NewNetNS(b)
			fw, err := New(Config{Backend: bench.backend, Ports: []uint16{8443}, Name: "bench"}, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			inNS := func(fn func() error) {
				if err := ns.Run(func() error {
					if err := testenv.CheckNotHostNetNS(); err != nil {
						return err
					}
					return fn()
				}); err != nil {
					b.Fatal(err)
				}
			}
			list := benchLists(100)[0]
			inNS(func() error { return fw.Apply(context.Background(), list) })
			w := startWatch(b, ns, fw)
			var took, seen []time.Duration
			for b.Loop() {
				w.drain()
				for _, cmd := range bench.flush {
					ns.MustExec(b, cmd[0], cmd[1:]...)
				}
				flushed := time.Now()
				w.wait(b)
				seen = append(seen, time.Since(flushed))
				var repaired bool
				inNS(func() (err error) {
					repaired, err = fw.Reconcile(context.Background())
					return err
				})
				took = append(took, time.Since(flushed))
				if !repaired {
					b.Fatal("Reconcile after the flush: got not repaired, want repaired")
				}
			}
			inNS(func() error { return fw.Remove(context.Background()) })
			slices.Sort(took)
			slices.Sort(seen)
			b.ReportMetric(float64(seen[len(seen)/2].Microseconds())/1000, "seen-p50-ms")
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// useLegacyIPTables points iptables and its save and restore tools at
// iptables-legacy for the rest of the test, the way update-alternatives
// does.
func useLegacyIPTables(t testing.TB) {
	t.Helper()
	testenv.RequireTools(t, "xtables-legacy-multi")
	legacy, err := exec.LookPath("xtables-legacy-multi")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tool := range []string{"iptables", "ip6tables", "iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore"} {
		if err := os.Symlink(legacy, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}
