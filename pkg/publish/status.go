package publish

import (
	"context"
	"time"
)

// statusStreamTimeout bounds the stream look-up of Status, so the admin
// endpoint answers quickly when NATS is slow.
const statusStreamTimeout = time.Second

// Status is a snapshot of the publisher for the admin endpoint.
type Status struct {
	Connected bool   `json:"connected"`
	ServerURL string `json:"server_url"` // without credentials
	Stream    string `json:"stream"`
	// StreamMessages and StreamBytes are read from JetStream when connected;
	// StreamError says why they are missing otherwise.
	StreamMessages uint64 `json:"stream_messages"`
	StreamBytes    uint64 `json:"stream_bytes"`
	StreamError    string `json:"stream_error,omitempty"`

	SpoolDepth    int64 `json:"spool_depth"`
	SpoolBytes    int64 `json:"spool_bytes"`
	SpoolMaxBytes int64 `json:"spool_max_bytes"`
	// OldestSpooledAgeSeconds is how long the oldest spooled message has waited.
	OldestSpooledAgeSeconds float64 `json:"oldest_spooled_age_seconds"`
}

// Status reports the connection, the stream and the spool. The stream
// look-up is bounded by a short timeout and ctx.
func (p *Publisher) Status(ctx context.Context) Status {
	st := p.spool.stats()
	s := Status{
		Connected:               p.nc.IsConnected(),
		ServerURL:               p.serverURL,
		Stream:                  p.cfg.Stream,
		SpoolDepth:              st.depth,
		SpoolBytes:              st.bytes,
		SpoolMaxBytes:           p.cfg.SpoolMaxBytes,
		OldestSpooledAgeSeconds: st.oldestAge().Seconds(),
	}
	if !s.Connected {
		s.StreamError = "nats not connected"
		return s
	}
	if u := p.nc.ConnectedUrl(); u != "" && p.cfg.Embedded == nil {
		s.ServerURL = redactURLs(u)
	}
	ctx, cancel := context.WithTimeout(ctx, statusStreamTimeout)
	defer cancel()
	stream, err := p.js.Stream(ctx, p.cfg.Stream)
	if err != nil {
		s.StreamError = err.Error()
		return s
	}
	info := stream.CachedInfo()
	s.StreamMessages = info.State.Msgs
	s.StreamBytes = info.State.Bytes
	return s
}
