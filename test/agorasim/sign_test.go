package main

import (
	"testing"

	"github.com/ncs-gateway/ncs-gateway/pkg/webhook"
)

// Test vectors of agora/NCS.md section 2 (secret "secret").
const (
	vectorSecret = "secret"
	vectorBodyA  = `{"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}`
	vectorBodyB  = `{"eventMs":1560408533119,"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}`
)

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name, body, sha256, sha1 string
	}{
		{"A", vectorBodyA, "de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24", "5a3bb6a6d9fad2ea9ae3fb707a14c9d7f3136df1"},
		{"B", vectorBodyB, "6d3320c60b11101395b7fc8f9068748808a0aa1bfa064438e39d1bc2c7d74d99", "033c62f40f687675f17f0f41f91a40c71c0f134c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := signSHA256(vectorSecret, []byte(tt.body)); got != tt.sha256 {
				t.Errorf("signSHA256 = %s, want %s", got, tt.sha256)
			}
			if got := signSHA1(vectorSecret, []byte(tt.body)); got != tt.sha1 {
				t.Errorf("signSHA1 = %s, want %s", got, tt.sha1)
			}
		})
	}
}

// TestSignWrongPairing checks the trap NCS.md warns about: Agora's own
// samples pair body A with B's digests.
func TestSignWrongPairing(t *testing.T) {
	const sha256B = "6d3320c60b11101395b7fc8f9068748808a0aa1bfa064438e39d1bc2c7d74d99"
	if got := signSHA256(vectorSecret, []byte(vectorBodyA)); got == sha256B {
		t.Errorf("body A signed to B's digest %s", got)
	}
}

// TestSignatureHeadersVerify checks the headers against the gateway's own
// verifier, so the simulator and the gateway agree on the wire.
func TestSignatureHeadersVerify(t *testing.T) {
	body := []byte(vectorBodyA)
	tests := []struct {
		name       string
		withSHA1   bool
		acceptSHA1 bool
		dropV2     bool
		wantV1     bool
	}{
		{name: "v2 only", wantV1: false},
		{name: "v2 and sha1", withSHA1: true, wantV1: true},
		{name: "sha1 alone", withSHA1: true, acceptSHA1: true, dropV2: true, wantV1: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := signatureHeaders(vectorSecret, body, tt.withSHA1)
			if got := h.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := h.Get(headerSignature) != ""; got != tt.wantV1 {
				t.Errorf("Agora-Signature present = %v, want %v", got, tt.wantV1)
			}
			if tt.dropV2 {
				h.Del(headerSignatureV2)
			}
			v, err := webhook.NewVerifier([]string{vectorSecret}, tt.acceptSHA1)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(body, h); err != nil {
				t.Errorf("gateway verifier: got %v, want nil", err)
			}
			other, err := webhook.NewVerifier([]string{"other"}, tt.acceptSHA1)
			if err != nil {
				t.Fatal(err)
			}
			if err := other.Verify(body, h); err == nil {
				t.Error("verifier with another secret: got nil, want an error")
			}
		})
	}
}
