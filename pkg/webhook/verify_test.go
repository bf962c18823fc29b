package webhook

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestVectors pins the NCS.md digests, so a wrong vector cannot make the
// other tests pass for the wrong reason.
func TestVectors(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"A sha1", signSHA1(testSecret, []byte(vectorA)), vectorASHA1},
		{"A sha256", signSHA256(testSecret, []byte(vectorA)), vectorASHA2},
		{"B sha1", signSHA1(testSecret, []byte(vectorB)), vectorBSHA1},
		{"B sha256", signSHA256(testSecret, []byte(vectorB)), vectorBSHA2},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	flip := func(s string) string { // change the last hex digit
		last := s[len(s)-1]
		if last == '0' {
			return s[:len(s)-1] + "1"
		}
		return s[:len(s)-1] + "0"
	}
	tests := []struct {
		name       string
		secrets    []string
		acceptSHA1 bool
		body       string
		v2, v1     string // header values; "" means absent
		want       error
	}{
		{"A sha256", []string{testSecret}, false, vectorA, vectorASHA2, "", nil},
		{"B sha256", []string{testSecret}, false, vectorB, vectorBSHA2, "", nil},
		{"A sha1 accepted", []string{testSecret}, true, vectorA, "", vectorASHA1, nil},
		{"B sha1 accepted", []string{testSecret}, true, vectorB, "", vectorBSHA1, nil},
		{"A with B's sha256", []string{testSecret}, false, vectorA, vectorBSHA2, "", ErrBadSignature},
		{"A with B's sha1", []string{testSecret}, true, vectorA, "", vectorBSHA1, ErrBadSignature},
		{"B with A's sha256", []string{testSecret}, false, vectorB, vectorASHA2, "", ErrBadSignature},
		{"wrong digest", []string{testSecret}, false, vectorA, flip(vectorASHA2), "", ErrBadSignature},
		{"wrong secret", []string{"Secret"}, false, vectorA, vectorASHA2, "", ErrBadSignature},
		{"rotation, old first", []string{"old-secret", testSecret}, false, vectorA, vectorASHA2, "", nil},
		{"rotation, new first", []string{testSecret, "new-secret"}, false, vectorA, vectorASHA2, "", nil},
		{"rotation, sha1", []string{"old-secret", testSecret}, true, vectorB, "", vectorBSHA1, nil},
		{"rotation, neither", []string{"old-secret", "new-secret"}, false, vectorA, vectorASHA2, "", ErrBadSignature},
		{"uppercase hex", []string{testSecret}, false, vectorA, strings.ToUpper(vectorASHA2), "", nil},
		{"uppercase sha1", []string{testSecret}, true, vectorA, "", strings.ToUpper(vectorASHA1), nil},
		{"whitespace around", []string{testSecret}, false, vectorA, " \t" + vectorASHA2 + "  ", "", nil},
		{"sha1 ignored when off", []string{testSecret}, false, vectorA, "", vectorASHA1, ErrMissingSignature},
		{"no header", []string{testSecret}, true, vectorA, "", "", ErrMissingSignature},
		{"blank v2 counts as absent", []string{testSecret}, false, vectorA, "   ", "", ErrMissingSignature},
		{"blank v2, sha1 used", []string{testSecret}, true, vectorA, "  ", vectorASHA1, nil},
		{"v2 wins over valid sha1", []string{testSecret}, true, vectorA, flip(vectorASHA2), vectorASHA1, ErrBadSignature},
		{"not hex", []string{testSecret}, false, vectorA, "zz" + vectorASHA2[2:], "", ErrBadSignature},
		{"too short", []string{testSecret}, false, vectorA, vectorASHA2[:62], "", ErrBadSignature},
		{"too long", []string{testSecret}, false, vectorA, vectorASHA2 + "00", "", ErrBadSignature},
		{"sha256 in sha1 header", []string{testSecret}, true, vectorA, "", vectorASHA2, ErrBadSignature},
		{"sha1 in v2 header", []string{testSecret}, true, vectorA, vectorASHA1, "", ErrBadSignature},
		{"inner space", []string{testSecret}, false, vectorA, vectorASHA2[:32] + " " + vectorASHA2[33:], "", ErrBadSignature},
		{"body changed", []string{testSecret}, false, vectorA + " ", vectorASHA2, "", ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.secrets, tt.acceptSHA1)
			if err != nil {
				t.Fatalf("new verifier: %v", err)
			}
			h := http.Header{}
			if tt.v2 != "" {
				h.Set(HeaderSignatureV2, tt.v2)
			}
			if tt.v1 != "" {
				h.Set(HeaderSignature, tt.v1)
			}
			if got := v.Verify([]byte(tt.body), h); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewVerifierRejects(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
	}{
		{"none", nil},
		{"empty", []string{testSecret, ""}},
	}
	for _, tt := range tests {
		if _, err := NewVerifier(tt.secrets, false); err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
		}
	}
}

// TestVerifyConcurrent exercises the pooled HMAC states from many
// goroutines (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	v, err := NewVerifier([]string{"other", testSecret}, true)
	if err != nil {
		t.Fatalf("new verifier: %v", err)
	}
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			body, sig := vectorA, vectorASHA2
			if i%2 == 1 {
				body, sig = vectorB, vectorBSHA2
			}
			h := http.Header{HeaderSignatureV2: {sig}}
			var err error
			for range 200 {
				if err = v.Verify([]byte(body), h); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("got %v, want nil", err)
		}
	}
}
