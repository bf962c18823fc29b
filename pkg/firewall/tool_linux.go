package firewall

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// toolRun is a started command-line tool whose output is being collected.
type toolRun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startTool starts a tool with stdin. The fork happens on the calling
// thread, so the tool runs in the caller's network namespace even when it
// is waited for later; starting several before waiting runs them at once.
func startTool(ctx context.Context, stdin []byte, name string, args ...string) (*toolRun, error) {
	r := &toolRun{cmd: exec.CommandContext(ctx, name, args...)}
	if stdin != nil {
		r.cmd.Stdin = bytes.NewReader(stdin)
	}
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return r, nil
}

// wait waits for the tool and returns its stdout; the error carries stderr.
func (r *toolRun) wait() ([]byte, error) {
	if err := r.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("run %s: %w: %s", strings.Join(r.cmd.Args, " "), err, strings.TrimSpace(r.stderr.String()))
	}
	return r.stdout.Bytes(), nil
}

// runTool runs a tool to completion and returns its stdout.
func runTool(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	r, err := startTool(ctx, stdin, name, args...)
	if err != nil {
		return nil, err
	}
	return r.wait()
}
