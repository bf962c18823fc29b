package publish

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// Environment of the crash child: the spool directory, the NATS URL (with
// nothing listening) and how many messages to spool.
const (
	crashEnvDir   = "NCS_PUBLISH_CRASH_DIR"
	crashEnvURL   = "NCS_PUBLISH_CRASH_URL"
	crashEnvCount = "NCS_PUBLISH_CRASH_COUNT"
	crashReady    = "spooled"
)

// TestMain runs the crash child instead of the tests when the environment
// asks for it.
func TestMain(m *testing.M) {
	if os.Getenv(crashEnvDir) != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// crashChild is the process TestSpoolSurvivesKill kills: it spools
// messages, says so on stdout, and waits to be killed.
func crashChild() int {
	n, err := strconv.Atoi(os.Getenv(crashEnvCount))
	if err != nil {
		fmt.Fprintf(os.Stderr, "parse %s: %v\n", crashEnvCount, err)
		return 2
	}
	p, err := New(testConfig(os.Getenv(crashEnvURL), os.Getenv(crashEnvDir)), zap.NewNop(), nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "new publisher: %v\n", err)
		return 2
	}
	for i := range n {
		if out, err := p.Publish(context.Background(), testMsg(i)); err != nil || out != Spooled {
			fmt.Fprintf(os.Stderr, "publish %d: got %v, %v, want spooled, nil\n", i, out, err)
			return 2
		}
	}
	fmt.Println(crashReady)
	// Bounded: the parent kills us long before.
	time.Sleep(30 * time.Second)
	fmt.Fprintln(os.Stderr, "not killed within 30 s")
	return 2
}

func TestSpoolSurvivesKill(t *testing.T) {
	const n = 20
	srv := deadNATS(t)
	dir := t.TempDir()

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		crashEnvDir+"="+dir, crashEnvURL+"="+srv.url(), crashEnvCount+"="+strconv.Itoa(n))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("pipe child stdout: %v", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == crashReady {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("child exited before spooling: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("child did not spool %d messages within 20 s", n)
	}
	// kill -9: no Close, no deferred cleanup, bbolt left as a crash leaves it.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	_ = cmd.Wait()

	srv.restart()
	p := newTestPublisher(t, testConfig(srv.url(), dir), true)
	if got := p.Status(context.Background()).SpoolDepth; got != n {
		t.Errorf("spool depth after the crash: got %d, want %d", got, n)
	}
	_, js := srv.client()
	eventually(t, 10*time.Second, "spool left by the crash drains", func() error {
		if d := p.Status(context.Background()).SpoolDepth; d != 0 {
			return fmt.Errorf("spool depth %d", d)
		}
		return nil
	})
	assertIDs(t, streamMsgs(t, js, DefaultStream), n)
}
