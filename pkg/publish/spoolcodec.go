package publish

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Spool record format, version 1. Every spooled message is one bbolt value,
// keyed by an 8-byte big-endian sequence from NextSequence (bucket
// "messages"), so a cursor walks it oldest first; records that can never be
// published move, key and value unchanged, to bucket "dead". The value is:
//
//	byte     version (1)
//	int64    spooled-at time, Unix nanoseconds, big-endian
//	string   subject
//	string   id (the Nats-Msg-Id)
//	uvarint  number of header keys, then per key:
//	           string key, uvarint number of values, each value a string
//	bytes    data: the remaining bytes of the record, unframed
//
// where "string" is a uvarint byte length followed by the bytes. A reader
// rejects any other version, so a later format can be added beside this one.
const spoolRecordV1 = 1

// spoolRecord is one decoded spool value.
type spoolRecord struct {
	SpooledAt time.Time
	Msg       Message
}

var errBadRecord = errors.New("malformed spool record")

// encodeRecord appends the version 1 encoding of m, spooled at t, to dst.
func encodeRecord(dst []byte, m Message, t time.Time) []byte {
	dst = append(dst, spoolRecordV1)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano()))
	dst = appendString(dst, m.Subject)
	dst = appendString(dst, m.ID)
	dst = binary.AppendUvarint(dst, uint64(len(m.Header)))
	for k, vs := range m.Header {
		dst = appendString(dst, k)
		dst = binary.AppendUvarint(dst, uint64(len(vs)))
		for _, v := range vs {
			dst = appendString(dst, v)
		}
	}
	return append(dst, m.Data...)
}

// encodedSize is len(encodeRecord(nil, m, t)) without encoding.
func encodedSize(m Message) int {
	n := 1 + 8 + stringSize(m.Subject) + stringSize(m.ID) + uvarintSize(uint64(len(m.Header)))
	for k, vs := range m.Header {
		n += stringSize(k) + uvarintSize(uint64(len(vs)))
		for _, v := range vs {
			n += stringSize(v)
		}
	}
	return n + len(m.Data)
}

// decodeRecord decodes a spool value. The result does not alias b, which
// bbolt only guarantees for the life of a transaction.
func decodeRecord(b []byte) (spoolRecord, error) {
	var r spoolRecord
	if len(b) < 9 {
		return r, fmt.Errorf("decode spool record: %w: %d bytes", errBadRecord, len(b))
	}
	if b[0] != spoolRecordV1 {
		return r, fmt.Errorf("decode spool record: %w: version %d", errBadRecord, b[0])
	}
	r.SpooledAt = time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9])))
	d := decoder{b: b[9:]}
	r.Msg.Subject = d.string()
	r.Msg.ID = d.string()
	nkeys := d.uvarint()
	if d.err == nil && nkeys > 0 {
		if nkeys > uint64(len(d.b)) {
			return r, fmt.Errorf("decode spool record: %w: %d header keys", errBadRecord, nkeys)
		}
		r.Msg.Header = make(nats.Header, nkeys)
		for range nkeys {
			k := d.string()
			nv := d.uvarint()
			if d.err != nil || nv > uint64(len(d.b)) {
				return r, fmt.Errorf("decode spool record: %w: header %q", errBadRecord, k)
			}
			vs := make([]string, 0, nv)
			for range nv {
				vs = append(vs, d.string())
			}
			r.Msg.Header[k] = vs
		}
	}
	if d.err != nil {
		return r, fmt.Errorf("decode spool record: %w", d.err)
	}
	r.Msg.Data = append([]byte{}, d.b...)
	return r, nil
}

// decoder reads length-prefixed fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad length", errBadRecord)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: field of %d bytes, %d left", errBadRecord, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func stringSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
