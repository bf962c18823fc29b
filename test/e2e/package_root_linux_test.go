package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// debRoot is a fresh Debian root filesystem and the network namespace every
// command in it runs in.
type debRoot struct {
	t   *testing.T
	dir string
	ns  *testenv.NetNS
}

// newDebRoot debootstraps a minimal root (plus adduser, which the package
// depends on) from the archive this machine's apt uses, mounts /proc and
// /dev/pts in it, and unmounts and deletes it when the test ends. A root
// that cannot be made (no archive reachable) skips the test, or fails it in
// strict mode.
func newDebRoot(t *testing.T) *debRoot {
	t.Helper()
	uri, suite, keyring, err := aptArchive()
	if err != nil {
		testenv.SkipOrFail(t, "no Debian archive to debootstrap from: %v", err)
	}
	dir, err := os.MkdirTemp("", "ncsgw-debroot-")
	if err != nil {
		t.Fatal(err)
	}
	// MkdirTemp makes 0700; a root's / is 0755, or the service user could
	// not reach anything in it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Never delete through a mount: RemoveAll would walk into /proc.
		if err := unmountUnder(dir); err != nil {
			t.Errorf("leaving %s in place: %v", dir, err)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the root: %v", err)
		}
	})

	args := []string{"--variant=minbase", "--include=adduser"}
	if keyring != "" {
		args = append(args, "--keyring="+keyring)
	}
	args = append(args, suite, dir, uri)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "debootstrap %s: %v:\n%s", strings.Join(args, " "), err, tail(string(out), 30))
	}
	t.Logf("debootstrap %s from %s: %s", suite, uri, time.Since(start).Round(time.Second))
	// /proc for the maintainer scripts, and a private devpts instance
	// (newinstance: the host's terminals stay out) for apt's terminal log.
	for _, m := range [][]string{
		{"-t", "proc", "proc", filepath.Join(dir, "proc")},
		{"-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts", filepath.Join(dir, "dev/pts")},
	} {
		if out, err := exec.Command("mount", m...).CombinedOutput(); err != nil {
			t.Fatalf("mount %s: %v: %s", m[len(m)-1], err, out)
		}
	}
	return &debRoot{t: t, dir: dir, ns: testenv.NewNetNS(t)}
}

// path is where the root's absolute path p lives on the host.
func (r *debRoot) path(p string) string { return filepath.Join(r.dir, p) }

// runResult is what a command in the root did.
type runResult struct {
	stdout, stderr string
	code           int
}

// run runs argv in the root, as root or as user ("uid:gid"), with a clean
// environment plus env.
func (r *debRoot) run(user string, env []string, argv ...string) runResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{r.dir}
	if user != "" {
		args = []string{"--userspec=" + user, r.dir}
	}
	cmd := r.ns.Command(ctx, "chroot", append(args, argv...)...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C", "DEBIAN_FRONTEND=noninteractive"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		r.t.Fatalf("run %v in the root: %v", argv, err)
	}
	return res
}

// mustRun is run that fails the test unless the command exits 0.
func (r *debRoot) mustRun(user string, env []string, argv ...string) runResult {
	r.t.Helper()
	res := r.run(user, env, argv...)
	if res.code != 0 {
		r.t.Fatalf("%s in the root: got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), res.code, tail(res.stdout, 40), tail(res.stderr, 40))
	}
	return res
}

// serveNCSAPI starts the fake Agora API on the namespace's loopback and
// returns its endpoint URL.
func (r *debRoot) serveNCSAPI(id, secret string, ips ...string) string {
	r.t.Helper()
	var ln net.Listener
	if err := r.ns.Run(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		r.t.Fatal(err)
	}
	srv := &http.Server{Handler: ncsiptest.NewHandler(id, secret, ips...), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	r.t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + ncsiptest.Path
}

// hasNFTable reports whether the gateway's nftables table exists in the namespace.
func (r *debRoot) hasNFTable() bool {
	r.t.Helper()
	out, err := r.ns.Exec("nft", "list", "tables")
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.Contains(out, "table inet ncs_gateway")
}

// passwdEntry is one line of the root's /etc/passwd.
type passwdEntry struct {
	uid, gid    int
	home, shell string
}

// passwd reads the root's /etc/passwd.
func (r *debRoot) passwd() map[string]passwdEntry {
	users := map[string]passwdEntry{}
	for _, f := range r.colonFile("/etc/passwd", 7) {
		var e passwdEntry
		if _, err := fmt.Sscan(f[2]+" "+f[3], &e.uid, &e.gid); err != nil {
			r.t.Fatalf("/etc/passwd line for %s: %v", f[0], err)
		}
		e.home, e.shell = f[5], f[6]
		users[f[0]] = e
	}
	return users
}

// groups reads the root's /etc/group: name to gid.
func (r *debRoot) groups() map[string]int {
	groups := map[string]int{}
	for _, f := range r.colonFile("/etc/group", 4) {
		var gid int
		if _, err := fmt.Sscan(f[2], &gid); err != nil {
			r.t.Fatalf("/etc/group line for %s: %v", f[0], err)
		}
		groups[f[0]] = gid
	}
	return groups
}

// colonFile splits the lines of a colon-separated file of the root.
func (r *debRoot) colonFile(p string, fields int) [][]string {
	r.t.Helper()
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(readFile(r.t, r.path(p))))
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); len(f) == fields {
			out = append(out, f)
		}
	}
	return out
}

// aptArchive returns the archive this machine's apt installs from: the URI,
// release (the first suite of the first source, such as bookworm, not
// bookworm-updates) and the keyring that signs it, if apt names one.
func aptArchive() (uri, suite, keyring string, err error) {
	paths, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, stanza := range strings.Split(string(b), "\n\n") {
			f := map[string]string{}
			for _, line := range strings.Split(stanza, "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
					f[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
				}
			}
			uris, suites := strings.Fields(f["uris"]), strings.Fields(f["suites"])
			if !strings.Contains(" "+f["types"]+" ", " deb ") || len(uris) == 0 || len(suites) == 0 || strings.Contains(suites[0], "-") {
				continue
			}
			if kr := f["signed-by"]; strings.HasPrefix(kr, "/") {
				keyring = kr
			}
			return uris[0], suites[0], keyring, nil
		}
	}
	// One-line format: deb [options] URI SUITE COMPONENTS...
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if len(f) > 0 && strings.HasPrefix(f[0], "[") {
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				if len(f) == 0 {
					continue
				}
				f = f[1:]
			}
			if len(f) >= 2 && !strings.Contains(f[1], "-") {
				return f[0], f[1], "", nil
			}
		}
	}
	return "", "", "", errors.New("no deb source for a release in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")
}

// unmountUnder detaches every mount at or below dir, deepest first, and
// fails if one is left.
func unmountUnder(dir string) error {
	mounts := func() ([]string, error) {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return nil, err
		}
		var found []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			// Field 5 is the mount point, with spaces and such octal-escaped.
			mp := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				found = append(found, mp)
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(found)))
		return found, nil
	}
	found, err := mounts()
	if err != nil {
		return err
	}
	for _, mp := range found {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	if left, err := mounts(); err != nil || len(left) > 0 {
		return fmt.Errorf("mounts left under %s: %v (%v)", dir, left, err)
	}
	return nil
}

// readFile reads a file of the host (or, through path, of the root).
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyFile copies a file, such as the .deb into the root.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
