package publish

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Connection timings: a dead connection is noticed within
// pingInterval*maxPingsOut (about 4 s), and reconnects back off from
// reconnectMin to reconnectMax, forever.
const (
	pingInterval   = 2 * time.Second
	maxPingsOut    = 2
	connectTimeout = 2 * time.Second
	reconnectMin   = 250 * time.Millisecond
	reconnectMax   = 2 * time.Second
	drainTimeout   = 10 * time.Second
)

// connect dials NATS with the options of cfg and the publisher's state
// handlers. It returns at once while NATS is down: the client keeps trying.
func (p *Publisher) connect(cfg Config) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("ncs-gateway"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.IgnoreAuthErrorAbort(), // keep trying after auth errors too
		nats.CustomReconnectDelay(reconnectDelay),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		nats.Timeout(connectTimeout),
		nats.DrainTimeout(drainTimeout),
		// No reconnect buffer: a publish while disconnected fails at once
		// and is spooled, instead of waiting out the publish timeout.
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(p.onConnect),
		nats.ReconnectHandler(p.onReconnect),
		nats.DisconnectErrHandler(p.onDisconnect),
		nats.ClosedHandler(p.onClosed),
		nats.ErrorHandler(p.onAsyncError),
		nats.ReconnectErrHandler(p.onReconnectError),
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	serverURL := cfg.URL
	if cfg.Embedded != nil {
		// nats:// even when the listener is TLS-only (tls://): the
		// in-process pipe needs no TLS, and the server allows it plain.
		serverURL = "nats://" + cfg.Embedded.Server().Addr().String()
		opts = append(opts, nats.InProcessServer(cfg.Embedded.Server()))
		if cfg.Embedded.auth != nil {
			opts = append(opts, cfg.Embedded.auth.clientOptions()...)
		}
	}
	nc, err := nats.Connect(serverURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redactURLs(serverURL), err)
	}
	return nc, nil
}

// authOptions turns the credential settings into nats options.
func authOptions(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NkeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("load nats nkey seed file %s: %w", cfg.NkeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}
	return opts, nil
}

// reconnectDelay is called after each pass over the server list.
func reconnectDelay(attempts int) time.Duration {
	d := reconnectMin << min(attempts, 4)
	d = min(d, reconnectMax)
	return d + rand.N(d/4+1)
}

func (p *Publisher) onConnect(nc *nats.Conn) {
	p.m.connected.Set(1)
	p.log.Info("nats connected", zap.String("server_url", redactURLs(nc.ConnectedUrl())))
	p.wakeOnConnect()
}

func (p *Publisher) onReconnect(nc *nats.Conn) {
	p.m.connected.Set(1)
	p.m.reconnects.Inc()
	p.log.Info("nats reconnected", zap.String("server_url", redactURLs(nc.ConnectedUrl())))
	p.wakeOnConnect()
}

func (p *Publisher) onDisconnect(nc *nats.Conn, err error) {
	p.m.connected.Set(0)
	p.inflight.end(errNotConnected) // their answers will not come
	if p.closing.Load() {
		return
	}
	p.m.disconnects.Inc()
	p.log.Warn("nats disconnected", zap.String("server_url", p.serverURL), zap.Error(err))
}

func (p *Publisher) onClosed(nc *nats.Conn) {
	p.m.connected.Set(0)
	p.log.Info("nats connection closed", zap.String("server_url", p.serverURL))
	close(p.connClosed)
}

func (p *Publisher) onAsyncError(nc *nats.Conn, sub *nats.Subscription, err error) {
	p.log.Warn("nats async error", zap.String("server_url", p.serverURL), zap.Error(err))
}

// onReconnectError logs each failed attempt at debug level only: the
// disconnect itself was logged once, at warn.
func (p *Publisher) onReconnectError(nc *nats.Conn, err error) {
	p.log.Debug("nats reconnect attempt failed", zap.String("server_url", p.serverURL), zap.Error(err))
}

// redactURLs returns a comma-separated server list with any user info
// (user, password or token) replaced, so credentials embedded in URLs are
// never logged or shown. It does not parse: an unparsable URL is redacted too.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, s := range parts {
		s = strings.TrimSpace(s)
		if at := strings.LastIndexByte(s, '@'); at >= 0 {
			scheme := ""
			if j := strings.Index(s, "://"); j >= 0 && j < at {
				scheme = s[:j+3]
			}
			s = scheme + "redacted@" + s[at+1:]
		}
		parts[i] = s
	}
	return strings.Join(parts, ",")
}
