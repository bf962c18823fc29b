package ncsip

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// credentialsHint tells the operator where the refused credentials come from.
const credentialsHint = "check NCS_GATEWAY_CUSTOMER_ID / NCS_GATEWAY_CUSTOMER_SECRET"

// maxErrorBody bounds how much of an error answer is read for its message.
const maxErrorBody = 64 << 10

// maxMessageLen bounds Agora's message as quoted in an error.
const maxMessageLen = 200

// maxRetryAfterSeconds keeps a hostile Retry-After from overflowing.
const maxRetryAfterSeconds = 1 << 20

// attempt makes one request to endpoint. The duration is the server's
// Retry-After on 429 and 503, or -1 when absent.
func (c *Client) attempt(ctx context.Context, endpoint string) (Result, time.Duration, *attemptError) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, endpoint, nil)
	if err != nil {
		// New checked the URL, so this is not expected.
		return Result{}, -1, &attemptError{endpoint: endpoint, kind: errNetwork, detail: "build request: " + err.Error(), cause: err}
	}
	req.SetBasicAuth(c.cfg.CustomerID, c.cfg.CustomerSecret)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		return Result{}, -1, c.transportError(ctx, actx, endpoint, 0, "", err)
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	status := statusLine(code)

	if code < 200 || code > 299 {
		ae, retryAfter := c.statusError(endpoint, resp)
		return Result{}, retryAfter, ae
	}

	if resp.ContentLength > c.cfg.MaxBodyBytes {
		return Result{}, -1, &attemptError{endpoint: endpoint, status: code, kind: errBadResponse,
			detail: fmt.Sprintf("%s: answer of %d bytes exceeds the limit of %d bytes", status, resp.ContentLength, c.cfg.MaxBodyBytes)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		return Result{}, -1, c.transportError(ctx, actx, endpoint, code, status+": read answer: ", err)
	}
	if int64(len(body)) > c.cfg.MaxBodyBytes {
		return Result{}, -1, &attemptError{endpoint: endpoint, status: code, kind: errBadResponse,
			detail: fmt.Sprintf("%s: answer exceeds the limit of %d bytes", status, c.cfg.MaxBodyBytes)}
	}
	res, err := decode(body, c.cfg.AllowPrivate)
	if err != nil {
		kind := errBadResponse
		if errors.Is(err, ErrEmpty) {
			kind = ErrEmpty
		}
		return Result{}, -1, &attemptError{endpoint: endpoint, status: code, kind: kind, detail: status + ": " + err.Error(), cause: err}
	}
	if len(res.Addrs) > c.cfg.MaxAddresses {
		return Result{}, -1, &attemptError{endpoint: endpoint, status: code, kind: errTooMany,
			detail: fmt.Sprintf("%s: %d addresses, more than ncs.max_addresses (%d)", status, len(res.Addrs), c.cfg.MaxAddresses)}
	}
	return res, -1, nil
}

// statusError explains a non-2xx answer, with Agora's message when the body
// has one, and returns the server's Retry-After on 429 and 503 (else -1).
func (c *Client) statusError(endpoint string, resp *http.Response) (*attemptError, time.Duration) {
	code := resp.StatusCode
	detail := statusLine(code)
	if msg := c.agoraMessage(resp.Body); msg != "" {
		detail += ": " + msg
	}
	ae := &attemptError{endpoint: endpoint, status: code, detail: detail}
	retryAfter := time.Duration(-1)
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		ae.kind = ErrUnauthorized
		ae.detail += " (" + credentialsHint + ")"
	case code == http.StatusNotFound:
		ae.kind = errNotFound
		ae.detail += " (check the endpoint URL)"
	case code == http.StatusTooManyRequests:
		ae.kind = errRateLimited
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case code >= 500:
		ae.kind = errServer
		if code == http.StatusServiceUnavailable {
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	case code >= 300 && code <= 399:
		ae.kind = errBadResponse
		ae.detail = "unexpected status " + ae.detail + " (a redirect, which is never followed so that the credentials go nowhere else: put the final https URL in ncs.endpoints)"
	default:
		ae.kind = errBadResponse
		ae.detail = "unexpected status " + ae.detail
	}
	return ae, retryAfter
}

// transportError classifies a failure to send the request or read the
// answer: the caller's context ending, this attempt's timeout, or the network.
func (c *Client) transportError(ctx, actx context.Context, endpoint string, status int, prefix string, err error) *attemptError {
	ae := &attemptError{endpoint: endpoint, status: status, cause: err}
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		ae.kind = ctx.Err()
		ae.detail = prefix + "stopped: " + ctx.Err().Error()
	case actx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		ae.kind = errTimeout
		ae.detail = fmt.Sprintf("%sno complete answer within %s", prefix, c.cfg.Timeout)
	default:
		ae.kind = errNetwork
		// url.Error repeats the method and URL, which Error already gives.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		ae.detail = prefix + c.redact(err.Error())
	}
	return ae
}

// agoraMessage returns Agora's "message" field of an error answer, quoted,
// shortened and without the credentials, or "" when there is none.
func (c *Client) agoraMessage(body io.Reader) string {
	raw, err := io.ReadAll(io.LimitReader(body, maxErrorBody))
	if err != nil && len(raw) == 0 {
		return ""
	}
	var v struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &v) != nil || strings.TrimSpace(v.Message) == "" {
		return ""
	}
	msg := c.redact(v.Message)
	if len(msg) > maxMessageLen {
		return strconv.Quote(msg[:maxMessageLen]) + "..."
	}
	return strconv.Quote(msg)
}

// redact removes the credentials from text that came from elsewhere, in case
// a server or proxy echoes them back.
func (c *Client) redact(s string) string {
	token := base64.StdEncoding.EncodeToString([]byte(c.cfg.CustomerID + ":" + c.cfg.CustomerSecret))
	for _, secret := range []string{token, c.cfg.CustomerSecret, c.cfg.CustomerID} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// statusLine renders a status from our own table, never the server's
// reason phrase, which is untrusted text.
func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// parseRetryAfter reads a Retry-After value (seconds or an HTTP date) and
// returns -1 when it is absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		return time.Duration(min(secs, maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}
