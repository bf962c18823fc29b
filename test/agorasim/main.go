// Command agorasim plays Agora for a local ncs-gateway. It sends realistic,
// correctly signed Cloud Recording notifications to the gateway's webhook
// (whole recording sessions with sequences, Agora's resends with a new
// notifyMs, redundant duplicates and out-of-order arrivals), and it serves
// Agora's GET /v1/ncs/ip with HTTP Basic auth from a list the operator edits.
// Sessions come in kinds (-kinds: normal, abnormal exit, failover, lost 31,
// lost 11, silent, web page, individual, error, old format), and the run
// ends with what a session ledger should conclude about each sid.
//
// Usage:
//
//	go run ./test/agorasim [-sessions 3] [-kinds all] [-expect FILE] [-webhook URL] [-secret S] [-ips FILE] [-serve 30m] ...
//
// Every run is bounded (-sessions, -serve), talks only to loopback addresses
// and exits 1 when a notification never got a 200.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// errUnreachable means the first notification got no answer at all, so the
// rest would not either.
var errUnreachable = errors.New("the gateway never answered")

// errUsage marks a command line that cannot run; main exits 2 for it.
var errUsage = errors.New("usage")

// usage heads the -h output.
const usage = `usage: go run ./test/agorasim [flags]

Plays Agora against a local ncs-gateway: sends -sessions signed Cloud Recording
sessions to -webhook, and serves GET /v1/ncs/ip on -ip-listen while it runs
(and -serve longer). Exit status 1 if a notification never got a 200.

flags:
`

// main runs until the sessions are sent and -serve has passed, or Ctrl-C.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "agorasim:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is the whole program with its inputs injected, so tests drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o, err := parseOptions(args, stderr, getenv)
	if err != nil {
		return err
	}
	out := &syncWriter{w: stdout}
	seed := o.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	fmt.Fprintf(out, "agorasim: seed %d (-seed %d replays this run)\n", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	var api *ipAPI
	if o.ipListen != "" {
		if api, err = startIPAPI(o.ipListen, o.customerID, o.customerSecret, o.ipsFile, out); err != nil {
			return err
		}
	}
	var sendErr error
	if o.sends() {
		sendErr = sendAll(ctx, o, rng, out)
	}
	if api == nil {
		return sendErr
	}
	if o.serve > 0 && ctx.Err() == nil {
		fmt.Fprintf(out, "agorasim: serving the IP API for %s (Ctrl-C stops it sooner)\n", o.serve)
		_ = sleep(ctx, o.serve) // an early end is the operator's Ctrl-C, not a failure
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(sendErr, api.shutdown(shutCtx))
}

// sendAll sends the health check if asked, then every session, one
// notification per interval, and prints the summary.
func sendAll(ctx context.Context, o options, rng *rand.Rand, out io.Writer) error {
	s := &sender{
		client:    &http.Client{Timeout: agoraTimeout},
		url:       o.webhook,
		secret:    o.secret,
		withSHA1:  o.withSHA1,
		retries:   o.retries,
		retryWait: o.retryWait,
		pResend:   o.resends,
		rng:       rng,
		now:       time.Now,
		out:       out,
	}
	var expected []expectation
	err := sendSessions(ctx, s, o, rng, out, &expected)
	s.summary(out)
	writeExpectations(out, expected)
	if o.expectFile != "" {
		if saveErr := saveExpectations(o.expectFile, expected); saveErr != nil {
			return saveErr
		}
	}
	switch {
	case errors.Is(err, errUnreachable):
		return fmt.Errorf("%w (is the gateway listening on %s?)", err, o.webhook)
	case err != nil:
		return fmt.Errorf("interrupted: %w", err)
	}
	return s.err()
}

// sendSessions is sendAll without the summary; it appends to expected what
// a session ledger should conclude about each session it began to send.
func sendSessions(ctx context.Context, s *sender, o options, rng *rand.Rand, out io.Writer, expected *[]expectation) error {
	fmt.Fprintf(out, "agorasim: sending to %s\n", o.webhook)
	first := true
	next := func(d delivery) error {
		if !first {
			if err := sleep(ctx, o.interval); err != nil {
				return err
			}
		}
		first = false
		if err := s.deliver(ctx, d); err != nil {
			return err
		}
		if s.unreachable() {
			return fmt.Errorf("%w: stopping early", errUnreachable)
		}
		return nil
	}
	if o.healthCheck {
		if err := next(delivery{n: healthCheck(rng, time.Now())}); err != nil {
			return err
		}
	}
	for i := 1; i <= o.sessions; i++ {
		sess := newSessionOf(rng, i, o.kinds[(i-1)%len(o.kinds)])
		failover := ""
		if sess.newUID != "" {
			failover = " failover to uid " + sess.newUID
		}
		fmt.Fprintf(out, "session %d: kind=%s cname=%s uid=%s sid=%s recording uids %v%s\n", i, sess.kind, sess.cname, sess.uid, sess.sid, sess.streams, failover)
		*expected = append(*expected, sess.expect())
		for _, d := range plan(rng, sess.events(rng, time.Now(), o.interval), o.reorder, o.duplicates) {
			if err := next(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncWriter serialises writes from the sender and the IP API's handlers,
// one line per Write.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p under the lock.
func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("write output: %w", err)
	}
	return n, nil
}
