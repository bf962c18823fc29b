package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyParse checks that verification and parsing never panic, that
// only the right signature verifies, and that every validly signed body is
// either routable (non-empty header-safe id, safe subject tokens) or a dead
// letter with a known reason.
func FuzzVerifyParse(f *testing.F) {
	seeds := [][]byte{
		[]byte(vectorA), []byte(vectorB), fixture(f, "uploaded.json"), fixture(f, "legacy.json"),
		nil, []byte("null"), []byte("[]"), []byte(`"x"`), []byte("{}"),
		[]byte(`{"noticeId":"a\r\nb","productId":"a.>","eventType":"*"}`),
		[]byte(`{"noticeId":12,"productId":"3","eventType":" 31 ","payload":"x"}`),
		[]byte(`{"notificationId":"n","payload":{"details":{"msgName":"\u0000"},"sid":{}}}`),
	}
	for _, s := range seeds {
		f.Add(s, signSHA256(testSecret, s))
	}
	f.Add([]byte(vectorA), vectorBSHA2)
	f.Add([]byte(vectorA), " "+strings.ToUpper(vectorASHA2)+"\t")
	f.Add([]byte(vectorA), "zz")

	v, err := NewVerifier([]string{"other", testSecret}, true)
	if err != nil {
		f.Fatalf("new verifier: %v", err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		// Any header value: no panic, and only the true digest verifies.
		want := signSHA256(testSecret, body)
		got := v.Verify(body, http.Header{HeaderSignatureV2: {sig}})
		if got == nil && !strings.EqualFold(strings.TrimSpace(sig), want) {
			t.Fatalf("signature %q verified, want only %s", sig, want)
		}
		_ = v.Verify(body, http.Header{HeaderSignature: {sig}})

		if err := v.Verify(body, http.Header{HeaderSignatureV2: {want}}); err != nil {
			t.Fatalf("valid signature: got %v, want nil", err)
		}
		n := Parse(body, at)
		isObject := json.Valid(body) && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{"))
		switch n.DeadLetterReason {
		case "":
			if n.ID == "" || headerValue(n.ID) != n.ID {
				t.Fatalf("routable notification with id %q, want a non-empty header-safe id", n.ID)
			}
		case DeadLetterNoID:
			if !isObject || n.ID != "" {
				t.Fatalf("no_id for object=%v id=%q", isObject, n.ID)
			}
		case DeadLetterNotJSON:
			if isObject {
				t.Fatalf("not_json for a valid JSON object %q", body)
			}
		default:
			t.Fatalf("unknown dead-letter reason %q", n.DeadLetterReason)
		}
		if !safeToken(n.ProductID) || !safeToken(n.EventType) {
			t.Fatalf("unsafe tokens %q %q", n.ProductID, n.EventType)
		}

		if key := n.Key(); key == "" || headerValue(key) != key ||
			(n.DeadLetterReason == "" && key != n.ID) ||
			(n.DeadLetterReason != "" && !strings.HasPrefix(key, "deadletter-")) {
			t.Fatalf("key %q for id %q dead %q, want the id or deadletter-<hash>", n.Key(), n.ID, n.DeadLetterReason)
		}
		for _, hv := range []string{n.EventName, n.SID, n.Cname} {
			if headerValue(hv) != hv {
				t.Fatalf("value %q is not header-safe", hv)
			}
		}
		if !bytes.Equal(n.Body, body) {
			t.Fatalf("body differs from the one received")
		}
	})
}
