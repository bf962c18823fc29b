package ledger

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestKey(t *testing.T) {
	valid := regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)
	for _, c := range []struct {
		sid     string
		encoded bool
		key     string
	}{
		{"38f8e3cfdc474cd56fc1ceba380d7e1a", false, "38f8e3cfdc474cd56fc1ceba380d7e1a"},
		{"a-b_C9", false, "a-b_C9"},
		{"a.b", true, "=YS5i"},
		{"a/b", true, "=YS9i"},
		{"a=b", true, "=YT1i"},
		{"é >*", true, "=w6kgPio"},
		{strings.Repeat("a", 129), true, ""},
		{strings.Repeat(".", 600), true, ""},
	} {
		key, enc := Key(c.sid)
		if enc != c.encoded || (c.key != "" && key != c.key) || !valid.MatchString(key) {
			t.Errorf("Key(%.20q): got %q %v, want %q %v and a valid key", c.sid, key, enc, c.key, c.encoded)
		}
		sid, ok := SIDOfKey(key)
		if len(c.sid) <= maxEncodeSID && (!ok || sid != c.sid) {
			t.Errorf("SIDOfKey(%q): got %.20q %v, want %.20q", key, sid, ok, c.sid)
		}
		if len(c.sid) > maxEncodeSID && (ok || !strings.HasPrefix(key, keyHashed)) {
			t.Errorf("Key of a %d-byte sid: got %q, want a hashed key", len(c.sid), key)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: got %v, want nil", err)
	}
	bad := DefaultConfig()
	bad.Bucket, bad.UploadGrace, bad.StallAfter, bad.Replicas = "a.b", 500*time.Millisecond, 0, 0
	err := bad.Validate()
	for _, key := range []string{"ledger.bucket:", "ledger.upload_grace:", "ledger.stall_after:", "nats.stream_replicas:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("validate: got %v, want an error naming %s", err, key)
		}
	}
	bad.Enabled = false
	if err := bad.Validate(); err != nil {
		t.Errorf("disabled: got %v, want nil", err)
	}
}

// TestTransitions: completed once when final, a flag once when it
// arises, nothing for a change that adds no meaning.
func TestTransitions(t *testing.T) {
	s := testSession{sid: "s", cname: "c", base: 1000, notes: []note{
		started("1"), {1, 0, "1", map[string]any{"msgName": "cloud_recording_error", "errorCode": 5}, false},
		exit("1", 1), uploaded("1", "a.mp4"),
	}}
	var prev *Record
	var got []string
	for _, b := range bodies(s) {
		next := NewRecord("s")
		if prev != nil {
			next, _ = UnmarshalRecord(prev.Marshal())
		}
		e, _ := Parse(b, 0)
		next.Apply(e)
		for _, d := range Transitions(prev, next, "agora.ncs", "s") {
			got = append(got, d.MsgID)
			if !strings.Contains(string(d.Body), `"next":"`) || (d.Flag != "" && !strings.Contains(string(d.Body), `"flag":"`+d.Flag+`"`)) {
				t.Errorf("body of %s: got %s, want flag and next", d.MsgID, d.Body)
			}
		}
		prev = next
	}
	want := "session.flagged.error.s session.completed.s session.flagged.abnormal_exit.s"
	if strings.Join(got, " ") != want {
		t.Errorf("transitions: got %q, want %q", strings.Join(got, " "), want)
	}
}

// TestRaiseDue: the time facts and when they fall due.
func TestRaiseDue(t *testing.T) {
	const grace, stall = time.Minute, time.Hour
	mk := func(notes ...note) *Record {
		r := NewRecord("s")
		for _, b := range bodies(testSession{sid: "s", base: 1_000_000, notes: notes}) {
			e, _ := Parse(b, 0)
			r.Apply(e)
		}
		return r
	}
	for _, c := range []struct {
		name  string
		r     *Record
		at    int64
		flags string
		state string
		done  bool
	}{
		{"exit without upload, before grace", mk(started("1"), exit("1", 0)), 1_001_000 + 59_999, "[]", StateExited, false},
		{"exit without upload, after grace", mk(started("1"), exit("1", 0)), 1_001_000 + 60_000, "[no_upload]", StateExited, true},
		{"exit 0 and progress 10000 are no upload notice", mk(exit("1", 0), note{33, 2, "1", map[string]any{"progress": 10000}, false}), 1_000_000 + 60_000, "[no_upload]", StateExited, true},
		{"upload without exit", mk(started("1"), uploaded("1", "a")), 1_001_000 + 60_000, "[]", StateExited, true},
		{"quiet", mk(started("1")), 1_000_000 + 3_600_000, "[silent]", StateRecording, false},
		{"quiet, not yet", mk(started("1")), 1_000_000 + 3_599_999, "[]", StateRecording, false},
	} {
		RaiseDue(c.r, c.at, grace, stall)
		if got := fmtList(c.r.Flags); got != c.flags || c.r.State != c.state || c.r.Completed != c.done {
			t.Errorf("%s: got %s %s completed %v, want %s %s %v", c.name, got, c.r.State, c.r.Completed, c.flags, c.state, c.done)
		}
	}
}

// TestParseIgnores: what is not a Cloud Recording session is ignored.
func TestParseIgnores(t *testing.T) {
	for body, why := range map[string]string{
		`nope`: ignoreNotJSON,
		`{"productId":1,"eventType":101,"payload":{"sid":"x"}}`:                                    ignoreOtherProduct,
		`{"productId":3,"eventType":40,"payload":{"cname":"x"}}`:                                   ignoreNoSID,
		`{"notificationId":"1","eventType":40,"payload":{}}`:                                       ignoreNoSID,
		`{"productId":"3","eventType":"40","sid":"top","payload":{}}`:                              "",
		`{"notificationId":"1","eventType":40,"eventMs":5,"payload":{"sid":"old","sequence":"3"}}`: "",
	} {
		if _, got := Parse([]byte(body), 0); got != why {
			t.Errorf("Parse(%s): got %q, want %q", body, got, why)
		}
	}
}

// TestDisabled: a disabled ledger needs no connection, shows enabled 0
// and beats until it is stopped.
func TestDisabled(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Enabled = false
	l, err := New(cfg, nil, zap.NewNop(), reg)
	if err != nil {
		t.Fatalf("new: got %v, want nil", err)
	}
	tl := &testLedger{Ledger: l, reg: reg}
	if got := tl.metric(t, "ncs_gateway_ledger_enabled"); got != 0 {
		t.Errorf("enabled: got %v, want 0", got)
	}
	for _, f := range AllFlags {
		if got := tl.metric(t, "ncs_gateway_ledger_flagged_total", "reason", f); got != 0 {
			t.Errorf("flagged %s: got %v, want a series at 0", f, got)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: got %v, want nil", err)
	}
	if s := l.Status(); s.Enabled {
		t.Errorf("status: got enabled, want disabled")
	}
}

// TestBucketMaxAge: records outlive the stream's messages and stall_after.
func TestBucketMaxAge(t *testing.T) {
	cfg := DefaultConfig()
	for _, c := range []struct{ stream, want time.Duration }{
		{0, 0},
		{168 * time.Hour, 30 * 24 * time.Hour},
		{60 * 24 * time.Hour, 61 * 24 * time.Hour},
	} {
		if got := bucketMaxAge(c.stream, cfg); got != c.want {
			t.Errorf("stream max age %s: got %s, want %s", c.stream, got, c.want)
		}
	}
}
