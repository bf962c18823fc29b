package ledger

import (
	"encoding/json"
	"slices"
	"strings"
)

// Session states and outcomes, the values of Record.State and Record.Outcome.
const (
	StateRecording = "recording"
	StateExited    = "exited"
	OutcomeOK      = "ok"
	OutcomeFailed  = "failed"
)

// Flags, the reasons of a session.flagged notification.
const (
	FlagAbnormalExit = "abnormal_exit"
	FlagError        = "error"
	FlagNoUpload     = "no_upload"
	FlagSilent       = "silent"
)

// AllFlags lists every flag, in the order metrics and summaries show them.
var AllFlags = []string{FlagAbnormalExit, FlagError, FlagNoUpload, FlagSilent}

// Bounds that keep a record small whatever a session sends.
const (
	maxFiles = 1000 // file names kept: the smallest in byte order
	maxSeen  = 4096 // event identities kept: the smallest
)

// exitInferred is the exit_by value of a session whose exit the ledger
// inferred from an upload notice with no exit notice within upload_grace.
const exitInferred = "inferred"

// Record is one session's entry in the bucket: merged facts, and what they
// mean (state, outcome, completed, late_upload, events) computed from them.
// doc.go documents every field. The JSON field order is fixed, so equal
// records encode to equal bytes.
type Record struct {
	V              int            `json:"v"`
	SID            string         `json:"sid"`
	Cname          string         `json:"cname"`
	State          string         `json:"state"`
	Outcome        string         `json:"outcome"`
	Completed      bool           `json:"completed"`
	Flags          []string       `json:"flags"`
	ExitBy         []string       `json:"exit_by"`
	ExitStatus     *int64         `json:"exit_status"`
	WebStopCode    *int64         `json:"web_stop_code"`
	LeaveCode      *int64         `json:"leave_code"`
	UploadNotices  []string       `json:"upload_notices"`
	UploadProgress *int64         `json:"upload_progress"`
	LateUpload     bool           `json:"late_upload"`
	Files          []string       `json:"files"`
	FilesTruncated bool           `json:"files_truncated"`
	UIDs           []string       `json:"uids"`
	FailoverUIDs   []string       `json:"failover_uids"`
	Failovers      int            `json:"failovers"`
	WebRecording   bool           `json:"web_recording"`
	RecordingModes []string       `json:"recording_modes"`
	ServiceTypes   []int64        `json:"service_types"`
	ErrorCodes     []string       `json:"error_codes"`
	WarningCodes   []string       `json:"warning_codes"`
	Events         map[string]int `json:"events"`
	FirstSeenMs    int64          `json:"first_seen_ms"`
	LastSeenMs     int64          `json:"last_seen_ms"`
	ExitMs         int64          `json:"exit_ms"`
	UploadMs       int64          `json:"upload_ms"`
	Seen           []string       `json:"seen"`
	SeenTruncated  bool           `json:"seen_truncated"`
}

// NewRecord is the empty record of sid.
func NewRecord(sid string) *Record {
	r := &Record{SID: sid}
	r.compute()
	return r
}

// Apply merges e into the record and recomputes what the record means. It
// reports whether e was a new event (its identity unseen). Every merge is a
// set union, a min or max or bitwise or, so any order of any events with
// any repeats gives the same record.
func (r *Record) Apply(e Event) bool {
	fresh := !slices.Contains(r.Seen, e.Identity)
	r.Seen, r.SeenTruncated = unionBounded(r.Seen, []string{e.Identity}, maxSeen, r.SeenTruncated)
	r.Cname = minNonEmpty(r.Cname, e.Cname)
	r.UIDs = union(r.UIDs, e.UID)
	if e.ServiceType >= 0 && !slices.Contains(r.ServiceTypes, e.ServiceType) {
		r.ServiceTypes = append(r.ServiceTypes, e.ServiceType)
		slices.Sort(r.ServiceTypes)
	}
	if e.TimeMs > 0 {
		r.FirstSeenMs = minPositive(r.FirstSeenMs, e.TimeMs)
		r.LastSeenMs = max(r.LastSeenMs, e.TimeMs)
	}
	switch e.Type {
	case "1":
		r.Flags = union(r.Flags, FlagError)
		r.ErrorCodes = union(r.ErrorCodes, e.ErrorCode)
	case "2":
		r.WarningCodes = union(r.WarningCodes, e.WarnCode)
	case "3":
		r.RecordingModes = union(r.RecordingModes, e.RecordingMode)
	case "11", "71":
		r.ExitBy = union(r.ExitBy, e.Type)
		r.ExitMs = minPositive(r.ExitMs, max(e.TimeMs, 1))
		if e.Type == "11" {
			r.ExitStatus = mergeCode(r.ExitStatus, e.ExitStatus)
		} else {
			r.WebStopCode = mergeCode(r.WebStopCode, e.StopCode)
		}
	case "12":
		r.FailoverUIDs = union(r.FailoverUIDs, e.NewUID)
		r.UIDs = union(r.UIDs, e.NewUID)
	case "31", "32":
		r.UploadNotices = union(r.UploadNotices, e.Type)
		r.UploadMs = minPositive(r.UploadMs, max(e.TimeMs, 1))
	case "33":
		if e.Progress != nil && (r.UploadProgress == nil || *e.Progress > *r.UploadProgress) {
			v := *e.Progress
			r.UploadProgress = &v
		}
	case "41":
		if e.LeaveCode != nil {
			v := *e.LeaveCode
			if r.LeaveCode != nil {
				v |= *r.LeaveCode
			}
			r.LeaveCode = &v
		}
	}
	if e.ServiceType == 6 || e.Type == "70" || e.Type == "71" || e.Type == "72" || e.Type == "73" {
		r.WebRecording = true
	}
	r.Files, r.FilesTruncated = unionBounded(r.Files, e.Files, maxFiles, r.FilesTruncated || e.FilesTruncated)
	r.compute()
	return fresh
}

// Merge merges every fact of o into r, as if r had applied o's events (and
// raised o's time facts); the ledger uses it to fold a record written by
// another writer.
func (r *Record) Merge(o *Record) {
	r.Cname = minNonEmpty(r.Cname, o.Cname)
	r.Flags = union(r.Flags, o.Flags...)
	r.ExitBy = union(r.ExitBy, o.ExitBy...)
	r.ExitStatus = mergeCode(r.ExitStatus, o.ExitStatus)
	r.WebStopCode = mergeCode(r.WebStopCode, o.WebStopCode)
	if o.LeaveCode != nil {
		v := *o.LeaveCode
		if r.LeaveCode != nil {
			v |= *r.LeaveCode
		}
		r.LeaveCode = &v
	}
	r.UploadNotices = union(r.UploadNotices, o.UploadNotices...)
	if o.UploadProgress != nil && (r.UploadProgress == nil || *o.UploadProgress > *r.UploadProgress) {
		v := *o.UploadProgress
		r.UploadProgress = &v
	}
	r.Files, r.FilesTruncated = unionBounded(r.Files, o.Files, maxFiles, r.FilesTruncated || o.FilesTruncated)
	r.UIDs = union(r.UIDs, o.UIDs...)
	r.FailoverUIDs = union(r.FailoverUIDs, o.FailoverUIDs...)
	r.WebRecording = r.WebRecording || o.WebRecording
	r.RecordingModes = union(r.RecordingModes, o.RecordingModes...)
	for _, st := range o.ServiceTypes {
		if !slices.Contains(r.ServiceTypes, st) {
			r.ServiceTypes = append(r.ServiceTypes, st)
		}
	}
	slices.Sort(r.ServiceTypes)
	r.ErrorCodes = union(r.ErrorCodes, o.ErrorCodes...)
	r.WarningCodes = union(r.WarningCodes, o.WarningCodes...)
	r.FirstSeenMs = minPositive(r.FirstSeenMs, o.FirstSeenMs)
	r.LastSeenMs = max(r.LastSeenMs, o.LastSeenMs)
	r.ExitMs = minPositive(r.ExitMs, o.ExitMs)
	r.UploadMs = minPositive(r.UploadMs, o.UploadMs)
	r.Seen, r.SeenTruncated = unionBounded(r.Seen, o.Seen, maxSeen, r.SeenTruncated || o.SeenTruncated)
	r.compute()
}

// compute derives what the facts mean. Every input only grows, so state,
// outcome, completed and flags only move forward, once.
func (r *Record) compute() {
	r.V = 1
	exited := len(r.ExitBy) > 0
	failed := code(r.ExitStatus) != 0 || code(r.WebStopCode) != 0
	uploaded := len(r.UploadNotices) > 0
	if failed {
		r.Flags = union(r.Flags, FlagAbnormalExit)
	}
	r.State, r.Outcome = StateRecording, ""
	if exited {
		r.State, r.Outcome = StateExited, OutcomeOK
		if failed {
			r.Outcome = OutcomeFailed
		}
	}
	noUpload := slices.Contains(r.Flags, FlagNoUpload)
	r.Completed = exited && (uploaded || failed || noUpload)
	r.LateUpload = uploaded && noUpload
	r.Failovers = len(r.FailoverUIDs)
	r.Events = map[string]int{}
	for _, id := range r.Seen {
		t, _, _ := strings.Cut(id, ":")
		r.Events[t]++
	}
	for _, p := range []*[]string{&r.Flags, &r.ExitBy, &r.UploadNotices, &r.Files, &r.UIDs, &r.FailoverUIDs, &r.RecordingModes, &r.ErrorCodes, &r.WarningCodes, &r.Seen} {
		if *p == nil {
			*p = []string{}
		}
	}
	if r.ServiceTypes == nil {
		r.ServiceTypes = []int64{}
	}
}

// Exited reports whether the session has exited.
func (r *Record) Exited() bool { return len(r.ExitBy) > 0 }

// Uploaded reports whether an upload notice (31 or 32) arrived.
func (r *Record) Uploaded() bool { return len(r.UploadNotices) > 0 }

// HasFlag reports whether the record carries flag.
func (r *Record) HasFlag(flag string) bool { return slices.Contains(r.Flags, flag) }

// Marshal encodes the record; equal records give equal bytes.
func (r *Record) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("ledger: marshal record: " + err.Error()) // only plain types: cannot happen
	}
	return b
}

// UnmarshalRecord decodes a stored record and recomputes what it means, so
// a record written by an older version reads the same as a fresh one.
func UnmarshalRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	slices.Sort(r.Flags)
	r.compute()
	return &r, nil
}

func code(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// mergeCode keeps a non-zero code over zero and the smallest of two
// non-zero codes: commutative, so the arrival order does not matter.
func mergeCode(a, b *int64) *int64 {
	switch {
	case b == nil:
		return a
	case a == nil, *a == 0 && *b != 0, *a != 0 && *b != 0 && *b < *a:
		v := *b
		return &v
	}
	return a
}

// union adds the non-empty values to the sorted set s.
func union(s []string, vs ...string) []string {
	for _, v := range vs {
		if v == "" {
			continue
		}
		if i, found := slices.BinarySearch(s, v); !found {
			s = slices.Insert(s, i, v)
		}
	}
	return s
}

// unionBounded is the union of two sorted sets keeping the n smallest
// values: the smallest n of a union are the same whatever the order of
// the merges, so a bound does not break order independence.
func unionBounded(s, add []string, n int, truncated bool) ([]string, bool) {
	if len(add) == 0 {
		return s, truncated
	}
	s = union(s, add...)
	if len(s) > n {
		s, truncated = s[:n:n], true
	}
	return s, truncated
}

func minPositive(a, b int64) int64 {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

func minNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return min(a, b)
}
