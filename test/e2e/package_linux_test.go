package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// pkgVersion is the version the test builds the package with.
const pkgVersion = "0.0.1+e2e"

// readerPasswordPath is the password file of the embedded NATS's read-only
// user "reader", which the packaged config declares and postinst generates.
const readerPasswordPath = "/etc/ncs-gateway/nats-reader-password"

// TestDebianPackage builds the .deb with packaging/build-deb.sh, installs it
// with apt into a fresh Debian root made by debootstrap, checks what an
// operator gets (files, modes, user, conffile, the generated NATS reader
// password, unit, a working binary), reinstalls it over a running firewall
// and an edited config, then removes and purges it. Every command in the root runs through chroot inside a
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
	checkReaderPassword(t, r, u, res)
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
	password := readFile(t, r.path(readerPasswordPath))
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
	// Readers already hold the password: postinst must not make a new one.
	if got := readFile(t, r.path(readerPasswordPath)); !bytes.Equal(got, password) {
		t.Errorf("%s after reinstall: got different content (%d bytes), want the first install's password kept", readerPasswordPath, len(got))
	}
	pkgFile{readerPasswordPath, false, 0o640, 0, u.gid, ""}.check(t, r)
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
	for _, p := range []string{"/etc/ncs-gateway/ncs-gateway.yaml", readerPasswordPath, "/etc/ncs-gateway/credentials/webhook-secrets", "/var/lib/ncs-gateway"} {
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
	// The generated password is no conffile: postrm, not dpkg, deletes it.
	for _, p := range []string{readerPasswordPath, "/etc/ncs-gateway", "/var/lib/ncs-gateway", "/usr/share/doc/ncs-gateway", "/usr/share/ncs-gateway"} {
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

	if strings.Contains(res.stderr, "password") {
		t.Errorf("-check-config without secrets: got stderr\n%s\nwant no complaint about the NATS reader's password file", res.stderr)
	}

	// The packaged config declares the embedded NATS user reader, whose
	// password file the service user must read: this run reads it.
	res = r.run(as, []string{"NCS_GATEWAY_WEBHOOK_SECRETS=hook-secret", "NCS_GATEWAY_CUSTOMER_ID=cust-id",
		"NCS_GATEWAY_CUSTOMER_SECRET=cust-secret", "NCS_GATEWAY_FIREWALL_BACKEND=none"}, "/usr/bin/ncs-gateway", "-check-config")
	if res.code != 0 || !strings.Contains(res.stdout, ": ok") || !strings.Contains(res.stdout, "embedded_passwords=1") {
		t.Errorf("-check-config with secrets in the environment: got exit %d, stdout %q, stderr:\n%s\nwant exit 0, ok and embedded_passwords=1", res.code, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout, "anonymous") {
		t.Errorf("-check-config of the packaged config: got stdout %q, want no warning about anonymous NATS access", res.stdout)
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

// checkReaderPassword checks the password postinst generated for the
// embedded NATS's reader: random-looking, never shown in install's output,
// which tells the operator where it is and how to use it, and made in place
// (no temporary file left beside it).
func checkReaderPassword(t *testing.T, r *debRoot, u passwdEntry, install runResult) {
	t.Helper()
	pkgFile{readerPasswordPath, false, 0o640, 0, u.gid, ""}.check(t, r)
	password := readFile(t, r.path(readerPasswordPath))
	// Its value is never logged, even here: only its shape.
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(password) {
		t.Errorf("%s: got %d bytes, want 64 hex digits (32 random bytes) and no newline", readerPasswordPath, len(password))
	}
	if strings.Contains(install.stdout+install.stderr, string(password)) {
		t.Errorf("apt-get install output: got the reader's password in it, want it never printed")
	}
	for _, want := range []string{readerPasswordPath, `--user reader --password "$(cat ` + readerPasswordPath + `)"`} {
		if !strings.Contains(install.stdout, want) {
			t.Errorf("apt-get install output: got\n%s\nwant it to contain %q", install.stdout, want)
		}
	}
	entries, err := os.ReadDir(r.path("/etc/ncs-gateway"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "credentials nats-reader-password ncs-gateway.yaml"; got != want {
		t.Errorf("/etc/ncs-gateway after install: got %q, want %q", got, want)
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
