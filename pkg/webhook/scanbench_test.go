package webhook

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// corpusBodies reads testdata/corpus.jsonl: 64 bodies of the load tool's
// corpus (test/load, newCorpus(1024, 200:8192, seed 1), templates 0 to 63
// with their noticeIds written in), one per line. 299 to 7621 bytes,
// median 883, mean 2027: realistic Cloud Recording notifications, most of
// their bytes in file lists.
func corpusBodies(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "corpus.jsonl"))
	if err != nil {
		t.Fatalf("open corpus: %v", err)
	}
	defer f.Close()
	var bodies [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		bodies = append(bodies, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil || len(bodies) == 0 {
		t.Fatalf("read corpus: %d bodies, error %v", len(bodies), err)
	}
	return bodies
}

// jsonScan is the envelope read with encoding/json alone: one Unmarshal,
// which validates the whole body before it decodes (encoding/json's
// checkValid pass), into the reference struct.
func jsonScan(body []byte) (envelopeFields, bool) {
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return envelopeFields{}, false
	}
	var env referenceEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return envelopeFields{}, false
		}
	}
	return envelopeFields{
		noticeID: string(env.NoticeID), notificationID: string(env.NotificationID),
		productID: string(env.ProductID), eventType: string(env.EventType), sid: string(env.SID),
		notifyMs:     string(env.NotifyMs),
		payloadCname: string(env.Payload.Cname), payloadSID: string(env.Payload.SID),
		msgName: string(env.Payload.Details.MsgName),
	}, true
}

// jsontextScanner reads the envelope with jsontext, a single-pass
// validating tokenizer: encoding/json's rules (duplicate names and invalid
// UTF-8 accepted) and the scanner's job, for the comparison.
type jsontextScanner struct {
	dec   *jsontext.Decoder
	buf   bytes.Buffer
	found [nFields]string
	key   []byte
}

func newJSONTextScanner() *jsontextScanner {
	j := &jsontextScanner{}
	j.dec = jsontext.NewDecoder(&j.buf)
	return j
}

func (j *jsontextScanner) scan(body []byte) (envelopeFields, bool) {
	// A *bytes.Buffer is parsed in place, without a copy.
	j.buf.Reset()
	j.buf.Write(body)
	j.dec.Reset(&j.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	j.found = [nFields]string{}
	if j.dec.PeekKind() != '{' || !j.object(topLevel) {
		return envelopeFields{}, false
	}
	if _, err := j.dec.ReadToken(); err != io.EOF {
		return envelopeFields{}, false // a second value or trailing bytes
	}
	f := j.found
	return envelopeFields{
		noticeID: f[fNoticeID], notificationID: f[fNotificationID], productID: f[fProductID],
		eventType: f[fEventType], sid: f[fSID], notifyMs: f[fNotifyMs],
		payloadCname: f[fPayloadCname], payloadSID: f[fPayloadSID], msgName: f[fMsgName],
	}, true
}

func (j *jsontextScanner) object(level fieldSet) bool {
	if _, err := j.dec.ReadToken(); err != nil { // '{'
		return false
	}
	for j.dec.PeekKind() != '}' {
		k, err := j.dec.ReadValue()
		if err != nil {
			return false
		}
		key := []byte(k[1 : len(k)-1])
		if bytes.IndexByte(k, '\\') >= 0 {
			j.key, _ = jsontext.AppendUnquote(j.key[:0], k)
			key = j.key
		}
		dst, nested := fieldOf(level, key)
		switch {
		case nested != ignored && j.dec.PeekKind() == '{':
			if !j.object(nested) {
				return false
			}
		case dst >= 0:
			v, err := j.dec.ReadValue()
			if err != nil {
				return false
			}
			switch v.Kind() {
			case '"':
				s, _ := jsontext.AppendUnquote(nil, v) // invalid UTF-8 comes back replaced, as encoding/json does
				j.found[dst] = string(s)
			case '0':
				j.found[dst] = string(v)
			}
		default:
			if j.dec.SkipValue() != nil {
				return false
			}
		}
	}
	_, err := j.dec.ReadToken() // '}'
	return err == nil
}

// TestEnvelopeContendersAgree: the three implementations benchmarked below
// do the same job (validity verdict and fields) on the corpus and the
// scanner's edge cases, so the figures compare like with like.
func TestEnvelopeContendersAgree(t *testing.T) {
	inputs := corpusBodies(t)
	for _, c := range scanCases {
		inputs = append(inputs, []byte(c))
	}
	jt := newJSONTextScanner()
	for _, body := range inputs {
		want, wantOK := referenceScan(body)
		if got, ok := scanEnvelope(body); got != want || ok != wantOK {
			t.Errorf("scanEnvelope %.60q: got %+v ok=%v, want %+v ok=%v", body, got, ok, want, wantOK)
		}
		if got, ok := jsonScan(body); got != want || ok != wantOK {
			t.Errorf("jsonScan %.60q: got %+v ok=%v, want %+v ok=%v", body, got, ok, want, wantOK)
		}
		if got, ok := jt.scan(body); got != want || ok != wantOK {
			t.Errorf("jsontext %.60q: got %+v ok=%v, want %+v ok=%v", body, got, ok, want, wantOK)
		}
	}
}

// BenchmarkEnvelope compares, on the corpus, the hand-written scanner with
// encoding/json and with jsontext: each validates the whole body and reads
// the routing fields. Sub-benchmarks by body size; ns/op is per body.
func BenchmarkEnvelope(b *testing.B) {
	all := corpusBodies(b)
	groups := []struct {
		name   string
		lo, hi int
	}{{"all", 0, 1 << 30}, {"small-under-1KiB", 0, 1024}, {"medium-1-4KiB", 1024, 4096}, {"large-over-4KiB", 4096, 1 << 30}}
	jt := newJSONTextScanner()
	impls := []struct {
		name string
		scan func([]byte) (envelopeFields, bool)
	}{
		{"scanner", scanEnvelope},
		{"encoding-json", jsonScan},
		{"jsontext", jt.scan},
	}
	for _, g := range groups {
		var bodies [][]byte
		var total int64
		for _, body := range all {
			if len(body) >= g.lo && len(body) < g.hi {
				bodies = append(bodies, body)
				total += int64(len(body))
			}
		}
		for _, impl := range impls {
			b.Run(g.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(total / int64(len(bodies)))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if f, ok := impl.scan(bodies[i%len(bodies)]); !ok || f.noticeID == "" {
						b.Fatal("no notice id")
					}
					i++
				}
			})
		}
	}
}
