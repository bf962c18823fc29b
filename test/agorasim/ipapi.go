package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/ncsip/ncsiptest"
)

// defaultIPs is the list served without -ips: documentation addresses
// (RFC 5737, RFC 3849), public in shape so the gateway accepts them.
var defaultIPs = []string{"198.51.100.10", "203.0.113.10", "2001:db8::10"}

// ipAPI serves Agora's GET /v1/ncs/ip with HTTP Basic auth on a real port.
// The answers come from ncsiptest.Handler; ipAPI feeds it the list from a
// file, re-read on every request so an operator changes the list by editing
// the file, and logs each request.
type ipAPI struct {
	fake *ncsiptest.Handler
	file string // empty: defaultIPs, fixed
	out  io.Writer

	mu      sync.Mutex
	current []string

	srv  *http.Server
	addr net.Addr
	done chan error
}

// startIPAPI listens on listen and serves the list until shutdown.
func startIPAPI(listen, customerID, customerSecret, file string, out io.Writer) (*ipAPI, error) {
	ips := defaultIPs
	if file != "" {
		var err error
		if ips, err = readIPFile(file); err != nil {
			return nil, err
		}
	}
	a := &ipAPI{
		fake:    ncsiptest.NewHandler(customerID, customerSecret, ips...),
		file:    file,
		out:     out,
		current: ips,
		done:    make(chan error, 1),
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("ip api: %w (another agorasim serving it? -ip-listen '' sends notifications only)", err)
	}
	a.addr = ln.Addr()
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	go func() { a.done <- a.srv.Serve(ln) }()
	fmt.Fprintf(out, "ip-api: serving GET http://%s%s (Basic auth %s:<customer secret>), %s\n",
		a.addr, ncsiptest.Path, customerID, a.describe(ips))
	return a, nil
}

// shutdown stops the server, waiting for requests in flight until ctx ends.
func (a *ipAPI) shutdown(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	if serveErr := <-a.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("ip api: shut down: %w", err)
	}
	fmt.Fprintln(a.out, "ip-api: stopped")
	return nil
}

// ServeHTTP re-reads the list, answers as Agora would and logs the request.
func (a *ipAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := a.reload()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	a.fake.ServeHTTP(rec, r)
	what := ""
	if rec.status == http.StatusOK {
		what = fmt.Sprintf(", %d address(es)", n)
	}
	fmt.Fprintf(a.out, "ip-api: %s %s from %s -> %d%s\n", r.Method, r.URL.Path, r.RemoteAddr, rec.status, what)
}

// reload reads the file again and hands a changed list to the fake. A file
// that cannot be read leaves the list as it was. It returns the list's size.
func (a *ipAPI) reload() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file == "" {
		return len(a.current)
	}
	ips, err := readIPFile(a.file)
	if err != nil {
		fmt.Fprintf(a.out, "ip-api: %v; still serving the previous list\n", err)
		return len(a.current)
	}
	if !slices.Equal(ips, a.current) {
		a.current = ips
		a.fake.SetIPs(ips)
		fmt.Fprintf(a.out, "ip-api: list changed, %s\n", a.describe(ips))
	}
	return len(a.current)
}

// describe says what the list holds and where it comes from.
func (a *ipAPI) describe(ips []string) string {
	src := "built-in list"
	if a.file != "" {
		src = a.file
	}
	if len(ips) == 0 {
		return fmt.Sprintf("0 addresses from %s (an empty list)", src)
	}
	d := fmt.Sprintf("%d address(es) from %s: %s", len(ips), src, strings.Join(ips, " "))
	if bad := invalidIPs(ips); len(bad) > 0 {
		d += fmt.Sprintf(" (served as written, not IP addresses: %s)", strings.Join(bad, " "))
	}
	return d
}

// readIPFile reads one address per line; blank lines and text after # are
// ignored. Entries are served as written, so an invalid one tests the
// gateway's checks; describe points such entries out.
func readIPFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ip list: %w", err)
	}
	return parseIPList(b), nil
}

// parseIPList extracts the entries of an IP list file.
func parseIPList(b []byte) []string {
	ips := []string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			ips = append(ips, line)
		}
	}
	return ips
}

// invalidIPs returns the entries that are not IP addresses.
func invalidIPs(ips []string) []string {
	var bad []string
	for _, s := range ips {
		if _, err := netip.ParseAddr(s); err != nil {
			bad = append(bad, s)
		}
	}
	return bad
}

// statusRecorder remembers the status an http.Handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status and passes it on.
func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer (flushes).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
