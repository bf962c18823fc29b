package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// kind is how a simulated session's life goes: the flows a session ledger
// must get right (agora/NCS.md section 5).
type kind string

// The session kinds -kinds selects from.
const (
	kindNormal     kind = "normal"     // composite recording, every event, 31 then 11 exitStatus 0
	kindAbnormal   kind = "abnormal"   // 11 with exitStatus 1, its files only backed up (32)
	kindFailover   kind = "failover"   // 12 with newUid, the recorder rejoins, bak1_ files
	kindLost31     kind = "lost31"     // every event but the upload notice 31
	kindLost11     kind = "lost11"     // every event but session_exit 11
	kindSilent     kind = "silent"     // stops sending while recording, before any end event
	kindWeb        kind = "web"        // web page recording: 70, 71 code 0 with fileList, 31 without
	kindWebFail    kind = "webfail"    // web page recording stopped abnormally: 71 with code 1
	kindIndividual kind = "individual" // individual recording: files of several uids
	kindError      kind = "error"      // a normal session with a cloud_recording_error (1)
	kindOld        kind = "old"        // a normal session in the pre-2021 body format
)

// allKinds lists every kind in the order "all" plays them.
var allKinds = []kind{kindNormal, kindAbnormal, kindFailover, kindLost31, kindLost11, kindSilent,
	kindWeb, kindWebFail, kindIndividual, kindError, kindOld}

// defaultKinds is -kinds' default: mostly healthy sessions, as in
// production, with one of each trouble a ledger flags, so that a default
// run of 3 sessions shows a good one, a failover and an abnormal exit.
const defaultKinds = "normal,failover,abnormal,web,normal,individual,lost31,lost11,silent,error,webfail,old"

// parseKinds reads a comma-separated list of kinds; "all" stands for every
// kind once. Sessions take the kinds in turn, so the list is a mix.
func parseKinds(s string) ([]kind, error) {
	var out []kind
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "all":
			out = append(out, allKinds...)
		case slices.Contains(allKinds, kind(f)):
			out = append(out, kind(f))
		default:
			return nil, fmt.Errorf("-kinds: unknown kind %q: want a comma-separated list of %s, or all", f, kindNames())
		}
	}
	return out, nil
}

// Due conditions of a derived notification or flag, relative to the
// ledger's settings.
const (
	dueNow         = "now"                // as soon as the session's events are in
	dueUploadGrace = "after upload_grace" // ledger.upload_grace after the last notice
	dueStallAfter  = "after stall_after"  // ledger.stall_after after the last notice
	dueNever       = "never"
)

// expectation is what a session ledger should conclude about one session
// once every notification of it arrived (in any order, with duplicates)
// and the due times passed. Flags and completed carry when they are due.
type expectation struct {
	Session   int               `json:"session"`
	Kind      kind              `json:"kind"`
	SID       string            `json:"sid"`
	Cname     string            `json:"cname"`
	UIDs      []string          `json:"uids"`      // the recorder's uids, newUid included
	State     string            `json:"state"`     // recording or exited, once every due time passed
	Outcome   string            `json:"outcome"`   // "", ok or failed
	Files     []string          `json:"files"`     // from 31/32 and 71, sorted
	Flags     map[string]string `json:"flags"`     // reason to when it is due
	Completed string            `json:"completed"` // when the one session.completed is due, or never
	Failovers int               `json:"failovers"`
}

// expect says what the ledger should make of s. It is written from the
// issue's rules, independently of the events' builder, so a test can hold
// one against the other.
func (s session) expect() expectation {
	e := expectation{Session: s.index, Kind: s.kind, SID: s.sid, Cname: s.cname, UIDs: []string{s.uid},
		State: "exited", Outcome: "ok", Files: []string{}, Flags: map[string]string{}, Completed: dueNow}
	composite := []string{s.mp4(""), s.playlist("")}
	switch s.kind {
	case kindNormal, kindError, kindOld:
		e.Files = composite
		if s.kind == kindError {
			e.Flags["error"] = dueNow
		}
	case kindAbnormal:
		e.Files, e.Outcome = composite, "failed"
		e.Flags["abnormal_exit"] = dueNow
	case kindFailover:
		e.UIDs = append(e.UIDs, s.newUID)
		e.Files = append(composite, s.mp4("bak1_"), s.playlist("bak1_"))
		e.Failovers = 1
	case kindLost31:
		// Exited, but the file list never came: completed once the grace
		// passed, with the flag no_upload.
		e.Completed = dueUploadGrace
		e.Flags["no_upload"] = dueUploadGrace
	case kindLost11:
		// A 31 with no 11 within upload_grace counts as a normal exit.
		e.Files, e.Completed = composite, dueUploadGrace
	case kindSilent:
		e.State, e.Outcome, e.Completed = "recording", "", dueNever
		e.Flags["silent"] = dueStallAfter
	case kindWeb:
		e.Files = composite
	case kindWebFail:
		e.Files, e.Outcome = []string{s.mp4("")}, "failed"
		e.Flags["abnormal_exit"] = dueNow
	case kindIndividual:
		for _, uid := range s.streams {
			e.Files = append(e.Files, s.individual(uid, ".m3u8"), s.individual(uid, "_0.mp4"))
		}
	}
	slices.Sort(e.Files)
	return e
}

// String is the summary line of one expectation.
func (e expectation) String() string {
	var flags []string
	for _, r := range []string{"abnormal_exit", "error", "no_upload", "silent"} {
		if due, ok := e.Flags[r]; ok {
			flags = append(flags, r+"("+due+")")
		}
	}
	completed := "0"
	if e.Completed != dueNever {
		completed = "1 (" + e.Completed + ")"
	}
	return fmt.Sprintf("expect s%d sid=%s kind=%s state=%s outcome=%q flags=[%s] completed=%s uids=%s files=%d failovers=%d",
		e.Session, e.SID, e.Kind, e.State, e.Outcome, strings.Join(flags, " "), completed,
		strings.Join(e.UIDs, ","), len(e.Files), e.Failovers)
}

// writeExpectations prints one line per session, then the totals a
// consumer of <prefix>.session.> should count.
func writeExpectations(w io.Writer, es []expectation) {
	completed, later, flagged := 0, 0, map[string]int{}
	for _, e := range es {
		fmt.Fprintln(w, e)
		switch e.Completed {
		case dueNow:
			completed++
		case dueNever:
		default:
			later++
		}
		for r := range e.Flags {
			flagged[r]++
		}
	}
	fmt.Fprintf(w, "expect: %d session.completed now, %d more after their due time; session.flagged abnormal_exit=%d error=%d no_upload=%d silent=%d\n",
		completed, later, flagged["abnormal_exit"], flagged["error"], flagged["no_upload"], flagged["silent"])
}

// saveExpectations writes es as a JSON array to path, for tests that hold
// the ledger's records against them.
func saveExpectations(path string, es []expectation) error {
	b, err := json.MarshalIndent(es, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal expectations: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write expectations: %w", err)
	}
	return nil
}
