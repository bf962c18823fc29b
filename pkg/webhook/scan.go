package webhook

import (
	"encoding/json"
	"unicode/utf8"
)

// maxNestingDepth matches encoding/json's limit, so that the scanner accepts
// exactly the documents json.Valid accepts.
const maxNestingDepth = 10000

// envelopeFields are the raw routing fields of a notification: a string's
// contents or a number's literal text, as encoding/json would decode them
// into a string (escapes resolved, invalid UTF-8 replaced).
type envelopeFields struct {
	noticeID, notificationID, productID, eventType, sid, notifyMs string
	payloadCname, payloadSID, msgName                             string
}

// fieldSet names the keys read at one level of the envelope.
type fieldSet int

const (
	ignored  fieldSet = iota - 1 // an object nobody reads: validated only
	topLevel                     // the notification itself
	payloadLevel
	detailsLevel
)

// scanEnvelope reads the routing fields of body in a single pass that also
// validates the whole document with JSON's full grammar. It reports false
// when body is not one JSON object (possibly surrounded by whitespace).
//
// It replaces json.Unmarshal into a struct, which walks the body twice (a
// validation pass, then the decode) and was the largest cost of a request:
// notifications carry kilobytes of payload (file lists) around a handful of
// fields. BenchmarkEnvelope keeps it honest on the load tool's bodies: it
// is 7-9x faster than encoding/json and 1.3-2x faster than jsontext (a
// single-pass validating tokenizer doing the same job), with one
// allocation against their 24 and 10. Semantics match encoding/json's for these fields except that keys
// match exactly (encoding/json also accepts case-folded keys such as
// "NOTICEID", which Agora never sends); FuzzScanEnvelope holds the two
// implementations to that.
func scanEnvelope(body []byte) (envelopeFields, bool) {
	s := scanner{b: body}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return envelopeFields{}, false
	}
	if !s.object(topLevel, 1) {
		return envelopeFields{}, false
	}
	s.ws()
	if s.i != len(s.b) {
		return envelopeFields{}, false
	}
	return s.fields(), true
}

// scanner walks a JSON document; every method returns false on a syntax
// error, leaving i wherever it stopped. It notes where the routing fields
// lie and copies them out once, at the end, into one string.
type scanner struct {
	b     []byte
	i     int
	found [nFields]span
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// object reads an object starting at '{', noting the fields of level
// (none for the ignored level).
func (s *scanner) object(level fieldSet, depth int) bool {
	if depth > maxNestingDepth {
		return false
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		start := s.i
		escaped, ok := s.str()
		if !ok {
			return false
		}
		key := s.b[start+1 : s.i-1]
		if escaped {
			var k string
			if json.Unmarshal(s.b[start:s.i], &k) != nil {
				return false
			}
			key = []byte(k)
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !s.field(level, key, depth) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// field reads the value of key at level: into f when it is a field we
// route on, skipping it (with validation) otherwise.
func (s *scanner) field(level fieldSet, key []byte, depth int) bool {
	dst, nested := fieldOf(level, key)
	if nested != ignored && s.i < len(s.b) && s.b[s.i] == '{' {
		// A payload or details that is not an object is skipped, as
		// encoding/json skips a value of the wrong type.
		return s.object(nested, depth+1)
	}
	if dst < 0 {
		return s.value(depth)
	}
	return s.scalar(&s.found[dst], depth)
}

// scalar reads a value into dst when it is a string or a number; other
// values are validated and leave dst as it was (as encoding/json leaves a
// field alone for null, and skips one of the wrong type).
func (s *scanner) scalar(dst *span, depth int) bool {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '"' {
		escaped, ok := s.str()
		if !ok {
			return false
		}
		if !escaped && utf8.Valid(s.b[start+1:s.i-1]) {
			*dst = span{lo: start + 1, hi: s.i - 1, set: true}
			return true
		}
		// Escapes and invalid UTF-8: let encoding/json decode the literal.
		var v string
		if json.Unmarshal(s.b[start:s.i], &v) != nil {
			return false
		}
		*dst = span{set: true, decoded: true, text: v}
		return true
	}
	if !s.value(depth) {
		return false
	}
	if c := s.b[start]; c == '-' || ('0' <= c && c <= '9') {
		*dst = span{lo: start, hi: s.i, set: true}
	}
	return true
}

// value validates and skips any JSON value.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(ignored, depth+1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *scanner) array(depth int) bool {
	if depth > maxNestingDepth {
		return false
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		s.ws()
		if !s.value(depth) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// strPlain marks the bytes a string's scan can run over: all but the
// quote, the backslash and control characters.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = false, false
	return t
}()

// str skips a string starting at '"' and reports whether it held escapes.
func (s *scanner) str() (escaped, ok bool) {
	s.i++ // opening quote
	for s.i < len(s.b) {
		// Run over plain bytes in a tight loop: strings are most of a
		// notification (file names).
		i, b := s.i, s.b
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		s.i = i
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i++
			return escaped, true
		case c < 0x20:
			return escaped, false
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.b) {
				return escaped, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return escaped, false
					}
					s.i++
				}
			default:
				return escaped, false
			}
		default:
			s.i++
		}
	}
	return escaped, false
}

// number skips a number with JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits skips one or more decimal digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
