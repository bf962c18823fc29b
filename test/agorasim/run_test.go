package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

// TestRunSessions drives the whole program against a fake gateway that
// checks every signature with the gateway's own verifier.
func TestRunSessions(t *testing.T) {
	g, srv := newFakeGateway(t, nil)
	var out bytes.Buffer
	args := []string{"-webhook", srv.URL, "-secret", testSecret, "-sessions", "2", "-interval", "0",
		"-health-check", "-seed", "42", "-ip-listen", "127.0.0.1:0", "-duplicates", "0.5", "-reorder", "0.5"}
	if err := run(context.Background(), args, &out, &out, noEnv); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	ids := map[string]bool{}
	for _, p := range g.received() {
		ids[decodeBody(t, p.body).NoticeID] = true
	}
	text := out.String()
	for _, want := range []string{"health ", "session 1:", "session 2:", "ip-api: serving", "undelivered=0", "type=40", "type=11"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if want := "distinct_notice_ids=" + strconv.Itoa(len(ids)) + " "; !strings.Contains(text, want) {
		t.Errorf("output lacks %q (the gateway saw %d ids):\n%s", want, len(ids), text)
	}
}

func TestRunUndeliveredFails(t *testing.T) {
	_, srv := newFakeGateway(t, func(int) (int, string) { return http.StatusUnauthorized, `{}` })
	var out bytes.Buffer
	args := []string{"-webhook", srv.URL, "-secret", testSecret, "-sessions", "1", "-interval", "0",
		"-retry-wait", "0", "-ip-listen", ""}
	err := run(context.Background(), args, &out, &out, noEnv)
	if err == nil || !strings.Contains(err.Error(), "never got a 200") {
		t.Errorf("run: got %v, want an error saying a notification never got a 200", err)
	}
}

func TestOptions(t *testing.T) {
	env := map[string]string{"AGORASIM_WEBHOOK_SECRET": "from-env", "AGORASIM_CUSTOMER_ID": "env-id"}
	o, err := parseOptions([]string{"-customer-secret", "flag-secret"}, &bytes.Buffer{}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.secret != "from-env" || o.customerID != "env-id" || o.customerSecret != "flag-secret" {
		t.Errorf("secret/id/customer secret = %q/%q/%q, want from-env/env-id/flag-secret", o.secret, o.customerID, o.customerSecret)
	}
	o, err = parseOptions([]string{"-secret", "flag"}, &bytes.Buffer{}, func(k string) string { return env[k] })
	if err != nil || o.secret != "flag" {
		t.Errorf("flag over env: got %q, %v, want flag", o.secret, err)
	}
	if o, err = parseOptions(nil, &bytes.Buffer{}, noEnv); err != nil || o.secret != "quickstart-secret" || o.customerID != "sim-id" {
		t.Errorf("defaults: got %+v, %v", o, err)
	}
}

func TestOptionsInvalid(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"-webhook", "http://192.0.2.1:8080/agora/ncs"}, []string{`host "192.0.2.1" is not loopback`}},
		{[]string{"-ip-listen", ":8081"}, []string{"-ip-listen: host \"\" is not loopback"}},
		{[]string{"-duplicates", "2", "-reorder", "-0.1", "-sessions", "5000"}, []string{"-duplicates 2", "-reorder -0.1", "-sessions 5000"}},
		{[]string{"-retries", "4", "-serve", "48h"}, []string{"-retries 4", "-serve 48h0m0s"}},
		{[]string{"-sessions", "0", "-ip-listen", ""}, []string{"nothing to do"}},
		{[]string{"-ip-listen", "", "-serve", "1m"}, []string{"-serve needs the IP API"}},
		{[]string{"extra"}, []string{`unexpected argument "extra"`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseOptions(tt.args, &bytes.Buffer{}, noEnv)
			if !errors.Is(err, errUsage) {
				t.Fatalf("got %v, want a usage error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestRunUnreachable stops after the first notification when nothing answers.
func TestRunUnreachable(t *testing.T) {
	_, srv := newFakeGateway(t, nil)
	url := srv.URL
	srv.Close()
	var out bytes.Buffer
	args := []string{"-webhook", url, "-sessions", "3", "-interval", "0", "-retry-wait", "0", "-ip-listen", ""}
	err := run(context.Background(), args, &out, &out, noEnv)
	if !errors.Is(err, errUnreachable) {
		t.Fatalf("run: got %v, want errUnreachable", err)
	}
	if !strings.Contains(out.String(), "notifications=1 ") {
		t.Errorf("want one notification tried, output:\n%s", out.String())
	}
}
