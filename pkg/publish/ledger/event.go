package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Why a body is not applied to any record (the ignored results of Parse).
const (
	ignoreNotJSON      = "not_json"      // not a JSON object at all: counted as malformed
	ignoreOtherProduct = "other_product" // a product other than Cloud Recording
	ignoreNoSID        = "no_sid"        // Cloud Recording (or old format) without a sid
)

// Event is one Cloud Recording notification reduced to the facts a session
// record is merged from.
type Event struct {
	SID         string
	Cname       string
	UID         string
	Type        string // eventType in decimal, or "unknown"
	ServiceType int64  // -1 when absent
	Sequence    string // decimal; old bodies send it as a string
	TimeMs      int64  // sendts, else notifyMs, else eventMs, else the fallback
	Identity    string // "<type>:<12 hex>", what the event says, see identity

	ExitStatus    *int64 // 11
	LeaveCode     *int64 // 41
	Progress      *int64 // 33
	NewUID        string // 12
	StopCode      *int64 // 71
	ErrorCode     string // 1
	WarnCode      string // 2
	RecordingMode string // 3
	Files         []string
	// FilesTruncated is set when fileList held more than maxFiles names:
	// Files keeps the smallest maxFiles, like the record.
	FilesTruncated bool
	// BadFileList is set when fileList had a type or items that name no file.
	BadFileList bool
	// KnownType is false for an eventType Agora's table does not list.
	KnownType bool
}

// knownTypes are the Cloud Recording event types of NCS.md section 4.
var knownTypes = map[string]bool{
	"1": true, "2": true, "3": true, "4": true, "11": true, "12": true, "30": true, "31": true,
	"32": true, "33": true, "40": true, "41": true, "42": true, "43": true, "44": true, "45": true,
	"60": true, "61": true, "70": true, "71": true, "72": true, "73": true, "80": true, "81": true,
	"90": true, "100": true, "1001": true,
}

// fileEvents are the types whose fileList names files in storage; 3 and 4
// carry a fileList too, but of files still being written.
var fileEvents = map[string]bool{"31": true, "32": true, "71": true, "1001": true}

type wireBody struct {
	ProductID json.RawMessage `json:"productId"`
	EventType json.RawMessage `json:"eventType"`
	NotifyMs  json.RawMessage `json:"notifyMs"`
	EventMs   json.RawMessage `json:"eventMs"`
	SID       json.RawMessage `json:"sid"`
	Payload   *wirePayload    `json:"payload"`
}

type wirePayload struct {
	Cname       json.RawMessage `json:"cname"`
	UID         json.RawMessage `json:"uid"`
	SID         json.RawMessage `json:"sid"`
	Sequence    json.RawMessage `json:"sequence"`
	Sendts      json.RawMessage `json:"sendts"`
	ServiceType json.RawMessage `json:"serviceType"`
	Details     json.RawMessage `json:"details"`
}

// Parse reads a notification body. It returns the event and "" for a
// Cloud Recording notification of a session: productId 3, or no productId
// but a payload.sid (the pre-2021 format). Otherwise it returns why the
// body is ignored. fallbackMs (the stream's timestamp) stands in for a
// body with no time of its own. Parse never fails on loose types.
func Parse(body []byte, fallbackMs int64) (Event, string) {
	var w wireBody
	if err := json.Unmarshal(body, &w); err != nil {
		return Event{}, ignoreNotJSON
	}
	if len(w.ProductID) > 0 && string(w.ProductID) != "null" {
		if p, ok := num(w.ProductID); !ok || p != 3 {
			return Event{}, ignoreOtherProduct
		}
	}
	if w.Payload == nil {
		return Event{}, ignoreNoSID
	}
	p := w.Payload
	e := Event{SID: str(p.SID), ServiceType: -1, Type: "unknown"}
	if e.SID == "" && len(w.ProductID) > 0 {
		e.SID = str(w.SID) // the top-level sid some bodies carry
	}
	if e.SID == "" {
		return Event{}, ignoreNoSID
	}
	if t, ok := num(w.EventType); ok {
		e.Type = strconv.FormatInt(t, 10)
	}
	e.KnownType = knownTypes[e.Type]
	e.Cname, e.UID, e.Sequence = str(p.Cname), str(p.UID), str(p.Sequence)
	if st, ok := num(p.ServiceType); ok {
		e.ServiceType = st
	}
	e.TimeMs = firstTime(fallbackMs, p.Sendts, w.NotifyMs, w.EventMs)
	details := canonical(p.Details)
	e.Identity = identity(e, details)
	e.readDetails(p.Details)
	return e, ""
}

// identity is what recognises one event among resends (a new notifyMs) and
// redundant copies (perhaps a new noticeId): its type, service, uid,
// sequence and details, never its noticeId nor its send times. The type
// leads so that counts per type can be read from the set of identities.
func identity(e Event, details []byte) string {
	h := sha256.New()
	h.Write([]byte(e.Type + "\x00" + strconv.FormatInt(e.ServiceType, 10) + "\x00" + e.UID + "\x00" + e.Sequence + "\x00"))
	h.Write(details)
	var sum [sha256.Size]byte
	return e.Type + ":" + hex.EncodeToString(h.Sum(sum[:0])[:6])
}

// canonical re-encodes a JSON value with sorted object keys and numbers as
// written, so two copies that differ only in key order are one event.
func canonical(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

type wireDetails struct {
	ExitStatus    json.RawMessage `json:"exitStatus"`
	LeaveCode     json.RawMessage `json:"leaveCode"`
	Progress      json.RawMessage `json:"progress"`
	NewUID        json.RawMessage `json:"newUid"`
	Code          json.RawMessage `json:"code"`
	ErrorCode     json.RawMessage `json:"errorCode"`
	WarnCode      json.RawMessage `json:"warnCode"`
	RecordingMode json.RawMessage `json:"recordingMode"`
	FileList      json.RawMessage `json:"fileList"`
}

// readDetails takes the facts of the event's type from its details.
func (e *Event) readDetails(raw json.RawMessage) {
	var d wireDetails
	if len(raw) == 0 || json.Unmarshal(raw, &d) != nil {
		return
	}
	switch e.Type {
	case "1":
		e.ErrorCode = str(d.ErrorCode)
	case "2":
		e.WarnCode = str(d.WarnCode)
	case "3":
		e.RecordingMode = str(d.RecordingMode)
	case "11":
		e.ExitStatus = numPtr(d.ExitStatus)
	case "12":
		e.NewUID = str(d.NewUID)
	case "33":
		e.Progress = numPtr(d.Progress)
	case "41":
		e.LeaveCode = numPtr(d.LeaveCode)
	case "71":
		e.StopCode = numPtr(d.Code)
	}
	if fileEvents[e.Type] && len(d.FileList) > 0 && string(d.FileList) != "null" {
		e.Files, e.BadFileList = fileNames(d.FileList)
		if len(e.Files) > maxFiles {
			e.Files, e.FilesTruncated = e.Files[:maxFiles], true
		}
	}
}

// fileNames reads a fileList: an array of objects naming fileName (or
// filename), an array of strings, or a string of names separated by
// commas, semicolons or spaces. It returns the names sorted without
// repeats, and whether anything in it named no file.
func fileNames(raw json.RawMessage) ([]string, bool) {
	var names []string
	bad := false
	var s string
	var items []json.RawMessage
	switch {
	case json.Unmarshal(raw, &s) == nil:
		names = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' })
	case json.Unmarshal(raw, &items) == nil:
		for _, it := range items {
			var o struct {
				FileName json.RawMessage `json:"fileName"`
				Filename json.RawMessage `json:"filename"`
			}
			var name string
			switch {
			case json.Unmarshal(it, &name) == nil:
			case json.Unmarshal(it, &o) == nil:
				name = str(o.FileName)
				if name == "" {
					name = str(o.Filename)
				}
			}
			if name == "" {
				bad = true
				continue
			}
			names = append(names, name)
		}
	default:
		bad = true
	}
	slices.Sort(names)
	return slices.Compact(names), bad
}

// num reads an integer sent as a JSON number or as a string holding one.
func num(raw json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false
	}
	if s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) {
		return 0, false
	}
	return int64(f), true
}

func numPtr(raw json.RawMessage) *int64 {
	if n, ok := num(raw); ok {
		return &n
	}
	return nil
}

// str reads a string, or a number as its decimal text (uids, sequences and
// codes come both ways); "" for anything else.
func str(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return ""
	}
	if s[0] == '"' {
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return ""
		}
		return v
	}
	if n, ok := num(raw); ok && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') {
		return strconv.FormatInt(n, 10)
	}
	return ""
}

// firstTime is the first of the times that is a positive number of ms,
// else fallback.
func firstTime(fallback int64, raws ...json.RawMessage) int64 {
	for _, r := range raws {
		if n, ok := num(r); ok && n > 0 {
			return n
		}
	}
	return fallback
}
