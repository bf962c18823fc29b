// Package ncsmsg is the contract between the gateway and the consumers of
// its stream: how a verified Agora notification becomes a JetStream message
// (subject, Nats-Msg-Id, headers), and the header names consumers read.
// Consumers import it for the names; the daemon uses Publisher as the
// webhook's publisher. It sits between pkg/webhook, which knows nothing of
// NATS, and pkg/publish, which knows nothing of Agora.
package ncsmsg

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// NATS headers set on every published notification; each is omitted when
// its value is empty. Nats-Msg-Id (nats.MsgIdHdr) carries the notice id, or
// a hash of the body for a dead letter.
const (
	// HeaderNoticeID is Agora's noticeId (or the legacy notificationId).
	HeaderNoticeID = "Agora-Notice-Id"
	// HeaderProductID is the productId token, "unknown" when absent.
	HeaderProductID = "Agora-Product-Id"
	// HeaderEventType is the eventType token, "unknown" when absent.
	HeaderEventType = "Agora-Event-Type"
	// HeaderEventName is payload.details.msgName.
	HeaderEventName = "Agora-Event-Name"
	// HeaderSID is the top-level sid, else payload.sid.
	HeaderSID = "Agora-Sid"
	// HeaderCname is payload.cname, the channel name.
	HeaderCname = "Agora-Cname"
	// HeaderReceivedAt is when the gateway took the notification, RFC 3339
	// with nanoseconds, UTC.
	HeaderReceivedAt = "Agora-Received-At"
	// HeaderDeadletterReason says why a notification went to the dead
	// letter subject: webhook.DeadLetterNotJSON or webhook.DeadLetterNoID.
	HeaderDeadletterReason = "Agora-Deadletter-Reason"
)

// DeadletterToken is the subject token, after the prefix, of notifications
// that cannot be routed: "<prefix>.deadletter".
const DeadletterToken = "deadletter"

// MessagePublisher is what Publisher needs of *publish.Publisher. The
// message's Header is only lent: Publisher reuses the map once Publish
// returns, so an implementation must not keep it.
type MessagePublisher interface {
	Publish(ctx context.Context, m publish.Message) (publish.Outcome, error)
}

// Publisher is the webhook's Publisher: it maps each verified notification
// to a JetStream message under Prefix and publishes it with Pub.
type Publisher struct {
	Pub    MessagePublisher
	Prefix string
}

var _ webhook.Publisher = Publisher{}

// Publish maps n and publishes it. Any error makes the webhook answer 503,
// so that Agora retries.
func (p Publisher) Publish(ctx context.Context, n webhook.Notification) (webhook.Outcome, error) {
	hb := headerPool.Get().(*headerBuf)
	o, err := p.Pub.Publish(ctx, hb.message(n, p.Prefix, true))
	hb.release()
	if err != nil {
		return 0, fmt.Errorf("publish notification: %w", err)
	}
	switch o {
	case publish.Published:
		return webhook.Published, nil
	case publish.Spooled:
		return webhook.Spooled, nil
	}
	return 0, fmt.Errorf("publish notification: outcome %d without error", int(o))
}

// Message turns n into a JetStream message under prefix:
// "<prefix>.<productId>.<eventType>" keyed by the notice id, or
// "<prefix>.deadletter" keyed by a hash of the body (n.Key), so that an
// exact re-send deduplicates. The product and event tokens are already safe
// ("unknown" when absent or unsafe, see webhook.Parse).
func Message(n webhook.Notification, prefix string) publish.Message {
	hb := &headerBuf{h: make(nats.Header, 8)}
	return hb.message(n, prefix, false)
}

// headerBuf is the storage of one message's headers: the map and one
// backing array for the values, each header a one-element slice of it.
// Publisher reuses them through headerPool, so that a notification costs
// no header allocation but its received-at value.
type headerBuf struct {
	h    nats.Header
	vals [9]string // the seven Agora-* values, the dead-letter reason, Nats-Msg-Id
	n    int
}

// headerPool recycles Publisher's header storage. A notification has 8
// headers at most (a dead letter has no notice id), which a map of hint 8
// holds in one group: cheaper to fill, iterate (nats.go does it twice per
// publish) and clear than the table a larger hint makes.
var headerPool = sync.Pool{New: func() any { return &headerBuf{h: make(nats.Header, 8)} }}

// set adds header k unless v is empty.
func (hb *headerBuf) set(k, v string) {
	if v == "" {
		return
	}
	hb.vals[hb.n] = v
	hb.h[k] = hb.vals[hb.n : hb.n+1 : hb.n+1]
	hb.n++
}

// message maps n into hb. withID adds Nats-Msg-Id = the message's ID to
// the header, so that the publisher sends the map as it is instead of
// copying it to add the id; the stored message is the same either way.
func (hb *headerBuf) message(n webhook.Notification, prefix string, withID bool) publish.Message {
	hb.set(HeaderReceivedAt, n.ReceivedAt.UTC().Format(time.RFC3339Nano))
	hb.set(HeaderNoticeID, n.ID)
	hb.set(HeaderProductID, n.ProductID)
	hb.set(HeaderEventType, n.EventType)
	hb.set(HeaderEventName, n.EventName)
	hb.set(HeaderSID, n.SID)
	hb.set(HeaderCname, n.Cname)
	m := publish.Message{Header: hb.h, Data: n.Body, ID: n.Key()}
	if withID {
		hb.set(jetstream.MsgIDHeader, m.ID)
	}
	if n.DeadLetterReason != "" {
		hb.set(HeaderDeadletterReason, n.DeadLetterReason)
		m.Subject = prefix + "." + DeadletterToken
		return m
	}
	m.Subject = prefix + "." + n.ProductID + "." + n.EventType
	return m
}

// release empties hb and returns it to headerPool.
func (hb *headerBuf) release() {
	clear(hb.h)
	hb.vals = [len(headerBuf{}.vals)]string{}
	hb.n = 0
	headerPool.Put(hb)
}
