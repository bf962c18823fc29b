package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Bounds that keep every run finite.
const (
	maxSessions = 1000
	maxInterval = time.Minute
	maxServe    = 24 * time.Hour
	maxRetries  = 3 // Agora stops after 3 retries
)

// options is the parsed command line; defaults < environment < flags.
type options struct {
	webhook     string
	secret      string
	withSHA1    bool
	sessions    int
	interval    time.Duration
	duplicates  float64
	reorder     float64
	resends     float64
	retries     int
	retryWait   time.Duration
	seed        uint64
	healthCheck bool
	kinds       []kind // sessions take them in turn
	expectFile  string // where to write the expectations as JSON, if anywhere

	ipListen       string
	customerID     string
	customerSecret string
	ipsFile        string
	serve          time.Duration
}

// sends reports whether the run posts any notification.
func (o options) sends() bool { return o.sessions > 0 || o.healthCheck }

// parseOptions reads args; getenv supplies the environment's defaults for
// the secrets. Every invalid value is reported at once.
func parseOptions(args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var o options
	fs := flag.NewFlagSet("agorasim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.webhook, "webhook", "http://127.0.0.1:8080/agora/ncs", "the gateway's webhook `URL` (loopback only)")
	fs.StringVar(&o.secret, "secret", "", "webhook `secret` that signs notifications (default: $AGORASIM_WEBHOOK_SECRET, else the quickstart's quickstart-secret)")
	fs.BoolVar(&o.withSHA1, "sha1", false, "also send the legacy Agora-Signature (HMAC-SHA1) header")
	fs.IntVar(&o.sessions, "sessions", 3, fmt.Sprintf("recording sessions to play, 0 to %d", maxSessions))
	fs.DurationVar(&o.interval, "interval", 200*time.Millisecond, "pause between two notifications")
	fs.Float64Var(&o.duplicates, "duplicates", 0.1, "probability that a notification is sent twice with the same bytes (redundant notifications)")
	fs.Float64Var(&o.reorder, "reorder", 0.1, "probability that two neighbouring notifications are swapped (out of order)")
	fs.Float64Var(&o.resends, "resends", 0.05, "probability that a 200 counts as lost, so the notification is resent with a new notifyMs")
	fs.IntVar(&o.retries, "retries", maxRetries, fmt.Sprintf("resends after a failed attempt, 0 to %d", maxRetries))
	fs.DurationVar(&o.retryWait, "retry-wait", 500*time.Millisecond, "wait before the second resend, doubled before the third (the first is immediate)")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed; the same seed replays the same sessions and noticeIds (0: a new one, printed)")
	fs.BoolVar(&o.healthCheck, "health-check", false, "first send the console's test notification (cname test_webhook, uid 12121212)")
	kinds := fs.String("kinds", defaultKinds, "comma-separated `kinds` the sessions take in turn: "+kindNames()+", or all")
	fs.StringVar(&o.expectFile, "expect", "", "also write what a session ledger should conclude, per sid, as JSON to this `file`")
	fs.StringVar(&o.ipListen, "ip-listen", "127.0.0.1:8081", "`address` (loopback) that serves GET /v1/ncs/ip; empty: no IP API")
	fs.StringVar(&o.customerID, "customer-id", "", "customer `ID` the IP API accepts (default: $AGORASIM_CUSTOMER_ID, else sim-id)")
	fs.StringVar(&o.customerSecret, "customer-secret", "", "customer `secret` the IP API accepts (default: $AGORASIM_CUSTOMER_SECRET, else sim-secret)")
	fs.StringVar(&o.ipsFile, "ips", "", "`file` listing the served addresses, one per line, # comments; re-read on every request (default: "+fmt.Sprint(defaultIPs)+")")
	fs.DurationVar(&o.serve, "serve", 0, fmt.Sprintf("keep serving the IP API this long after the notifications, at most %s (Ctrl-C ends it sooner)", maxServe))
	if err := fs.Parse(args); err != nil {
		return options{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q: %w", fs.Arg(0), errUsage)
	}
	var kindsErr error
	o.kinds, kindsErr = parseKinds(*kinds)
	// Secrets get their defaults only now, so -h never prints one.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, d := range []struct {
		flag, env, def string
		v              *string
	}{
		{"secret", "AGORASIM_WEBHOOK_SECRET", "quickstart-secret", &o.secret},
		{"customer-id", "AGORASIM_CUSTOMER_ID", "sim-id", &o.customerID},
		{"customer-secret", "AGORASIM_CUSTOMER_SECRET", "sim-secret", &o.customerSecret},
	} {
		if !set[d.flag] {
			*d.v = envOr(d.env, d.def)
		}
	}
	if err := errors.Join(kindsErr, o.validate()); err != nil {
		return options{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return o, nil
}

// validate reports every invalid value, naming its flag.
func (o options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.sessions < 0 || o.sessions > maxSessions {
		bad("-sessions %d: want 0 to %d", o.sessions, maxSessions)
	}
	if o.interval < 0 || o.interval > maxInterval {
		bad("-interval %s: want 0 to %s", o.interval, maxInterval)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"-duplicates", o.duplicates}, {"-reorder", o.reorder}, {"-resends", o.resends}} {
		if !(p.v >= 0 && p.v <= 1) {
			bad("%s %g: want a probability from 0 to 1", p.name, p.v)
		}
	}
	if o.retries < 0 || o.retries > maxRetries {
		bad("-retries %d: want 0 to %d (Agora stops after %d)", o.retries, maxRetries, maxRetries)
	}
	if o.retryWait < 0 || o.retryWait > maxInterval {
		bad("-retry-wait %s: want 0 to %s", o.retryWait, maxInterval)
	}
	if o.serve < 0 || o.serve > maxServe {
		bad("-serve %s: want 0 to %s", o.serve, maxServe)
	}
	if o.sends() {
		if err := checkWebhookURL(o.webhook); err != nil {
			bad("-webhook: %w", err)
		}
		if o.secret == "" {
			bad("-secret is empty: give the gateway's webhook secret (or set AGORASIM_WEBHOOK_SECRET)")
		}
	}
	if o.ipListen != "" {
		if err := checkLoopbackHost(o.ipListen); err != nil {
			bad("-ip-listen: %w", err)
		}
		if o.customerID == "" || o.customerSecret == "" {
			bad("-customer-id and -customer-secret must not be empty")
		}
	} else if o.serve > 0 {
		bad("-serve needs the IP API: give -ip-listen")
	}
	if !o.sends() && o.ipListen == "" {
		bad("nothing to do: -sessions 0, no -health-check and no -ip-listen")
	}
	return errors.Join(errs...)
}

// kindNames lists the kinds for -h.
func kindNames() string {
	names := make([]string, len(allKinds))
	for i, k := range allKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// checkWebhookURL accepts an http(s) URL whose host is on loopback: the
// simulator sends only to this machine.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	return checkLoopbackHost(u.Host)
}

// checkLoopbackHost accepts host or host:port when the host is localhost or
// a loopback address.
func checkLoopbackHost(hostport string) error {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		return nil
	}
	return fmt.Errorf("host %q is not loopback: the simulator only talks to this machine (use 127.0.0.1, ::1 or localhost)", host)
}
