package webhook

import (
	"context"
)

// Publisher makes a verified notification durable. A nil error means the
// notification will not be lost; any error is answered 503, so that Agora
// retries. The daemon supplies one that maps a Notification to a JetStream
// message; this package knows nothing of NATS.
type Publisher interface {
	Publish(ctx context.Context, n Notification) (Outcome, error)
}

// Outcome says where a durable notification went.
type Outcome int

const (
	// Published means the message broker acknowledged the notification.
	Published Outcome = iota + 1
	// Spooled means the notification was written and fsynced to a local
	// spool, from which it will be forwarded.
	Spooled
)

// String returns "published" or "spooled" (the accepted_total outcome label
// and the answer's outcome field).
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
