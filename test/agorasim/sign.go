package main

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Agora's legacy Agora-Signature header is HMAC-SHA1.
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
)

// The signature headers Agora sets on every notification (agora/NCS.md section 2).
const (
	headerSignatureV2 = "Agora-Signature-V2"
	headerSignature   = "Agora-Signature"
)

// signSHA256 returns the Agora-Signature-V2 value for body: the lowercase
// hex HMAC-SHA256 keyed with the secret's bytes as typed.
func signSHA256(secret string, body []byte) string {
	return sign(sha256.New, secret, body)
}

// signSHA1 returns the legacy Agora-Signature value for body: the lowercase
// hex HMAC-SHA1 keyed with the secret's bytes as typed.
func signSHA1(secret string, body []byte) string {
	return sign(sha1.New, secret, body)
}

// sign returns the lowercase hex HMAC of body under h, keyed with secret.
func sign(h func() hash.Hash, secret string, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// signatureHeaders returns the headers Agora sends with body: always
// Agora-Signature-V2, and Agora-Signature too when withSHA1 is set.
func signatureHeaders(secret string, body []byte, withSHA1 bool) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(headerSignatureV2, signSHA256(secret, body))
	if withSHA1 {
		h.Set(headerSignature, signSHA1(secret, body))
	}
	return h
}
