package ncsip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// list renders a documented answer holding these primaryIP values.
func list(ips ...string) string {
	hosts := make([]string, len(ips))
	for i, ip := range ips {
		hosts[i] = fmt.Sprintf(`{"primaryIP":%q}`, ip)
	}
	return `{"data":{"service":{"hosts":[` + strings.Join(hosts, ",") + `]}}}`
}

func addrStrings(addrs []netip.Addr) []string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return s
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		allowPrivate bool
		want         []string // nil: an error is expected
		wantRejected int
		wantReason   string
	}{
		{name: "documented shape", body: list("198.51.100.1", "203.0.113.2"), want: []string{"198.51.100.1", "203.0.113.2"}},
		{name: "dedupe and sort, v4 before v6", body: list("203.0.113.2", "2001:db8::2", "192.0.2.1", "203.0.113.2", "2001:db8::1", "192.0.2.1"),
			want: []string{"192.0.2.1", "203.0.113.2", "2001:db8::1", "2001:db8::2"}},
		{name: "4in6 unmapped and merged", body: list("::ffff:198.51.100.7", "198.51.100.7"), want: []string{"198.51.100.7"}},
		{name: "surrounding space trimmed", body: list(" 198.51.100.1\n"), want: []string{"198.51.100.1"}},
		{name: "IPv6 only", body: list("2001:db8:1::53", "2606:4700::1111"), want: []string{"2001:db8:1::53", "2606:4700::1111"}},
		{name: "unknown fields ignored",
			body: `{"code":0,"data":{"region":"x","service":{"name":"ncs","hosts":[{"primaryIP":"198.51.100.1","backupIP":"10.0.0.1","port":443}],"ttl":86400}},"request_id":"r"}`,
			want: []string{"198.51.100.1"}},
		{name: "bad host entries skipped",
			body: `{"data":{"service":{"hosts":[1,"198.51.100.9",null,[],{},{"primaryIP":null},{"primaryIP":7},{"primaryip":"198.51.100.8"},{"primaryIP":"198.51.100.1"}]}}}`,
			want: []string{"198.51.100.1"}, wantRejected: 8},
		{name: "invalid strings skipped", body: list("198.51.100.1", "", "nope", "1.2.3", "1.2.3.4/32", "300.1.1.1"), want: []string{"198.51.100.1"}, wantRejected: 5},
		{name: "unusable addresses rejected",
			body: list("198.51.100.1", "0.0.0.0", "0.1.2.3", "::", "127.0.0.1", "::1", "224.0.0.1", "ff02::1",
				"169.254.1.1", "fe80::1", "fe80::1%eth0", "::ffff:1.2.3.4%eth0", "240.0.0.1", "255.255.255.255"),
			want: []string{"198.51.100.1"}, wantRejected: 13},
		{name: "private rejected by default",
			body: list("203.0.113.5", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1", "100.64.0.1", "::ffff:10.0.0.1"),
			want: []string{"203.0.113.5"}, wantRejected: 6},
		{name: "private accepted when allowed", allowPrivate: true,
			body: list("10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1", "100.64.0.1", "127.0.0.1"),
			want: []string{"10.1.2.3", "100.64.0.1", "172.16.0.1", "192.168.1.1", "fd00::1"}, wantRejected: 1},
		{name: "private neighbours are public", body: list("172.32.0.1", "100.128.0.1", "11.0.0.1"),
			want: []string{"11.0.0.1", "100.128.0.1", "172.32.0.1"}},

		{name: "empty host list", body: list(), wantReason: "empty"},
		{name: "null host list", body: `{"data":{"service":{"hosts":null}}}`, wantReason: "empty"},
		{name: "only 0.0.0.0", body: list("0.0.0.0"), wantReason: "empty"},
		{name: "only private", body: list("10.0.0.1", "192.168.0.1"), wantReason: "empty"},
		{name: "garbage", body: "<html>502 Bad Gateway</html>", wantReason: "bad_response"},
		{name: "truncated", body: list("198.51.100.1")[:30], wantReason: "bad_response"},
		{name: "empty body", body: "", wantReason: "bad_response"},
		{name: "trailing garbage", body: list("198.51.100.1") + "x", wantReason: "bad_response"},
		{name: "top-level array", body: `[{"primaryIP":"198.51.100.1"}]`, wantReason: "bad_response"},
		{name: "empty object", body: `{}`, wantReason: "bad_response"},
		{name: "null data", body: `{"data":null}`, wantReason: "bad_response"},
		{name: "no hosts key", body: `{"data":{"service":{}}}`, wantReason: "bad_response"},
		{name: "hosts not an array", body: `{"data":{"service":{"hosts":{"primaryIP":"198.51.100.1"}}}}`, wantReason: "bad_response"},
		{name: "error message with 200", body: `{"message":"Unauthorized"}`, wantReason: "bad_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := decode([]byte(tt.body), tt.allowPrivate)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %v, want an error", res.Addrs)
				}
				if got := Reason(err); got != tt.wantReason {
					t.Errorf("got reason %q (%v), want %q", got, err, tt.wantReason)
				}
				if got, want := errors.Is(err, ErrEmpty), tt.wantReason == "empty"; got != want {
					t.Errorf("got errors.Is(err, ErrEmpty) %v, want %v", got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if got := addrStrings(res.Addrs); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if res.RejectedCount != tt.wantRejected {
				t.Errorf("got %d rejected (%v), want %d", res.RejectedCount, res.Rejected, tt.wantRejected)
			}
			if got, want := len(res.Rejected), min(tt.wantRejected, maxExamples); got != want {
				t.Errorf("got %d examples, want %d", got, want)
			}
		})
	}
}

func TestDecodeRejectedExamples(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // substring of the first example (success) or of the error
	}{
		{"private reason", list("198.51.100.1", "10.1.2.3"), `"10.1.2.3": private`},
		{"non-object entry", `{"data":{"service":{"hosts":[5,{"primaryIP":"198.51.100.1"}]}}}`, `host 0: not an object`},
		{"long garbage shortened", list("198.51.100.1", strings.Repeat("x", 500)), `"` + strings.Repeat("x", maxExampleLen) + `"...`},
		{"control characters quoted", list("198.51.100.1", "a\nb"), `"a\nb": not an IP address`},
		{"error lists examples and the rest", list("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7"),
			`all 7 host entries rejected: "10.0.0.1": private; "10.0.0.2": private; "10.0.0.3": private; "10.0.0.4": private; "10.0.0.5": private; and 2 more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := decode([]byte(tt.body), false)
			got := ""
			if err != nil {
				got = err.Error()
			} else if len(res.Rejected) > 0 {
				got = res.Rejected[0]
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

// FuzzDecode checks that Decode never panics, returns only addresses that
// pass the gates, and fails exactly when no primaryIP survives (computed
// here from a generic JSON decode).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		list("198.51.100.1", "2001:db8::1"),
		list("10.0.0.1", "::ffff:203.0.113.1", "fe80::1%eth0"),
		list(),
		`{"data":{"service":{"hosts":[1,null,{"primaryIP":7},{"primaryIP":" 192.0.2.1 "}]}}}`,
		`{"data":null}`,
		`{"data":{"service":{"hosts":{}}}}`,
		"<html>",
		"",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, allowPrivate bool) {
		res, err := decode(body, allowPrivate)
		want := survivors(body, allowPrivate)
		if err != nil {
			if len(want) > 0 {
				t.Fatalf("got error %v, want %v", err, want)
			}
			if r := Reason(err); r != "empty" && r != "bad_response" {
				t.Fatalf("got reason %q, want empty or bad_response", r)
			}
			if len(res.Addrs) != 0 {
				t.Fatalf("got %v with an error, want no addresses", res.Addrs)
			}
			return
		}
		if len(res.Addrs) == 0 {
			t.Fatal("got an empty list without an error")
		}
		if !slices.Equal(res.Addrs, want) {
			t.Fatalf("got %v, want %v", res.Addrs, want)
		}
		for i, a := range res.Addrs {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() || a.IsUnspecified() || a.IsLoopback() ||
				a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
				t.Fatalf("got unusable address %v", a)
			}
			if !allowPrivate && (a.IsPrivate() || cgnat.Contains(a)) {
				t.Fatalf("got private address %v", a)
			}
			if i > 0 && res.Addrs[i-1].Compare(a) >= 0 {
				t.Fatalf("got %v, want sorted without duplicates", res.Addrs)
			}
		}
		if res.RejectedCount < len(res.Rejected) || len(res.Rejected) > maxExamples {
			t.Fatalf("got %d rejected with %d examples", res.RejectedCount, len(res.Rejected))
		}
	})
}

// survivors is the fuzz oracle: the usable addresses of body, found through
// a generic decode rather than Decode's own walk.
func survivors(body []byte, allowPrivate bool) []netip.Addr {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	for _, key := range []string{"data", "service"} {
		m, _ := v.(map[string]any)
		v = m[key]
	}
	m, _ := v.(map[string]any)
	hosts, _ := m["hosts"].([]any)
	var out []netip.Addr
	for _, h := range hosts {
		hm, _ := h.(map[string]any)
		s, ok := hm["primaryIP"].(string)
		if !ok {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" {
			continue
		}
		if a = a.Unmap(); rejectReason(a, allowPrivate) == "" {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
