package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a stopped process gets between SIGTERM and SIGKILL;
// the gateway's own shutdown grace is 15 s.
const stopGrace = 20 * time.Second

// proc is one child process the suite started and must stop.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, set before done closes

	stopOnce sync.Once
	stopErr  error
}

// startProc starts argv with env added to ours, stdout and stderr going to
// logPath. The child is killed if this process dies first (see
// childAttrs), so no run leaves servers behind.
func startProc(name string, argv, env []string, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to stopGrace, then kills. It is safe to call
// more than once. An exit caused by our own signal is not an error.
func (p *proc) stop() error {
	p.stopOnce.Do(func() {
		if p.exited() {
			p.stopErr = p.exitError()
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			p.stopErr = p.exitError()
		case <-time.After(stopGrace):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("stop %s: still running %s after SIGTERM, killed", p.name, stopGrace)
		}
	})
	return p.stopErr
}

// exitError is the exit status as an error, nil for a clean exit or one
// by SIGTERM.
func (p *proc) exitError() error {
	var ee *exec.ExitError
	if p.err == nil || errors.As(p.err, &ee) && !ee.Exited() && strings.Contains(ee.String(), "terminated") {
		return nil
	}
	return fmt.Errorf("%s exited: %w\n%s", p.name, p.err, p.logTail(20))
}

// logTail returns the last n lines of the process's log, for error messages.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}

// waitReady polls ready every 50 ms until it returns true, failing when the
// process exits, ctx ends or timeout passes.
func waitReady(ctx context.Context, p *proc, timeout time.Duration, what string, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		if p.exited() {
			return fmt.Errorf("wait for %s: %s exited: %v\n%s", what, p.name, p.err, p.logTail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s: not ready after %s\n%s", what, timeout, p.logTail(20))
		}
		if !sleepCtx(ctx, 50*time.Millisecond, nil) {
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		}
	}
	return nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago, for the servers that need a port in their config (the gateway,
// nats-server); echo and minimal bind port 0 instead. The ports are drawn
// below the kernel's ephemeral range, so that none is taken in the
// meantime as the source port of an outgoing connection: with hundreds of
// connections per cell on a shared machine, that race is real.
func freePorts(n int) ([]int, error) {
	lo := ephemeralLow()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n && tries < 200; tries++ {
		addr := "127.0.0.1:0"
		if lo > 12000 {
			addr = "127.0.0.1:" + strconv.Itoa(10000+mrand.IntN(lo-10000))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken: draw again
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("find %d free ports: only %d found", n, len(ports))
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (0 when
// unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

// errPortTaken marks a server that could not bind a port chosen for it;
// starting it again on other ports is the cure.
var errPortTaken = errors.New("port taken")

// bindFailed wraps err with errPortTaken when p's log says a port was in use.
func bindFailed(p *proc, err error) error {
	if err == nil || !p.exited() {
		return err
	}
	if b, rerr := os.ReadFile(p.logPath); rerr == nil && strings.Contains(string(b), "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// moduleRoot is the directory of the ncs-gateway go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find module root: run the suite from inside the ncs-gateway module")
	}
	return filepath.Dir(gomod), nil
}

// goBuild builds pkg into out from the module root; it never changes
// go.mod or go.sum (the go command's default -mod=readonly).
func goBuild(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
