package ledger

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Key encodings: a sid that is a plain token is its own key; any other sid
// is keyEncoded followed by its base64url (no padding), which decodes back
// to the sid; a sid too long for that is keyHashed and the hex sha256 of
// the sid, one way (the record still carries the sid as sent). A plain
// token never holds '=', so the three forms never collide.
const (
	keyEncoded   = "="
	keyHashed    = "=="
	maxPlainKey  = 128
	maxEncodeSID = 512
)

// Key is the bucket key of sid and whether it had to be encoded.
func Key(sid string) (key string, encoded bool) {
	if plainToken(sid) {
		return sid, false
	}
	if len(sid) <= maxEncodeSID {
		return keyEncoded + base64.RawURLEncoding.EncodeToString([]byte(sid)), true
	}
	sum := sha256.Sum256([]byte(sid))
	return keyHashed + hex.EncodeToString(sum[:]), true
}

// SIDOfKey decodes a key made by Key; ok is false for a hashed key, whose
// sid only its record holds.
func SIDOfKey(key string) (sid string, ok bool) {
	switch {
	case strings.HasPrefix(key, keyHashed):
		return "", false
	case strings.HasPrefix(key, keyEncoded):
		b, err := base64.RawURLEncoding.DecodeString(key[len(keyEncoded):])
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	return key, true
}

// plainToken reports whether s is 1 to 128 of A-Z a-z 0-9 _ -: valid as a
// key and as a subject token, with none of '.', '/', '=' that separate
// key tokens or mark an encoding.
func plainToken(s string) bool {
	if s == "" || len(s) > maxPlainKey {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
