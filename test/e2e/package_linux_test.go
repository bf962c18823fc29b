package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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

// pkgVersion is the version the test builds the package with.
const pkgVersion = "0.0.1+e2e"

// TestDebianPackage builds the .deb with packaging/build-deb.sh, installs it
// with apt into a fresh Debian root made by debootstrap, checks what an
// operator gets (files, modes, user, conffile, unit, a working binary),
// reinstalls it over a running firewall and an edited config, then removes
// and purges it. Every command in the root runs through chroot inside a
// network namespace of its own, so the maintainer scripts' firewall work
// never reaches the host's firewall. About 2.5 minutes, mostly debootstrap.
func TestDebianPackage(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "debootstrap", "dpkg-deb", "systemd-analyze", "chroot", "mount", "ip", "nft")

	// Build the package and the root at the same time: one is CPU, the
	// other mostly download.
	type built struct {
		deb string
		err error
	}
	debc := make(chan built, 1)
	go func() {
		deb, err := buildDeb(t.TempDir())
		debc <- built{deb, err}
	}()
	r := newDebRoot(t)
	b := <-debc
	if b.err != nil {
		t.Fatalf("build the package: %v", b.err)
	}
	t.Logf("built %s", filepath.Base(b.deb))
	if err := copyFile(b.deb, r.path("/tmp/ncs-gateway.deb")); err != nil {
		t.Fatal(err)
	}

	// apt, as an operator would; no recommends, because the root has no
	// network to fetch nftables from.
	res := r.mustRun("", nil, "apt-get", "install", "-y", "--no-install-recommends", "/tmp/ncs-gateway.deb")
	if !strings.Contains(res.stdout, "not enabled or started") {
		t.Errorf("apt-get install output lacks postinst's next steps; got:\n%s", res.stdout)
	}
	u := checkInstalled(t, r)
	r.checkConfigRuns(t, u)
	checkUnitVerifies(t, r)

	// Give the gateway real rules to own: a refresh against the fake Agora
	// API, in the root's namespace, with the installed binary and config.
	api := r.serveNCSAPI("cust-id", "cust-secret", "198.51.100.7")
	r.mustRun("", []string{"NCS_GATEWAY_NCS_ENDPOINTS=" + api, "NCS_GATEWAY_CUSTOMER_ID=cust-id",
		"NCS_GATEWAY_CUSTOMER_SECRET=cust-secret", "NCS_GATEWAY_WEBHOOK_SECRETS=s"}, "/usr/bin/ncs-gateway", "-refresh")
	if !r.hasNFTable() {
		t.Fatal("after ncs-gateway -refresh: got no table inet ncs_gateway in the namespace, want one")
	}

	checkReinstall(t, r, u)
	checkRemove(t, r)
	checkPurge(t, r)
}

// checkInstalled checks the freshly installed package and returns its user.
func checkInstalled(t *testing.T, r *debRoot) passwdEntry {
	t.Helper()
	res := r.mustRun("", nil, "dpkg", "-s", "ncs-gateway")
	for _, want := range []string{"Status: install ok installed", "Version: " + pkgVersion, "Depends: adduser", "Recommends: nftables | iptables"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("dpkg -s ncs-gateway: got\n%s\nwant a line %q", res.stdout, want)
		}
	}

	// The service user: a system account with no login and its own group.
	u, ok := r.passwd()["ncs-gateway"]
	if !ok {
		t.Fatalf("user ncs-gateway: got none in %s/etc/passwd, want one", r.dir)
	}
	gid, ok := r.groups()["ncs-gateway"]
	switch {
	case !ok:
		t.Errorf("group ncs-gateway: got none in /etc/group, want one")
	case u.gid != gid:
		t.Errorf("user ncs-gateway's group: got gid %d, want %d (group ncs-gateway)", u.gid, gid)
	}
	if u.uid == 0 || u.uid >= 1000 {
		t.Errorf("user ncs-gateway: got uid %d, want a system uid (1-999)", u.uid)
	}
	if u.shell != "/usr/sbin/nologin" || u.home != "/var/lib/ncs-gateway" {
		t.Errorf("user ncs-gateway: got shell %q home %q, want /usr/sbin/nologin and /var/lib/ncs-gateway", u.shell, u.home)
	}

	files := []pkgFile{
		{"/usr/bin/ncs-gateway", false, 0o755, 0, 0, ""},
		{"/usr/lib/systemd/system/ncs-gateway.service", false, 0o644, 0, 0, "systemd/ncs-gateway.service"},
		{"/etc/ncs-gateway", true, 0o755, 0, 0, ""},
		{"/etc/ncs-gateway/ncs-gateway.yaml", false, 0o640, 0, u.gid, "configs/ncs-gateway.yaml"},
		{"/etc/ncs-gateway/credentials", true, 0o700, 0, 0, ""},
		{"/usr/share/doc/ncs-gateway/README.md", false, 0o644, 0, 0, "README.md"},
		{"/usr/share/doc/ncs-gateway/README.Debian", false, 0o644, 0, 0, "packaging/README.md"},
	}
	// The alert rules are packaged when the repository has them.
	if _, err := os.Stat("../../configs/alerts.yml"); err == nil {
		files = append(files, pkgFile{"/usr/share/ncs-gateway/alerts.yml", false, 0o644, 0, 0, "configs/alerts.yml"})
	}
	for _, f := range files {
		f.check(t, r)
	}

	// The config is a registered conffile (kept on upgrade and remove) with
	// the packaged content, and its group comes from a statoverride.
	sum := md5.Sum(readFile(t, "../../configs/ncs-gateway.yaml"))
	res = r.mustRun("", nil, "dpkg-query", "-W", "-f=${Conffiles}", "ncs-gateway")
	if got, want := strings.TrimSpace(res.stdout), "/etc/ncs-gateway/ncs-gateway.yaml "+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("conffiles: got %q, want %q", got, want)
	}
	res = r.mustRun("", nil, "dpkg-statoverride", "--list", "/etc/ncs-gateway/ncs-gateway.yaml")
	if got, want := strings.TrimSpace(res.stdout), "root ncs-gateway 640 /etc/ncs-gateway/ncs-gateway.yaml"; got != want {
		t.Errorf("statoverride: got %q, want %q", got, want)
	}

	res = r.mustRun("", nil, "/usr/bin/ncs-gateway", "-version")
	if got, want := strings.TrimSpace(res.stdout), "ncs-gateway "+pkgVersion; got != want {
		t.Errorf("ncs-gateway -version: got %q, want %q", got, want)
	}
	return u
}

// checkReinstall installs the package over itself, as an upgrade does: the
// operator's config edit, the user and the firewall rules must survive.
func checkReinstall(t *testing.T, r *debRoot, u passwdEntry) {
	t.Helper()
	cfg := r.path("/etc/ncs-gateway/ncs-gateway.yaml")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const edit = "# edited by the operator\n"
	_, err = f.WriteString(edit)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	r.mustRun("", nil, "apt-get", "install", "-y", "--reinstall", "--no-install-recommends", "/tmp/ncs-gateway.deb")
	if got := readFile(t, cfg); !bytes.HasSuffix(got, []byte(edit)) {
		t.Errorf("config after reinstall: got it without the operator's last line %q, want it kept", edit)
	}
	if got, ok := r.passwd()["ncs-gateway"]; !ok || got != u {
		t.Errorf("user after reinstall: got %+v (present %t), want %+v", got, ok, u)
	}
	if !r.hasNFTable() {
		t.Error("after reinstall: got no table inet ncs_gateway, want the rules left in place (only remove drops them)")
	}
}

// checkRemove removes the package: binary and unit go, the firewall rules go
// (prerm), the config, credentials, user and state stay.
func checkRemove(t *testing.T, r *debRoot) {
	t.Helper()
	res := r.mustRun("", nil, "apt-get", "remove", "-y", "ncs-gateway")
	if strings.Contains(res.stderr+res.stdout, "could not remove its firewall rules") {
		t.Errorf("apt-get remove: prerm could not remove the firewall:\n%s%s", res.stdout, res.stderr)
	}
	if r.hasNFTable() {
		t.Error("after apt-get remove: got table inet ncs_gateway still in the kernel, want it removed by prerm")
	}
	for _, p := range []string{"/usr/bin/ncs-gateway", "/usr/lib/systemd/system/ncs-gateway.service"} {
		if _, err := os.Lstat(r.path(p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after apt-get remove: %s: got err %v, want it gone", p, err)
		}
	}
	for _, p := range []string{"/etc/ncs-gateway/ncs-gateway.yaml", "/etc/ncs-gateway/credentials/webhook-secrets", "/var/lib/ncs-gateway"} {
		if _, err := os.Lstat(r.path(p)); err != nil {
			t.Errorf("after apt-get remove: %s: got %v, want it kept until purge", p, err)
		}
	}
	if _, ok := r.passwd()["ncs-gateway"]; !ok {
		t.Error("after apt-get remove: got no user ncs-gateway, want it kept until purge")
	}
	res = r.mustRun("", nil, "dpkg-query", "-W", "-f=${Status}", "ncs-gateway")
	if got, want := res.stdout, "deinstall ok config-files"; got != want {
		t.Errorf("after apt-get remove: dpkg status got %q, want %q", got, want)
	}
}

// checkPurge purges the removed package: nothing of it is left.
func checkPurge(t *testing.T, r *debRoot) {
	t.Helper()
	r.mustRun("", nil, "dpkg", "--purge", "ncs-gateway")
	for _, p := range []string{"/etc/ncs-gateway", "/var/lib/ncs-gateway", "/usr/share/doc/ncs-gateway", "/usr/share/ncs-gateway"} {
		if _, err := os.Lstat(r.path(p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg --purge: %s: got err %v, want it gone", p, err)
		}
	}
	if _, ok := r.passwd()["ncs-gateway"]; ok {
		t.Error("after dpkg --purge: got user ncs-gateway in /etc/passwd, want it deleted")
	}
	if _, ok := r.groups()["ncs-gateway"]; ok {
		t.Error("after dpkg --purge: got group ncs-gateway in /etc/group, want it deleted")
	}
	if res := r.run("", nil, "dpkg-statoverride", "--list", "/etc/ncs-gateway/ncs-gateway.yaml"); res.code == 0 {
		t.Errorf("after dpkg --purge: got statoverride %q, want none", strings.TrimSpace(res.stdout))
	}
	if res := r.run("", nil, "dpkg-query", "-W", "-f=${Status}", "ncs-gateway"); res.code == 0 && !strings.Contains(res.stdout, "not-installed") {
		t.Errorf("after dpkg --purge: dpkg status got %q, want not installed", res.stdout)
	}
}

// checkConfigRuns runs the installed config's -check-config as the service
// user (what ExecStartPre= does): it must fail naming the missing secrets,
// then pass once they come from the environment or from credential files
// the way systemd's LoadCredential= hands them over.
func (r *debRoot) checkConfigRuns(t *testing.T, u passwdEntry) {
	t.Helper()
	as := fmt.Sprintf("%d:%d", u.uid, u.gid)
	res := r.run(as, nil, "/usr/bin/ncs-gateway", "-check-config")
	if res.code != 1 {
		t.Errorf("-check-config without secrets: got exit %d, want 1; stderr:\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"webhook.secrets_file: no webhook secret", "ncs.customer_id_file: no Agora REST credentials"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("-check-config without secrets: got stderr\n%s\nwant it to contain %q", res.stderr, want)
		}
	}

	res = r.run(as, []string{"NCS_GATEWAY_WEBHOOK_SECRETS=hook-secret", "NCS_GATEWAY_CUSTOMER_ID=cust-id",
		"NCS_GATEWAY_CUSTOMER_SECRET=cust-secret", "NCS_GATEWAY_FIREWALL_BACKEND=none"}, "/usr/bin/ncs-gateway", "-check-config")
	if res.code != 0 || !strings.Contains(res.stdout, ": ok") {
		t.Errorf("-check-config with secrets in the environment: got exit %d, stdout %q, stderr:\n%s\nwant exit 0 and ok", res.code, res.stdout, res.stderr)
	}

	// The files the README tells the operator to create, root-only.
	creds := r.path("/etc/ncs-gateway/credentials")
	for name, value := range map[string]string{"webhook-secrets": "hook-secret\n", "customer-id": "cust-id\n", "customer-secret": "cust-secret\n"} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if res := r.run(as, nil, "/bin/cat", "/etc/ncs-gateway/credentials/customer-secret"); res.code == 0 {
		t.Error("reading a credential as ncs-gateway: got success, want permission denied (credentials are root-only)")
	}
	// systemd copies the credentials into a private directory only the
	// service can read; root reading them in place stands in for that.
	res = r.run("", []string{"CREDENTIALS_DIRECTORY=/etc/ncs-gateway/credentials"}, "/usr/bin/ncs-gateway", "-check-config")
	if res.code != 0 || !strings.Contains(res.stdout, "webhook_secrets=1 customer_id=true customer_secret=true") {
		t.Errorf("-check-config with credential files: got exit %d, stdout %q, stderr:\n%s\nwant exit 0 with all three secrets", res.code, res.stdout, res.stderr)
	}
}

// checkUnitVerifies runs systemd-analyze verify on the installed unit. The
// root has no systemd to verify it in, so the host's does, on a copy whose
// binary path points into the root (verify checks the binary exists).
func checkUnitVerifies(t *testing.T, r *debRoot) {
	t.Helper()
	unit := readFile(t, r.path("/usr/lib/systemd/system/ncs-gateway.service"))
	rewritten := bytes.ReplaceAll(unit, []byte("/usr/bin/ncs-gateway"), []byte(r.path("/usr/bin/ncs-gateway")))
	path := filepath.Join(t.TempDir(), "ncs-gateway.service")
	if err := os.WriteFile(path, rewritten, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("ncs-gateway.service")) {
		t.Errorf("systemd-analyze verify of the installed unit: got err %v, output:\n%s\nwant success and no complaint about it", err, out)
	}
}

// pkgFile is a path the package installs, as it must be on disk.
type pkgFile struct {
	path     string
	dir      bool
	perm     fs.FileMode
	uid, gid int
	same     string // repository file the installed one must equal, if any
}

// check compares the installed file's type, mode, owner and content with f.
func (f pkgFile) check(t *testing.T, r *debRoot) {
	t.Helper()
	fi, err := os.Lstat(r.path(f.path))
	if err != nil {
		t.Errorf("installed file: %v", err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.IsDir() != f.dir || fi.Mode().Perm() != f.perm || int(st.Uid) != f.uid || int(st.Gid) != f.gid {
		t.Errorf("%s: got dir=%t mode %#o owner %d:%d, want dir=%t mode %#o owner %d:%d",
			f.path, fi.IsDir(), fi.Mode().Perm(), st.Uid, st.Gid, f.dir, f.perm, f.uid, f.gid)
	}
	if f.same != "" && !bytes.Equal(readFile(t, r.path(f.path)), readFile(t, filepath.Join("../..", f.same))) {
		t.Errorf("%s: got content different from %s, want equal", f.path, f.same)
	}
}

// buildDeb runs packaging/build-deb.sh into dir and returns the .deb's path.
func buildDeb(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../../packaging/build-deb.sh")
	cmd.Env = append(os.Environ(), "VERSION="+pkgVersion, "DIST_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build-deb.sh: %w: %s", err, tail(stderr.String(), 30))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if want := "ncs-gateway_" + pkgVersion + "_"; !strings.HasPrefix(filepath.Base(deb), want) || filepath.Ext(deb) != ".deb" {
		return "", fmt.Errorf("build-deb.sh printed %q, want a path to %s<arch>.deb", deb, want)
	}
	return deb, nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

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
