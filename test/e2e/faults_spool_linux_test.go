package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// faultsMountTmpfs mounts a tmpfs of the given size (e.g. "4m") on a fresh
// directory and unmounts it in Cleanup. Register it before anything that
// keeps files open there (the gateway), so Cleanup unmounts last.
func faultsMountTmpfs(t *testing.T, size string) string {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "mount", "umount")
	dir := filepath.Join(t.TempDir(), "spoolfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "cannot mount a tmpfs on %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmount tmpfs %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// faultsFSUsage returns the bytes used and the size of the filesystem at dir.
func faultsFSUsage(t *testing.T, dir string) (used, size int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, int64(st.Blocks) * st.Bsize
}

func faultsFileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// faultsReadyz returns the status code of /readyz.
func faultsReadyz(t *testing.T, g *gateway) int {
	t.Helper()
	resp, err := g.client.Get(g.admin + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestFaultsSpoolFilesystemFull: the state_dir is a 4 MiB tmpfs, NATS is
// down and spool.max_bytes is far above the filesystem, so the filesystem is
// what fills. The gateway answers 503 once bbolt cannot write (counted as
// write_error, logged with the cause), loses nothing it acknowledged, and
// takes notifications again when space returns: first by draining into NATS
// (bbolt reuses the freed pages; the file does not shrink), then by a
// remount with more space.
func TestFaultsSpoolFilesystemFull(t *testing.T) {
	state := faultsMountTmpfs(t, "4m")
	ns := newFaultsNATS(t) // not started: NATS is down from the beginning
	g := newGateway(t, gatewayOptions{natsURL: ns.url(), stateDir: state, extra: "spool: {max_bytes: 1073741824}"})
	g.start()
	spoolPath := filepath.Join(state, "spool.db")

	load := startFaultsLoad(t, faultsHTTPClient(), g.webhook, "spoolfull", faultsLoadOptions{})

	// Phase 1: the filesystem fills.
	load.waitCount("503", 1, 60*time.Second)
	spooledBeforeFull := load.count("200 spooled")
	used, size := faultsFSUsage(t, state)
	st := faultsGetStatus(t, g)
	t.Logf("full: first 503 after %d notifications spooled; tmpfs %d of %d bytes used, spool.db %d bytes, /status spool depth %d, spool_bytes %d",
		spooledBeforeFull, used, size, faultsFileSize(t, spoolPath), st.NATS.SpoolDepth, st.NATS.SpoolBytes)
	if spooledBeforeFull == 0 {
		t.Fatalf("no notification was spooled before the first 503: %s", load.summary())
	}
	// Stay full for a while, counted in answers: 20 more 503s.
	load.waitCount("503", load.count("503")+20, 30*time.Second)
	t.Logf("20 answers 503 later: %s", load.summary())
	if code := faultsReadyz(t, g); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the spool cannot write and NATS is down: got %d, want 503", code)
	}
	metrics := g.get("/metrics")
	writeErrors := faultsMetric(t, metrics, `ncs_gateway_spool_rejected_total{reason="write_error"}`)
	full := faultsMetric(t, metrics, `ncs_gateway_spool_rejected_total{reason="full"}`)
	unavailable := faultsMetric(t, metrics, `ncs_gateway_webhook_rejected_total{reason="unavailable"}`)
	if writeErrors < 1 || full != 0 {
		t.Errorf("spool rejections: got write_error %v, full %v; want write_error >= 1 and full 0 (the filesystem filled, not spool.max_bytes)", writeErrors, full)
	}
	if unavailable < 1 {
		t.Errorf(`ncs_gateway_webhook_rejected_total{reason="unavailable"}: got %v, want >= 1`, unavailable)
	}
	// The daemon's log is buffered (up to 200 ms): wait for the line.
	var notStored []map[string]any
	waitFor(t, 10*time.Second, `"notification not stored" in the log`, func() bool {
		notStored = faultsLogLines(g.log(), "notification not stored", nil)
		return len(notStored) > 0
	})
	if !strings.Contains(fmt.Sprint(notStored[0]["error"]), "no space left on device") {
		t.Errorf("the log does not name the failure (want \"notification not stored\" with \"no space left on device\"):\n%s", tail(grep(g.log(), "not stored"), 3))
	} else {
		t.Logf("logged: %v", notStored[0]["error"])
	}

	// Phase 2: NATS comes back; the spool drains and new notifications are
	// published. The spool file does not shrink (bbolt keeps freed pages).
	sizeFull := faultsFileSize(t, spoolPath)
	ns.start()
	drain := faultsWaitDrained(t, g, 60*time.Second)
	published := load.count("200 published")
	load.waitCount("200 published", published+100, 30*time.Second)
	usedDrained, _ := faultsFSUsage(t, state)
	sizeDrained := faultsFileSize(t, spoolPath)
	t.Logf("NATS back: spool drained in %s; spool.db %d bytes (was %d), tmpfs %d bytes used (was %d)",
		drain.Round(time.Millisecond), sizeDrained, sizeFull, usedDrained, used)
	if code := faultsReadyz(t, g); code != http.StatusOK {
		t.Errorf("/readyz with NATS back: got %d, want 200", code)
	}

	// Phase 3: NATS goes away again; the spool takes notifications again
	// in the pages freed by the drain, until the filesystem is full again.
	ns.kill()
	killed := time.Now()
	waitFor(t, 15*time.Second, "the gateway to notice NATS is gone again", func() bool {
		return !faultsGetStatus(t, g).NATS.Connected
	})
	spooled := load.count("200 spooled")
	load.waitCount("200 spooled", spooled+100, 30*time.Second)
	if ev, ok := load.firstSince(killed, 200, "spooled"); ok {
		t.Logf("NATS down again: 200 spooled again %s after the kill (in the pages the drain freed)", ev.at.Sub(killed).Round(time.Millisecond))
	}
	n503 := load.count("503")
	load.waitCount("503", n503+1, 60*time.Second)
	refull, _ := load.firstSince(killed, 503, "")
	spooledSecond := 0
	for _, ev := range load.eventsBetween(killed, refull.at) {
		if ev.code == http.StatusOK && ev.outcome == "spooled" {
			spooledSecond++
		}
	}
	t.Logf("full again after %d more notifications spooled (first round: %d); spool.db %d bytes", spooledSecond, spooledBeforeFull, faultsFileSize(t, spoolPath))

	// Phase 4: more space (remount); 200 again while NATS is still down.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", state).CombinedOutput(); err != nil {
		t.Fatalf("remount tmpfs: %v: %s", err, out)
	}
	remounted := time.Now()
	spooled = load.count("200 spooled")
	load.waitCount("200 spooled", spooled+100, 30*time.Second)
	ev, _ := load.firstSince(remounted, 200, "spooled")
	t.Logf("remounted with 64 MiB: first 200 spooled %s later", ev.at.Sub(remounted).Round(time.Millisecond))
	// Give a 503 room to show, counted in answers: 50 more 200 spooled.
	load.waitCount("200 spooled", load.count("200 spooled")+50, 30*time.Second)
	if last503, ok := load.firstSince(ev.at.Add(100*time.Millisecond), 503, ""); ok {
		t.Errorf("503 at %s, after the remount had given space and 200s had resumed", last503.at.Sub(remounted).Round(time.Millisecond))
	}

	// Phase 5: NATS back, load stopped, spool drained: the count.
	ns.start()
	load.stop()
	t.Logf("load stopped: %s", load.summary())
	faultsWaitDrained(t, g, 60*time.Second)
	load.check(t, faultsStreamIDs(t, ns.url(), "AGORA_NCS"))
	for kind, n := range load.counts() {
		if kind != "503" && kind != "200 published" && kind != "200 spooled" {
			t.Errorf("%d answers %q, want only 200s and 503s", n, kind)
		}
	}
}
