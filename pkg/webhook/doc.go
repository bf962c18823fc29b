// Package webhook receives Agora's signed notification callbacks (NCS): it
// verifies each body's HMAC signature over the exact bytes received, reads
// only the envelope fields needed for routing, and hands the raw body to a
// Publisher, answering 200 only once the notification is durable.
package webhook
