package publish

import (
	"strings"
	"testing"
)

// testNKey is a valid user public nkey.
const testNKey = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"

func TestEmbeddedConfigValidate(t *testing.T) {
	valid := func() EmbeddedConfig {
		return EmbeddedConfig{Listen: DefaultEmbeddedListen, StoreDir: "/var/lib/ncs-gateway"}
	}
	tests := []struct {
		name   string
		modify func(*EmbeddedConfig)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*EmbeddedConfig) {}, nil},
		{"localhost", func(c *EmbeddedConfig) { c.Listen = "localhost:4222" }, nil},
		{"ipv6 loopback", func(c *EmbeddedConfig) { c.Listen = "[::1]:4222" }, nil},
		{"no port", func(c *EmbeddedConfig) { c.Listen = "127.0.0.1" }, []string{"nats.embedded_listen"}},
		{"port out of range", func(c *EmbeddedConfig) { c.Listen = "127.0.0.1:70000" }, []string{"nats.embedded_listen"}},
		{"no store dir", func(c *EmbeddedConfig) { c.StoreDir = "" }, []string{"state_dir: must be set"}},
		{"all interfaces, anonymous", func(c *EmbeddedConfig) { c.Listen = "0.0.0.0:4222" },
			[]string{`nats.embedded_listen: "0.0.0.0:4222" is reachable from other hosts`}},
		{"empty host, anonymous", func(c *EmbeddedConfig) { c.Listen = ":4222" }, []string{"nats.embedded_listen"}},
		{"all interfaces with password users, tls", func(c *EmbeddedConfig) {
			c.Listen = "0.0.0.0:4222"
			c.Users = []EmbeddedUser{{User: "reader", Password: "pw"}, {NKey: testNKey}}
			c.TLSCertFile, c.TLSKeyFile = "c.pem", "k.pem"
		}, nil},
		{"all interfaces with password users, no tls", func(c *EmbeddedConfig) {
			c.Listen = "0.0.0.0:4222"
			c.Users = []EmbeddedUser{{User: "reader", Password: "pw"}, {NKey: testNKey}}
		}, []string{`nats.embedded_listen: "0.0.0.0:4222" is reachable from other hosts and nats.embedded_users has passwords`, "embedded_tls_cert_file"}},
		{"private address with a password user, no tls", func(c *EmbeddedConfig) {
			c.Listen = "10.1.2.3:4222"
			c.Users = []EmbeddedUser{{User: "reader", Password: "pw"}}
		}, []string{"nats.embedded_listen"}},
		{"empty host with a password user, no tls", func(c *EmbeddedConfig) {
			c.Listen = ":4222"
			c.Users = []EmbeddedUser{{User: "reader", Password: "pw"}}
		}, []string{"nats.embedded_listen"}},
		{"all interfaces with nkey users, no tls", func(c *EmbeddedConfig) {
			c.Listen = "0.0.0.0:4222"
			c.Users = []EmbeddedUser{{NKey: testNKey}}
		}, nil},
		{"loopback with a password user, no tls", func(c *EmbeddedConfig) {
			c.Users = []EmbeddedUser{{User: "reader", Password: "pw"}}
		}, nil},
		{"all interfaces with client certificates", func(c *EmbeddedConfig) {
			c.Listen = "0.0.0.0:4222"
			c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = "c.pem", "k.pem", "ca.pem"
		}, nil},
		{"ca without server certificate", func(c *EmbeddedConfig) { c.TLSCAFile = "ca.pem" }, []string{"nats.embedded_tls_ca_file"}},
		{"cert without key", func(c *EmbeddedConfig) { c.TLSCertFile = "c.pem" }, []string{"nats.embedded_tls_cert_file"}},
		{"user without password", func(c *EmbeddedConfig) { c.Users = []EmbeddedUser{{User: "reader"}} },
			[]string{`nats.embedded_users[0]: user "reader" has no password`}},
		{"user and nkey", func(c *EmbeddedConfig) { c.Users = []EmbeddedUser{{User: "r", Password: "p", NKey: testNKey}} },
			[]string{"nats.embedded_users[0]: set either"}},
		{"bad nkey", func(c *EmbeddedConfig) { c.Users = []EmbeddedUser{{NKey: "SUAB"}} },
			[]string{"nats.embedded_users[0]: nkey"}},
		{"empty entry", func(c *EmbeddedConfig) { c.Users = []EmbeddedUser{{}} }, []string{"nats.embedded_users[0]"}},
		{"user twice", func(c *EmbeddedConfig) {
			c.Users = []EmbeddedUser{{User: "r", Password: "p"}, {User: "r", Password: "q"}}
		}, []string{`nats.embedded_users[1]: "r" is listed twice`}},
		{"bad stream", func(c *EmbeddedConfig) { c.Stream = "A/B" }, []string{"nats.stream"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			checkProblems(t, c.Validate(), tt.want, `"p"`, "pw")
		})
	}
}

func TestValidateSubjectPrefix(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		ok     bool
	}{
		{"agora.ncs", true},
		{"a", true},
		{"a-b_c.D9", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"agora.", false},
		{".agora", false},
		{"agora..ncs", false},
		{"agora.*", false},
		{"agora.>", false},
		{"agora ncs", false},
		{"agora/ncs", false},
		{"agora.nçs", false},
	} {
		err := validateSubjectPrefix(tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("validateSubjectPrefix(%q): got %v, want ok=%v", tt.prefix, err, tt.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "nats.subject_prefix: ") {
			t.Errorf("got %q, want it to start with the key", err)
		}
	}
}
