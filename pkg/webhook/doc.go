// Package webhook receives Agora's signed notification callbacks (NCS): it
// verifies each body's HMAC signature over the exact bytes received, reads
// only the envelope fields needed for routing, refuses a notifyMs outside
// the freshness window, and hands a Notification (raw body included) to a
// Publisher, answering 200 only once the notification is durable. It knows
// nothing of the message broker behind the Publisher.
package webhook
