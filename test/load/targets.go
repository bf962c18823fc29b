package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// readyTimeout bounds the start of any server the suite runs.
const readyTimeout = 60 * time.Second

// binaries are the programs the suite runs as separate processes.
type binaries struct {
	self       string // this tool, for serve-echo and serve-minimal
	gateway    string
	natsServer string
}

// target is a running HTTP server under measurement.
type target struct {
	*proc
	url string // where the generator posts
}

// natsHost is a running NATS server: an external nats-server, or a gateway
// whose embedded server listens on TCP.
type natsHost struct {
	*proc
	url string
}

// launcher starts the suite's processes in a work directory, each logging
// to its own file there, and remembers them so that all are stopped at the
// end whatever happens.
type launcher struct {
	dir    string
	bins   binaries
	secret string
	// minimalDecode is serve-minimal's -decode; empty for its default.
	minimalDecode string
	seq           int
	procs         []*proc
}

// start runs argv as a named child and tracks it for stopAll.
func (l *launcher) start(name string, argv, env []string) (*proc, error) {
	l.seq++
	logPath := filepath.Join(l.dir, fmt.Sprintf("%02d-%s.log", l.seq, strings.ReplaceAll(name, " ", "-")))
	p, err := startProc(name, argv, env, logPath)
	if err != nil {
		return nil, err
	}
	l.procs = append(l.procs, p)
	return p, nil
}

// stopAll stops every process still running, newest first.
func (l *launcher) stopAll() error {
	var errs []error
	for i := len(l.procs) - 1; i >= 0; i-- {
		errs = append(errs, l.procs[i].stop())
	}
	l.procs = nil
	return errors.Join(errs...)
}

// drop stops p, which failed to start, and forgets it: its failure is
// reported by the caller, not again by stopAll.
func (l *launcher) drop(p *proc) {
	_ = p.stop()
	for i, q := range l.procs {
		if q == p {
			l.procs = append(l.procs[:i], l.procs[i+1:]...)
			break
		}
	}
}

// startBaseline runs this tool's serve-echo or serve-minimal on a free port
// and waits until it listens.
func (l *launcher) startBaseline(ctx context.Context, cmd string, extra ...string) (*target, error) {
	l.seq++
	addrFile := filepath.Join(l.dir, fmt.Sprintf("%02d-%s.addr", l.seq, cmd))
	argv := append([]string{l.bins.self, cmd, "-listen", "127.0.0.1:0", "-addr-file", addrFile}, extra...)
	p, err := l.start(cmd, argv, []string{secretEnv + "=" + l.secret})
	if err != nil {
		return nil, err
	}
	var addr []byte
	err = waitReady(ctx, p, readyTimeout, cmd+" to listen", func() bool {
		addr, err = os.ReadFile(addrFile)
		return err == nil && len(addr) > 0
	})
	if err != nil {
		return nil, err
	}
	return &target{proc: p, url: "http://" + string(addr) + "/agora/ncs"}, nil
}

// startEcho runs baseline 1.
func (l *launcher) startEcho(ctx context.Context) (*target, error) {
	return l.startBaseline(ctx, "serve-echo")
}

// startMinimal runs baseline 2 against natsURL.
func (l *launcher) startMinimal(ctx context.Context, natsURL string) (*target, error) {
	return l.startBaseline(ctx, "serve-minimal", append([]string{"-nats", natsURL}, l.minimalArgs()...)...)
}

// minimalArgs are the flags every serve-minimal gets.
func (l *launcher) minimalArgs() []string {
	if l.minimalDecode == "" {
		return nil
	}
	return []string{"-decode", l.minimalDecode}
}

// startMinimalEmbedded runs baseline 2 with its own in-process nats-server
// (store in storeDir, fsync before every ack), the counterpart of the
// gateway's embedded NATS. The returned host is the minimal's process
// itself, so its NATS CPU is inside its own.
func (l *launcher) startMinimalEmbedded(ctx context.Context, storeDir string) (*target, *natsHost, error) {
	urlFile := storeDir + ".url"
	t, err := l.startBaseline(ctx, "serve-minimal", append([]string{"-embedded", storeDir, "-nats-url-file", urlFile}, l.minimalArgs()...)...)
	if err != nil {
		return nil, nil, err
	}
	// The URL is written before the HTTP listener opens, so it is there.
	url, err := os.ReadFile(urlFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read the minimal receiver's nats url: %w", err)
	}
	if len(url) == 0 {
		return nil, nil, fmt.Errorf("read the minimal receiver's nats url: %s is empty", urlFile)
	}
	return t, &natsHost{proc: t.proc, url: string(url)}, nil
}

// startNATSServer runs the external nats-server with JetStream and default
// settings otherwise (no fsync per message: sync every 2 min).
func (l *launcher) startNATSServer(ctx context.Context, storeDir string) (*natsHost, error) {
	return retryPorts(func() (*natsHost, error) { return l.startNATSServerOnce(ctx, storeDir) })
}

// retryPorts calls start again, up to 3 times, while it fails because a
// port chosen for it was taken in the meantime.
func retryPorts[T any](start func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := start()
		if err == nil || !errors.Is(err, errPortTaken) || i == 2 {
			return v, err
		}
	}
}

func (l *launcher) startNATSServerOnce(ctx context.Context, storeDir string) (*natsHost, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	argv := []string{l.bins.natsServer, "-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", strconv.Itoa(port)}
	p, err := l.start("nats-server", argv, nil)
	if err != nil {
		return nil, err
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(ctx, p, readyTimeout, "nats-server", func() bool { return jetStreamUp(ctx, url) }); err != nil {
		l.drop(p)
		return nil, bindFailed(p, err)
	}
	return &natsHost{proc: p, url: url}, nil
}

// gatewayOptions shape one gateway process.
type gatewayOptions struct {
	natsURL  string // empty: embedded NATS
	stateDir string
	logLevel string        // warn or info
	nofile   uint64        // when not 0, the process's open file limit (soft and hard)
	dupWin   time.Duration // when not 0, nats.duplicate_window of the stream it creates
	replicas int           // when not 0, nats.stream_replicas (the cluster's 3)
	tls      *loadTLS      // when set, the webhook serves HTTPS with this certificate
}

// minDupWindow is the shortest nats.duplicate_window the tool sets: the
// gateway wants webhook.max_notify_age (at least 1m) plus
// max_notify_future below the window.
const minDupWindow = 2 * time.Minute

// notifyBounds are the webhook.max_notify_age and max_notify_future the
// tool sets with a duplicate window w (at least minDupWindow): a quarter of
// w each, within the webhook's bounds (age at least 1m, future at most 1h),
// so that their sum
// stays below w as the gateway requires. The generator's notifyMs is the
// send time, so neither refuses anything it sends.
func notifyBounds(w time.Duration) (age, future time.Duration) {
	return max(w/4, webhook.MinMaxNotifyAge), min(max(w/4, webhook.MinMaxNotifyFuture), webhook.MaxMaxNotifyFuture)
}

// gatewayProc is a running gateway: a target, and with embedded NATS also
// the NATS host.
type gatewayProc struct {
	*target
	nats  *natsHost // the embedded server's TCP listener; nil with external NATS
	admin string    // base URL of the admin listener (/metrics, /readyz)
}

// startGateway writes a bench config and runs the gateway until it is
// ready and its stream exists.
func (l *launcher) startGateway(ctx context.Context, o gatewayOptions) (*gatewayProc, error) {
	return retryPorts(func() (*gatewayProc, error) { return l.startGatewayOnce(ctx, o) })
}

func (l *launcher) startGatewayOnce(ctx context.Context, o gatewayOptions) (*gatewayProc, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	hook, admin, embedded := ports[0], ports[1], ports[2]
	cfg := fmt.Sprintf(`# written by go run ./test/load suite
state_dir: %q
log: {level: %s, format: json}
webhook: {listen: "127.0.0.1:%d", path: /agora/ncs}
admin: {listen: "127.0.0.1:%d"}
nats:
  url: %q
  embedded_listen: "127.0.0.1:%d"
ncs: {endpoints: []}
firewall: {backend: none, ports: [%d]}
# The suite, attack and soak measure the webhook against receivers that keep
# no ledger, and count the stream's messages; the ledger's own cost is
# measured by "go run ./test/load ledger".
ledger: {enabled: false}
`, o.stateDir, o.logLevel, hook, admin, o.natsURL, embedded, hook)
	if o.dupWin > 0 {
		cfg = strings.Replace(cfg, "nats:\n", fmt.Sprintf("nats:\n  duplicate_window: %s\n", o.dupWin), 1)
		age, future := notifyBounds(o.dupWin)
		cfg = strings.Replace(cfg, "path: /agora/ncs}", fmt.Sprintf("path: /agora/ncs, max_notify_age: %s, max_notify_future: %s}", age, future), 1)
	}
	if o.replicas > 0 {
		cfg = strings.Replace(cfg, "nats:\n", fmt.Sprintf("nats:\n  stream_replicas: %d\n", o.replicas), 1)
	}
	scheme := "http"
	if o.tls != nil {
		scheme = "https"
		cfg = strings.Replace(cfg, "path: /agora/ncs}", fmt.Sprintf("path: /agora/ncs, tls_cert_file: %q, tls_key_file: %q}", o.tls.certFile, o.tls.keyFile), 1)
	}
	l.seq++
	cfgPath := filepath.Join(l.dir, fmt.Sprintf("%02d-gateway.yaml", l.seq))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write gateway config: %w", err)
	}
	p, err := l.start("ncs-gateway", []string{l.bins.gateway, "-config", cfgPath},
		[]string{"NCS_GATEWAY_WEBHOOK_SECRETS=" + l.secret})
	if err != nil {
		return nil, err
	}
	if o.nofile > 0 {
		if err := setNofile(p.pid(), o.nofile); err != nil {
			l.drop(p)
			return nil, err
		}
	}
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", admin)
	readyz := adminURL + "/readyz"
	if err := waitReady(ctx, p, readyTimeout, "the gateway's /readyz", func() bool { return httpOK(ctx, readyz) }); err != nil {
		l.drop(p)
		return nil, bindFailed(p, err)
	}
	g := &gatewayProc{target: &target{proc: p, url: fmt.Sprintf("%s://127.0.0.1:%d/agora/ncs", scheme, hook)}, admin: adminURL}
	natsURL := o.natsURL
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:" + strconv.Itoa(embedded)
		g.nats = &natsHost{proc: p, url: natsURL}
	}
	// The gateway creates its stream at start; wait so no cell begins by
	// spooling.
	err = waitReady(ctx, p, readyTimeout, "the gateway's stream", func() bool {
		_, err := streamMsgs(ctx, natsURL)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// httpOK reports whether GET url answers 200.
func httpOK(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Timeout: time.Second}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// jetStreamUp reports whether JetStream answers at url.
func jetStreamUp(ctx context.Context, url string) bool {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// streamMsgs returns the number of messages in the gateway's stream at url.
func streamMsgs(ctx context.Context, url string) (uint64, error) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return 0, fmt.Errorf("connect nats %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("create jetstream context: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return 0, fmt.Errorf("look up stream %s: %w", streamName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", streamName, err)
	}
	return info.State.Msgs, nil
}
