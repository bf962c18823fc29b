// Package ncsip fetches the source addresses of Agora's notification servers
// (NCS) from Agora's GET /v1/ncs/ip API, so the firewall lets only them reach
// the webhook port.
//
// A fetch walks the configured endpoints like this:
//
//   - attempt 1 uses Endpoints[0]; there are at most 1+len(Backoff) attempts;
//   - a network error, a timeout, 429 or 5xx is transient: wait Backoff[n]
//     after the failed attempt n (0-based), or the server's Retry-After on 429
//     and 503 (capped by MaxRetryAfter), then try the next endpoint, wrapping
//     around, so a single endpoint is simply retried;
//   - 404, another unexpected status, a body that cannot be decoded or one
//     with no usable address is a fault of that endpoint: it is skipped for
//     the rest of the fetch and the next endpoint is tried at once;
//   - 401 and 403 stop the fetch at once: every endpoint takes the same
//     credentials, so asking again cannot help;
//   - the fetch stops when the context ends, when no endpoint is left, or
//     when the attempts are used up.
//
// The answer is decoded leniently (only data.service.hosts[].primaryIP is
// read) and every address is checked: unspecified, "this network"
// (0.0.0.0/8), loopback, multicast, link-local and reserved (240.0.0.0/4)
// addresses are always rejected; private addresses (RFC 1918, fc00::/7 and
// the shared CGNAT range 100.64.0.0/10, which is not routable on the
// internet either) are rejected unless AllowPrivate is set. Documentation
// ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are
// accepted: the project's tests use them. A result is never empty: an answer
// with no usable address is an error wrapping ErrEmpty.
package ncsip
