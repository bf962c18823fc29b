// Package publish delivers verified Agora notifications to NATS JetStream
// without losing any: a message JetStream does not acknowledge in time goes
// into a durable local spool (bbolt) and a forwarder publishes it later. It
// also runs the embedded nats-server the daemon uses by default.
package publish

import (
	"errors"

	"github.com/nats-io/nats.go"
)

// Message is one notification ready for JetStream.
type Message struct {
	Subject string // e.g. "agora.ncs.3.31"
	ID      string // becomes the Nats-Msg-Id header (dedup key)
	// Header holds the Agora-* headers. Publish sends it with Nats-Msg-Id
	// = ID: as it is when it already carries exactly that, else on a copy;
	// it never modifies the map.
	Header nats.Header
	Data   []byte // the raw body, byte for byte
}

// Outcome says where a durable notification went.
type Outcome int

const (
	// Published means JetStream acknowledged the message.
	Published Outcome = iota + 1
	// Spooled means the message was written and fsynced to the local spool;
	// the forwarder will publish it.
	Spooled
)

// String returns "published" or "spooled".
func (o Outcome) String() string {
	switch o {
	case Published:
		return "published"
	case Spooled:
		return "spooled"
	default:
		return "unknown"
	}
}

// ErrUnavailable means neither JetStream nor the spool could take the message
// (spool full or unwritable); the webhook answers 503 so Agora retries.
var ErrUnavailable = errors.New("publish unavailable: nats down and spool cannot take the message")

// ErrSpoolFull means the spool reached its configured size limit. Errors
// carrying it also match ErrUnavailable.
var ErrSpoolFull = errors.New("spool full")
