package webhook

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Agora's legacy Agora-Signature header is HMAC-SHA1; only used when accept_sha1 is on.
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync"
)

// Signature headers Agora sets on every notification.
const (
	// HeaderSignatureV2 carries the lowercase hex HMAC-SHA256 of the body.
	HeaderSignatureV2 = "Agora-Signature-V2"
	// HeaderSignature carries the lowercase hex HMAC-SHA1 of the body.
	HeaderSignature = "Agora-Signature"
)

// ErrMissingSignature means no usable signature header was present.
var ErrMissingSignature = errors.New("missing signature")

// ErrBadSignature means the signature header was malformed or matched no secret.
var ErrBadSignature = errors.New("bad signature")

// Verifier checks Agora's HMAC signatures against a set of secrets (several
// during a rotation). It is safe for concurrent use.
type Verifier struct {
	sha256     []*macPool
	sha1       []*macPool
	acceptSHA1 bool
}

// macPool recycles keyed HMAC states for one secret and one hash, so that a
// verification allocates nothing.
type macPool struct {
	size int
	pool sync.Pool
}

// macState is one reusable HMAC with its output buffer.
type macState struct {
	mac hash.Hash
	sum []byte
}

func newMacPool(h func() hash.Hash, key []byte) *macPool {
	p := &macPool{size: h().Size()}
	p.pool.New = func() any {
		m := hmac.New(h, key)
		return &macState{mac: m, sum: make([]byte, 0, m.Size())}
	}
	return p
}

// equal reports whether the HMAC of body under this pool's key equals want,
// in constant time.
func (p *macPool) equal(body, want []byte) bool {
	st := p.pool.Get().(*macState)
	st.mac.Reset()
	st.mac.Write(body)
	st.sum = st.mac.Sum(st.sum[:0])
	ok := hmac.Equal(st.sum, want)
	p.pool.Put(st)
	return ok
}

// NewVerifier returns a Verifier for secrets; each secret's bytes, as typed,
// are the HMAC key. With acceptSHA1 it also accepts Agora-Signature when
// Agora-Signature-V2 is absent.
func NewVerifier(secrets []string, acceptSHA1 bool) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no secrets: at least one is required")
	}
	v := &Verifier{acceptSHA1: acceptSHA1}
	for i, s := range secrets {
		if s == "" {
			return nil, fmt.Errorf("secret %d is empty", i)
		}
		v.sha256 = append(v.sha256, newMacPool(sha256.New, []byte(s)))
		if acceptSHA1 {
			v.sha1 = append(v.sha1, newMacPool(sha1.New, []byte(s)))
		}
	}
	return v, nil
}

// Verify checks body, the exact bytes received, against the signature in h.
// Agora-Signature-V2 wins when present; Agora-Signature is consulted only
// when SHA-1 is accepted and V2 is absent. A header whose value is empty
// after trimming counts as absent. It returns nil, ErrMissingSignature or
// ErrBadSignature.
func (v *Verifier) Verify(body []byte, h http.Header) error {
	if sig := strings.TrimSpace(h.Get(HeaderSignatureV2)); sig != "" {
		return check(v.sha256, sig, body)
	}
	if v.acceptSHA1 {
		if sig := strings.TrimSpace(h.Get(HeaderSignature)); sig != "" {
			return check(v.sha1, sig, body)
		}
	}
	return ErrMissingSignature
}

// check decodes the hex signature and compares it with every secret's HMAC;
// all secrets are tried so the time taken does not reveal which one matched.
func check(pools []*macPool, sig string, body []byte) error {
	var buf [sha256.Size]byte
	size := pools[0].size
	if len(sig) != 2*size {
		return ErrBadSignature
	}
	want := buf[:size]
	for i := range want {
		hi, ok1 := unhex(sig[2*i])
		lo, ok2 := unhex(sig[2*i+1])
		if !ok1 || !ok2 {
			return ErrBadSignature
		}
		want[i] = hi<<4 | lo
	}
	ok := false
	for _, p := range pools {
		if p.equal(body, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// unhex decodes one hex digit of either case.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
