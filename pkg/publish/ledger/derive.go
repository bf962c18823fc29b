package ledger

import (
	"encoding/json"
	"slices"
	"time"
)

// Derived is one notification the ledger publishes about a session.
type Derived struct {
	Subject string // <prefix>.session.completed or <prefix>.session.flagged
	MsgID   string // Nats-Msg-Id: what it is about, so any copy is dropped
	Flag    string // the reason of a flagged one; "" for completed
	Outcome string // the outcome of a completed one
	Body    []byte
}

// Transitions returns what after says that before did not: completed
// once it became final, flagged once per new flag. before is nil for a
// session not yet stored. Being computed from two stored records, not
// from the events at hand, a replay of old events derives nothing.
func Transitions(before, after *Record, prefix, key string) []Derived {
	if before == nil {
		before = &Record{}
	}
	var out []Derived
	if after.Completed && !before.Completed {
		out = append(out, Derived{
			Subject: prefix + ".session.completed",
			MsgID:   "session.completed." + key,
			Outcome: after.Outcome,
			Body:    derivedBody(after, ""),
		})
	}
	for _, f := range AllFlags {
		if after.HasFlag(f) && !before.HasFlag(f) {
			out = append(out, Derived{
				Subject: prefix + ".session.flagged",
				MsgID:   "session.flagged." + f + "." + key,
				Flag:    f,
				Body:    derivedBody(after, f),
			})
		}
	}
	return out
}

// derivedBody is the record object with flag (for a flagged one) and next.
func derivedBody(r *Record, flag string) []byte {
	b := r.Marshal()
	extra := struct {
		Flag string `json:"flag,omitempty"`
		Next string `json:"next"`
	}{flag, next(r)}
	e, _ := json.Marshal(extra)
	out := make([]byte, 0, len(b)+len(e))
	out = append(out, b[:len(b)-1]...)
	out = append(out, ',')
	return append(out, e[1:]...)
}

// next tells a consumer what to do: while the session may still run, its
// REST query answers; once it has exited, query answers 404 and the files
// are only in the storage bucket.
func next(r *Record) string {
	if !r.Exited() {
		return "the session may still run: call the Cloud Recording REST query for this sid"
	}
	if r.Uploaded() && !r.FilesTruncated {
		return "files are listed here; they are in your storage under the recording's prefix, named after sid and cname"
	}
	return "list your storage under the recording's prefix for files named after sid and cname: the notifications did not name them all"
}

// Due says when the time facts of a record fall due, in unix ms; 0 when
// the fact cannot arise (any more).
type Due struct {
	InferExit int64 // upload notice, no exit: counts as a normal exit
	NoUpload  int64 // exited, no upload notice
	Silent    int64 // not exited, nothing heard
}

// DueTimes computes when r's time facts fall due, from the notifications'
// own times.
func DueTimes(r *Record, grace, stall time.Duration) Due {
	var d Due
	if !r.Exited() {
		if r.Uploaded() {
			d.InferExit = r.UploadMs + grace.Milliseconds()
		}
		if !r.HasFlag(FlagSilent) && r.LastSeenMs > 0 {
			d.Silent = r.LastSeenMs + stall.Milliseconds()
		}
	} else if !r.Uploaded() && !r.HasFlag(FlagNoUpload) {
		d.NoUpload = r.ExitMs + grace.Milliseconds()
	}
	return d
}

// Next is the earliest due time, 0 when none.
func (d Due) Next() int64 {
	return minPositive(minPositive(d.InferExit, d.NoUpload), d.Silent)
}

// RaiseDue adds to r the time facts due at nowMs and reports whether any
// was added. An inferred exit goes first: it makes a silent flag moot.
// The facts are merged facts like any other (exit_by "inferred", flags),
// so records stay a merge.
func RaiseDue(r *Record, nowMs int64, grace, stall time.Duration) bool {
	changed := false
	if d := DueTimes(r, grace, stall); d.InferExit > 0 && nowMs >= d.InferExit {
		r.ExitBy = union(r.ExitBy, exitInferred)
		changed = true
	}
	d := DueTimes(r, grace, stall)
	if d.Silent > 0 && nowMs >= d.Silent {
		r.Flags = union(r.Flags, FlagSilent)
		changed = true
	}
	if d.NoUpload > 0 && nowMs >= d.NoUpload {
		r.Flags = union(r.Flags, FlagNoUpload)
		changed = true
	}
	if changed {
		slices.Sort(r.Flags)
		r.compute()
	}
	return changed
}
