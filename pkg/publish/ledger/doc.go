// Package ledger keeps a record of every Agora Cloud Recording session in
// a NATS key-value bucket, built from the notifications in the stream, and
// publishes two derived notifications: <prefix>.session.completed once per
// session and <prefix>.session.flagged once per session and reason.
//
// # Input
//
// A durable pull consumer (ConsumerName) on the notification stream reads
// <prefix>.3.> and <prefix>.unknown.>, never <prefix>.session.> nor the
// dead letters. A body is a session event when its productId is 3, or it
// has no productId but a payload.sid (the pre-2021 format: notificationId,
// eventMs, a string sequence). Anything else is acked and counted as
// ignored; a body that is not JSON is acked and counted as malformed (the
// stream still holds it).
//
// # Keys
//
// The key of a session is its sid when the sid is 1 to 128 of
// A-Z a-z 0-9 _ - (a plain token: no '.', '/' or '='). Any other sid up to
// 512 bytes is "=" followed by the base64url of its bytes, no padding
// ("a.b" is "=YS5i"); a longer one is "==" followed by the hex sha256 of
// its bytes, which only the record itself maps back. A plain token never
// holds '=', so the forms never collide. The record always carries the sid
// as sent.
//
// # Record schema (version 1)
//
// One JSON object per key, fields in this order:
//
//	v                int       schema version, 1
//	sid              string    payload.sid as sent
//	cname            string    the channel (the smallest seen, should two differ)
//	state            string    "recording", or "exited" once exit_by is not empty
//	outcome          string    "" while recording; "failed" when exit_status or
//	                           web_stop_code is not 0; else "ok". Flags never change it
//	completed        bool      the outcome is final: exited, and an upload notice
//	                           arrived, or it failed, or no_upload was raised
//	flags            []string  sorted, no repeats: abnormal_exit, error, no_upload, silent
//	exit_by          []string  what ended it: "11", "71" (web page recording),
//	                           "inferred" (an upload notice and no exit within upload_grace)
//	exit_status      int|null  exitStatus of 11 (a non-zero one wins over 0)
//	web_stop_code    int|null  code of 71 (a non-zero one wins over 0)
//	leave_code       int|null  leaveCode of 41, every bit seen (bitwise or)
//	upload_notices   []string  "31" uploaded, "32" backuped (files went to Agora's backup first)
//	upload_progress  int|null  the highest progress of 33 (0-10000)
//	late_upload      bool      an upload notice arrived after no_upload was raised
//	files            []string  file names of 31, 32, 71 and 1001, sorted, at most 1000
//	                           (the smallest in byte order)
//	files_truncated  bool      more names were sent than files keeps
//	uids             []string  every recorder uid seen, failover newUid included
//	failover_uids    []string  the newUid of each failover (12)
//	failovers        int       len(failover_uids)
//	web_recording    bool      a web page recording (serviceType 6 or events 70-73)
//	recording_modes  []string  recordingMode of event 3
//	service_types    []int     serviceType values seen
//	error_codes      []string  errorCode of event 1
//	warning_codes    []string  warnCode of event 2
//	events           object    eventType (a string, "unknown" when absent) to the
//	                           number of distinct events of that type
//	first_seen_ms    int       earliest event time: sendts, else notifyMs, else
//	                           eventMs, else the time the stream stored it
//	last_seen_ms     int       latest event time, the same way
//	exit_ms          int       earliest 11 or 71 (0: none)
//	upload_ms        int       earliest 31 or 32 (0: none)
//	seen             []string  the identities of the events merged, "<type>:<12 hex>"
//	seen_truncated   bool      more than 4096 identities: the smallest are kept
//
// # Merge, not state machine
//
// Every fact merges by set union, minimum, maximum or bitwise or, and
// state, outcome, completed, late_upload, failovers and events are
// computed from the merged facts, so any order of a session's events,
// with any repeats, gives the same bytes. An event is recognised by what
// it says: the sha256 of its eventType, serviceType, uid, sequence and
// details with sorted keys, never by its noticeId (a redundant copy may
// carry another) nor its notifyMs (refreshed on every resend). The bounds
// keep the smallest values of a union, which is itself order-free.
//
// Time facts are merged facts too, raised by the ledger when they fall
// due, counted from the notifications' own times: exit_by "inferred"
// (upload_ms + upload_grace, no exit notice), flag no_upload (exit_ms +
// upload_grace, no 31 nor 32; an 11 with exitStatus 0 or a 33 at 10000
// say the upload finished but not which files, so they do not count) and
// flag silent (last_seen_ms + stall_after, not exited). They are raised
// only while the ledger is caught up with the stream (its consumer has
// nothing pending nor unacked) and has read the whole bucket, so a backlog
// never raises a false one; the ledger checks about every second. The
// status's caught_up (and ncs_gateway_ledger_caught_up) means the same two
// things: after a restart on a big bucket it stays false until the index
// holds every record, so the session counts it shows are whole.
//
// # Derived notifications
//
// Their body is the record with two more fields: flag (flagged only) and
// next, what to do (call the REST query while the session may still run;
// after its exit, read files or list the storage prefix). Their
// Nats-Msg-Id is session.completed.<key> or session.flagged.<reason>.<key>.
// What to publish is decided by comparing the stored record before and
// after a merge: completed when completed turns true, flagged for each
// flag that appears. A derived notification is published before the
// record is written, and the record is written before the notifications
// it merged are acked; a crash anywhere repeats at most a publish that the
// stream's duplicate window drops, and a replay of old notifications
// changes no stored record, so it derives nothing.
//
// # Writers
//
// Each batch (up to 4096 notifications and 2 MiB, so a backlog coalesces
// several events of a session, and at most 8192 unacked) is grouped by
// session: one read and one compare-and-set write (Create, or Update at
// the revision read) per session and batch; on a conflict the record is
// read again and the batch's events merged again. Several gateways share the consumer and the
// bucket and stay right.
//
// # Pacing
//
// The ledger is off the webhook's path but shares its CPU and disk (each
// record write and derived notification is an fsync on the embedded
// server), so under load it gives way. It reads and writes on a NATS
// connection of its own, opened with the publisher's options, so its
// fetches and acks never queue with the webhook's publishes and their
// acks. A trickle (a batch under 256 notifications with nothing behind
// it) is applied at once. Under load (a bigger batch, or notifications
// waiting behind it) the ledger trails the stream by 5 s: it holds a
// batch, unacked, until its newest notification is 5 s old, applies it,
// then rests three times as long as applying took (at most 2 s). A burst
// is thus applied mostly after it, when the webhook is idle, in full
// batches that write each session once for more of its events; the
// status's lag reads 5 s or so meanwhile. Pacing stops while the batch's
// oldest notification is more than 10 s old or more than 32768 wait, so
// a sustained load the ledger cannot outpace while pacing gets it at full
// speed. Up to four sessions of a batch are written at once.
//
// # A deleted consumer
//
// If the consumer disappears (a reader deleted it), the ledger creates it
// again, starting just above the ack floor it last saw (every notification
// at or below it was finished; any above may be read twice, which changes
// nothing). A process that never saw the floor starts from the stream's
// first message: the merge is idempotent and transitions are computed
// against stored records, so the replay costs time and derives nothing.
//
// # The bucket
//
// History 1, file storage, the stream's replicas. A record lives 30 days
// after its last write, or longer when the stream keeps notifications
// longer (the stream's max age and a day): a replay from the stream's
// start must never find a record gone, or it would announce the session
// again. A stream without a max age gets a bucket without one. An expired
// record leaves a marker for an hour, so watchers hear of it. A bucket
// deleted by hand is created again and filled by the notifications still
// to come (those already acked are not replayed).
//
// # Memory
//
// The ledger keeps no record in memory: a watch of the bucket keeps an
// entry per session (state bits, flags, cname, due times), about 270
// bytes each, for the counts, -sessions and the due times.
package ledger
