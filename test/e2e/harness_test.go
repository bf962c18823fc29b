// Package e2e runs the built ncs-gateway binary the way an operator does:
// a config file, environment variables, signals, and real HTTP, NATS and
// (in the allowlist tests) nftables and iptables inside network namespaces.
package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// binary is the ncs-gateway built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ncsgw-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ncs-gateway")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/ncs-gateway")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ncs-gateway:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testSecret signs every notification in these tests.
const testSecret = "e2e-secret"

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// gateway is one ncs-gateway process under test.
type gateway struct {
	t        testing.TB
	cfgPath  string
	env      []string
	logPath  string
	webhook  string // http://127.0.0.1:P/agora/ncs
	admin    string // http://127.0.0.1:P
	stateDir string
	wrap     []string     // command prefix, e.g. ip netns exec NS
	client   *http.Client // reaches the webhook and admin ports
	hookPort int
	opts     gatewayOptions
	base     string // the config's fixed part

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// gatewayOptions shape the config file of a test gateway.
type gatewayOptions struct {
	natsURL  string // empty: embedded
	extra    string // more YAML, appended (top-level keys not otherwise set)
	firewall string // the firewall section; default backend none
	ncs      string // the ncs section; default no endpoints
	env      []string
	wrap     []string
	client   *http.Client // default testenv.HTTPClient(testenv.HTTPTimeout)
	stateDir string
	listen   string // webhook listen host; default 127.0.0.1
	webhook  string // more keys of the webhook section, e.g. "tls_cert_file: /x"
}

// newGateway writes a config for a gateway on free loopback ports.
func newGateway(t testing.TB, o gatewayOptions) *gateway {
	t.Helper()
	dir := t.TempDir()
	if o.stateDir == "" {
		o.stateDir = filepath.Join(dir, "state")
	}
	hookPort, adminPort, natsPort := freePort(t), freePort(t), freePort(t)
	if o.client == nil {
		o.client = testenv.HTTPClient(testenv.HTTPTimeout)
	}
	if o.listen == "" {
		o.listen = "127.0.0.1"
	}
	if o.firewall == "" {
		o.firewall = fmt.Sprintf("firewall: {backend: none, ports: [%d]}", hookPort)
	}
	if o.ncs == "" {
		o.ncs = "ncs: {endpoints: []}"
	}
	cfgPath := filepath.Join(dir, "ncs-gateway.yaml")
	g := &gateway{
		t:        t,
		cfgPath:  cfgPath,
		env:      append([]string{"NCS_GATEWAY_WEBHOOK_SECRETS=" + testSecret}, o.env...),
		logPath:  filepath.Join(dir, "gateway.log"),
		webhook:  fmt.Sprintf("http://127.0.0.1:%d/agora/ncs", hookPort),
		admin:    fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		stateDir: o.stateDir,
		wrap:     o.wrap,
		client:   o.client,
		hookPort: hookPort,
		opts:     o,
		base: fmt.Sprintf(`state_dir: %s
log: {level: debug, format: json}
webhook: {listen: "%s", path: /agora/ncs}
admin: {listen: "127.0.0.1:%d", control_socket: %s}
nats:
  url: %q
  embedded_listen: "127.0.0.1:%d"
  publish_timeout: 1s
`, o.stateDir, net.JoinHostPort(o.listen, strconv.Itoa(hookPort)), adminPort, filepath.Join(dir, "control.sock"), o.natsURL, natsPort),
	}
	g.writeConfig()
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			if b, err := os.ReadFile(g.logPath); err == nil {
				t.Logf("gateway log:\n%s", tail(string(b), 60))
			}
		}
	})
	return g
}

// writeConfig (re)writes the config file from the base and the options.
func (g *gateway) writeConfig() {
	g.t.Helper()
	base := g.base
	if g.opts.webhook != "" {
		base = strings.Replace(base, "path: /agora/ncs}", "path: /agora/ncs, "+g.opts.webhook+"}", 1)
	}
	cfg := strings.Join([]string{base, g.opts.ncs, g.opts.firewall, g.opts.extra, ""}, "\n")
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

// setFirewall replaces the config's firewall section.
func (g *gateway) setFirewall(section string) {
	g.opts.firewall = section
	g.writeConfig()
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// command builds an ncs-gateway invocation with this gateway's config.
func (g *gateway) command(ctx context.Context, args ...string) *exec.Cmd {
	argv := append(append(slicesClone(g.wrap), binary, "-config", g.cfgPath), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), g.env...)
	return cmd
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// run runs a one-shot command (-refresh, -status, ...) and returns its
// stdout, stderr and exit code.
func (g *gateway) run(args ...string) (string, string, int) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := g.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		g.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// start launches the daemon and waits until its admin endpoint answers.
func (g *gateway) start() {
	g.t.Helper()
	logf, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		g.t.Fatal(err)
	}
	cmd := g.command(context.Background())
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	g.mu.Lock()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()
	waitFor(g.t, 30*time.Second, "the gateway's /healthz", func() bool {
		select {
		case err := <-done:
			done <- err
			g.t.Fatalf("gateway exited at start: %v", err)
		default:
		}
		resp, err := g.client.Get(g.admin + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// signal sends sig to the daemon (through the ip netns exec wrapper, which
// execs, so the pid is the daemon's).
func (g *gateway) signal(sig syscall.Signal) {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		g.t.Fatal("gateway not running")
	}
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop sends SIGTERM and returns the exit error once the daemon is gone.
func (g *gateway) stop() error {
	g.t.Helper()
	g.signal(syscall.SIGTERM)
	return g.wait(30 * time.Second)
}

// kill sends SIGKILL, as a crash would, and waits for the process to go.
func (g *gateway) kill() {
	g.mu.Lock()
	cmd := g.cmd
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = g.wait(10 * time.Second)
}

func (g *gateway) wait(d time.Duration) error {
	g.mu.Lock()
	done := g.done
	g.mu.Unlock()
	select {
	case err := <-done:
		g.mu.Lock()
		g.cmd = nil
		g.mu.Unlock()
		return err
	case <-time.After(d):
		g.t.Fatalf("gateway still running after %s", d)
		return nil
	}
}

// log returns what the daemon has logged so far.
func (g *gateway) log() string {
	b, _ := os.ReadFile(g.logPath)
	return string(b)
}

// sign returns the Agora-Signature-V2 of body under secret.
func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// post sends body to the webhook signed with secret (no signature when
// secret is empty) and returns the status code and the answer.
func (g *gateway) post(secret string, body []byte) (int, string) {
	t := g.t
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.webhook, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Agora-Signature-V2", sign(secret, body))
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// notification is a Cloud Recording "uploaded" event with the given id.
func notification(id string, notifyMs int64) []byte {
	return fmt.Appendf(nil, `{"noticeId":%q,"productId":3,"eventType":31,"notifyMs":%d,"sid":"sid-1","payload":{"cname":"room-1","uid":"123","sid":"sid-1","sequence":7,"sendts":%d,"serviceType":2,"details":{"msgName":"uploaded","status":0,"fileList":[{"fileName":"a.m3u8","trackType":"audio_and_video","uid":"0","mixedAllUser":true,"isPlayable":true,"sliceStartTime":1619172632080}]}}}`,
		id, notifyMs, notifyMs)
}

// waitFor polls cond with testenv.Eventually until it holds, failing the
// test after d with what it waited for.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, d, 50*time.Millisecond, func() (bool, string) {
		return cond(), "waiting for " + what
	})
}

// natsServer is a real nats-server with JetStream that a test can stop and
// start again on the same port and store.
type natsServer struct {
	t    testing.TB
	port int
	dir  string
	srv  *server.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	n := &natsServer{t: t, port: freePort(t), dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats-server not ready")
	}
	n.srv = srv
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// streamMessages reads every message of the stream at natsURL.
func streamMessages(t testing.TB, natsURL, stream string) []jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, info := openStream(ctx, t, natsURL, stream)
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, *m)
	}
	return out
}

// openStream connects to natsURL and looks the stream up; the connection
// closes when the test ends. opts go to the connection (a dialer into a
// network namespace, say).
func openStream(ctx context.Context, t testing.TB, natsURL, stream string, opts ...nats.Option) (jetstream.Stream, *jetstream.StreamInfo) {
	t.Helper()
	nc, err := nats.Connect(natsURL, append([]nats.Option{nats.Timeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, info
}

// streamCount returns the number of messages in the stream, or -1.
func streamCount(natsURL, stream string) int {
	nc, err := nats.Connect(natsURL, nats.Timeout(time.Second))
	if err != nil {
		return -1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// get fetches an admin path (/status, /metrics) and returns the body.
func (g *gateway) get(path string) string {
	g.t.Helper()
	resp, err := g.client.Get(g.admin + path)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	return string(b)
}
