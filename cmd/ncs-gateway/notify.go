package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// NATS headers set on every published notification (consumers read them);
// each is omitted when its value is empty. Nats-Msg-Id is added by publish
// from Message.ID.
const (
	headerNoticeID         = "Agora-Notice-Id"         // noticeId (or legacy notificationId)
	headerProductID        = "Agora-Product-Id"        // productId token, "unknown" when absent
	headerEventType        = "Agora-Event-Type"        // eventType token, "unknown" when absent
	headerEventName        = "Agora-Event-Name"        // payload.details.msgName
	headerSID              = "Agora-Sid"               // top-level sid, else payload.sid
	headerCname            = "Agora-Cname"             // payload.cname
	headerReceivedAt       = "Agora-Received-At"       // arrival, RFC 3339 with ns, UTC
	headerDeadletterReason = "Agora-Deadletter-Reason" // webhook.DeadLetterNotJSON or DeadLetterNoID
)

// deadletterToken is the subject token for notifications that cannot be routed.
const deadletterToken = "deadletter"

// messagePublisher is what notifier needs of *publish.Publisher.
type messagePublisher interface {
	Publish(ctx context.Context, m publish.Message) (publish.Outcome, error)
}

// notifier is the webhook's Publisher: it maps each verified notification
// to a JetStream message under the subject prefix and publishes it.
type notifier struct {
	pub    messagePublisher
	prefix string
}

var _ webhook.Publisher = notifier{}

// Publish maps n and publishes it; every failure wraps
// webhook.ErrUnavailable, so that the webhook answers 503.
func (p notifier) Publish(ctx context.Context, n webhook.Notification) (webhook.Outcome, error) {
	o, err := p.pub.Publish(ctx, notificationMessage(n, p.prefix))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", webhook.ErrUnavailable, err)
	}
	switch o {
	case publish.Published:
		return webhook.Published, nil
	case publish.Spooled:
		return webhook.Spooled, nil
	}
	return 0, fmt.Errorf("%w: publish returned outcome %d without error", webhook.ErrUnavailable, int(o))
}

// notificationMessage turns n into a JetStream message under prefix:
// "<prefix>.<productId>.<eventType>" keyed by the notice id, or
// "<prefix>.deadletter" keyed by a hash of the body (n.Key), so that an
// exact re-send deduplicates. The product and event tokens are already safe
// ("unknown" when absent or unsafe, see webhook.Parse).
func notificationMessage(n webhook.Notification, prefix string) publish.Message {
	// One backing array for all header values saves an allocation per header.
	vals := make([]string, 0, 8)
	h := make(nats.Header, 8)
	set := func(k, v string) {
		if v == "" {
			return
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(headerReceivedAt, n.ReceivedAt.UTC().Format(time.RFC3339Nano))
	set(headerNoticeID, n.ID)
	set(headerProductID, n.ProductID)
	set(headerEventType, n.EventType)
	set(headerEventName, n.EventName)
	set(headerSID, n.SID)
	set(headerCname, n.Cname)
	m := publish.Message{Header: h, Data: n.Body, ID: n.Key()}
	if n.DeadLetterReason != "" {
		set(headerDeadletterReason, n.DeadLetterReason)
		m.Subject = prefix + "." + deadletterToken
		return m
	}
	m.Subject = prefix + "." + n.ProductID + "." + n.EventType
	return m
}
