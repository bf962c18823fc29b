package loopback

import "testing"

func TestHost(t *testing.T) {
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true},
		{"", false}, {"0.0.0.0", false}, {"::", false}, {"10.0.0.1", false}, {"192.0.2.1", false},
		{"example.com", false}, {"[::1]", false},
	} {
		if got := Host(tt.host); got != tt.want {
			t.Errorf("Host(%q): got %v, want %v", tt.host, got, tt.want)
		}
	}
}
