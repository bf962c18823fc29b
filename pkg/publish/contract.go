package publish

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The contract is what ncs-gateway needs of the stream it publishes to:
// it captures every subject under <prefix>, keeps every message it
// acknowledged for stream_max_age, remembers message ids for
// duplicate_window, and keeps stream_replicas copies. A stream the operator
// created beforehand (or changed later) may break it; the gateway never
// changes the stream, it reports the problem and, where publishing would
// lose notifications, holds them in the spool until the stream is fixed.

// Problems a stream can have, the label values of
// ncs_gateway_nats_stream_contract_problem.
const (
	problemSubjects        = "subjects"
	problemDuplicateWindow = "duplicate_window"
	problemReplicas        = "replicas"
	problemMaxAge          = "max_age"
	problemDiscardNew      = "discard_new"
	problemPerSubjectLimit = "max_msgs_per_subject"
	problemNotWritable     = "not_writable"
)

// contractProblems lists every problem name, so the metric has a series
// for each from the start.
var contractProblems = []string{
	problemSubjects, problemDuplicateWindow, problemReplicas, problemMaxAge,
	problemDiscardNew, problemPerSubjectLimit, problemNotWritable,
}

// StreamProblem is one way the stream breaks the contract.
type StreamProblem struct {
	// Problem is the short name, the metric's label value.
	Problem string `json:"problem"`
	// Hold is true when publishing would lose notifications: the gateway
	// then spools every notification instead of publishing it.
	Hold bool `json:"hold"`
	// Detail says what is wrong and how to fix it, in the operator's terms.
	Detail string `json:"detail"`
}

// String is the problem as -status and /readyz print it.
func (p StreamProblem) String() string {
	action := "publishing anyway"
	if p.Hold {
		action = "HOLDING notifications in the spool"
	}
	return fmt.Sprintf("%s (%s): %s", p.Problem, action, p.Detail)
}

// checkContract returns the problems of a stream with configuration sc for
// the publisher configuration c, in a fixed order; nil when it fits.
func checkContract(c Config, sc jetstream.StreamConfig) []StreamProblem {
	var out []StreamProblem
	add := func(name string, hold bool, format string, args ...any) {
		out = append(out, StreamProblem{Problem: name, Hold: hold, Detail: fmt.Sprintf(format, args...)})
	}
	want := c.SubjectPrefix + ".>"
	if !slices.ContainsFunc(sc.Subjects, func(s string) bool { return subjectCovers(s, want) }) {
		add(problemSubjects, true,
			"stream %s captures %s, not %s, so nothing published would be stored; add %s to the stream's subjects (nats stream edit %s --subjects ...) or set nats.stream/nats.subject_prefix to a stream that captures it",
			sc.Name, quoteList(sc.Subjects), want, want, sc.Name)
	}
	if sc.Sealed || sc.Mirror != nil || sc.NoAck {
		add(problemNotWritable, true,
			"stream %s is sealed, a mirror or does not acknowledge (no_ack), so it cannot take notifications; point nats.stream at a writable stream", sc.Name)
	}
	if sc.MaxAge > 0 && sc.MaxAge < c.StreamMaxAge {
		add(problemMaxAge, true,
			"stream %s keeps messages %s, nats.stream_max_age is %s, so notifications would expire before consumers could count on them; raise the stream's max age (nats stream edit %s --max-age %s) or lower nats.stream_max_age",
			sc.Name, sc.MaxAge, c.StreamMaxAge, sc.Name, c.StreamMaxAge)
	}
	if sc.Discard == jetstream.DiscardNew && (sc.MaxMsgs > 0 || sc.MaxBytes > 0 || sc.MaxMsgsPerSubject > 0) {
		add(problemDiscardNew, true,
			"stream %s discards new messages once full (max_msgs %d, max_bytes %d, max_msgs_per_subject %d), so notifications would be refused; use discard old (nats stream edit %s --discard old) or remove the limits",
			sc.Name, sc.MaxMsgs, sc.MaxBytes, sc.MaxMsgsPerSubject, sc.Name)
	} else if sc.MaxMsgsPerSubject > 0 {
		add(problemPerSubjectLimit, true,
			"stream %s keeps %d messages per subject, and every notification of one product and event type shares a subject, so unread notifications would be dropped; remove the limit (nats stream edit %s --max-msgs-per-subject -1)",
			sc.Name, sc.MaxMsgsPerSubject, sc.Name)
	}
	if sc.Duplicates < c.DuplicateWindow {
		add(problemDuplicateWindow, false,
			"stream %s remembers message ids for %s, nats.duplicate_window is %s, so a retry or replay later than %s is stored twice; raise the stream's window (nats stream edit %s --dupe-window %s) or lower nats.duplicate_window",
			sc.Name, sc.Duplicates, c.DuplicateWindow, sc.Duplicates, sc.Name, c.DuplicateWindow)
	}
	if sc.Replicas < c.StreamReplicas {
		add(problemReplicas, false,
			"stream %s has %d replicas, nats.stream_replicas is %d; scale it (nats stream edit %s --replicas %d) or set nats.stream_replicas to %d",
			sc.Name, max(sc.Replicas, 1), c.StreamReplicas, sc.Name, c.StreamReplicas, max(sc.Replicas, 1))
	}
	return out
}

// holds reports whether any of the problems makes the gateway hold
// notifications in the spool.
func holds(problems []StreamProblem) bool {
	return slices.ContainsFunc(problems, func(p StreamProblem) bool { return p.Hold })
}

func quoteList(s []string) string {
	if len(s) == 0 {
		return "no subjects"
	}
	return strings.Join(s, ",")
}

// Recheck intervals of the stream: short while it breaks the contract, so
// a fix is seen within seconds, longer otherwise.
const (
	contractRecheckBroken = 10 * time.Second
	contractRecheckOK     = idleRecheck
)
