package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Self-probe timing. A probe is a new connection through the listener, the
// connection limiter and (when on) a TLS handshake, then one HEAD answered
// by echo's not-found route: a few milliseconds on an idle server.
const (
	// ProbeInterval is how often the probe runs, and so how often an idle
	// server's heartbeat is marked.
	ProbeInterval = 5 * time.Second
	// probeTimeout bounds one probe, connect to answer. An idle server
	// answers in milliseconds; at the connection cap the probe queues in
	// the kernel behind everyone else while the limiter reclaims spare
	// connections (32 every 100 ms) and active requests end (within the
	// 5 s read and 9 s write timeouts), and it is given the time to get
	// through that a patient client would get.
	probeTimeout = 15 * time.Second
	// probePath is asked for instead of the webhook path: no route serves
	// it, so the answer is echo's 404, which touches neither the
	// notification metrics nor the rejection log.
	probePath = "/.ncs-gateway-probe"
)

// Probe shows that an idle webhook server still accepts and answers: every
// ProbeInterval it connects to the server's own listener over loopback,
// sends a HEAD on a path no route serves, and marks its heartbeat only when
// an answer comes back. An accept loop stuck behind the connection limiter
// or a server that no longer answers stops the heartbeat, whatever traffic
// the handlers see.
type Probe struct {
	s     *Server
	log   *zap.Logger
	every time.Duration
	hc    *http.Client
	beat  atomic.Int64 // unix ns of the last answered probe; 0: none yet
	fails atomic.Int64 // consecutive failed probes (for logs)
}

// NewProbe returns the probe of s; run it with Run once s is started.
func NewProbe(s *Server, log *zap.Logger) *Probe {
	if log == nil {
		log = zap.NewNop()
	}
	p := &Probe{s: s, log: log.Named("webhook").Named("probe"), every: ProbeInterval}
	tr := &http.Transport{
		Proxy:             nil, // never through an HTTP(S)_PROXY: this is our own loopback
		DialContext:       p.dial,
		DisableKeepAlives: true, // every probe goes through Accept
		ForceAttemptHTTP2: false,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
			// The name on the certificate is Agora's view of the host, not
			// "127.0.0.1": instead of a chain, the probe checks that the
			// peer shows the very certificate this server holds.
			InsecureSkipVerify: true, //nolint:gosec // checked by VerifyConnection below
			VerifyConnection:   p.verifyOwnCertificate,
		},
	}
	p.hc = &http.Client{Transport: tr, Timeout: probeTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return p
}

// LastBeat returns when the server last answered a probe; zero before the
// first answer.
func (p *Probe) LastBeat() time.Time {
	if n := p.beat.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Run probes at once and then every ProbeInterval until ctx ends. A failed
// probe is logged at the first failure of a streak and when it ends; it
// never stops the loop.
func (p *Probe) Run(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		err := p.Once(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if p.fails.Add(1) == 1 {
				p.log.Warn("webhook self-probe failed: the server did not answer its own request", zap.Error(err))
			}
		default:
			if n := p.fails.Swap(0); n > 0 {
				p.log.Info("webhook self-probe answered again", zap.Int64("failed_probes", n))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once sends one probe and marks the heartbeat when the server answers,
// whatever the status: an answer is what shows the server is alive.
func (p *Probe) Once(ctx context.Context) error {
	addr := p.s.Addr()
	if addr == nil {
		return errors.New("probe webhook: server not started")
	}
	scheme := "http"
	if p.s.cfg.TLS() {
		scheme = "https"
	}
	path := probePath
	if path == p.s.cfg.Path {
		path += "-"
	}
	// The host is a placeholder: dial picks the address.
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, scheme+"://webhook.invalid"+path, nil)
	if err != nil {
		return fmt.Errorf("probe webhook: %w", err)
	}
	req.Header.Set("User-Agent", "ncs-gateway-self-probe")
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("probe webhook: %w", err)
	}
	_ = resp.Body.Close()
	p.beat.Store(time.Now().UnixNano())
	return nil
}

// dial connects to the server's listener from a loopback address: to the
// listener's own address when it is bound to one, else (a wildcard bind)
// to 127.0.0.1, and for an IPv6 wildcard, which is dual-stack unless the
// host has no IPv4, then to ::1.
func (p *Probe) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	addr, ok := p.s.Addr().(*net.TCPAddr)
	if !ok {
		return nil, errors.New("webhook listener is not tcp")
	}
	targets := []net.IP{addr.IP}
	switch {
	case addr.IP.IsUnspecified() && addr.IP.To4() != nil:
		targets = []net.IP{net.IPv4(127, 0, 0, 1)}
	case addr.IP.IsUnspecified():
		targets = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	var errs []error
	for _, ip := range targets {
		// From loopback whatever the target, so that a firewall in front
		// of the port (the gateway's own allowlist) has one source to let
		// through: 127.0.0.1 or ::1, which the kernel never accepts from
		// outside the host.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv6loopback}}
		if ip.To4() != nil {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
		}
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), fmt.Sprint(addr.Port)))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// verifyOwnCertificate accepts the peer only if it presents the
// certificate this server serves now.
func (p *Probe) verifyOwnCertificate(cs tls.ConnectionState) error {
	own := p.s.cert.Load()
	if own == nil || len(own.Certificate) == 0 || len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate to compare")
	}
	if !bytes.Equal(cs.PeerCertificates[0].Raw, own.Certificate[0]) {
		return errors.New("the peer is not this webhook server: its certificate differs")
	}
	return nil
}
