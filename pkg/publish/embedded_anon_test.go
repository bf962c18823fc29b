package publish

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestEmbeddedAnonymousOff is issue 14's switch: with anonymous access off,
// a client without credentials is refused on the loopback listener too,
// and a declared user still reads (and still may not write).
func TestEmbeddedAnonymousOff(t *testing.T) {
	g := startGatewayEmbedded(t, EmbeddedConfig{
		Anonymous: false,
		Users:     []EmbeddedUser{{User: "reader", Password: "reader-secret"}},
	})
	if nc, err := nats.Connect(g.emb.ClientURL(), nats.Timeout(5*time.Second), quietErrors); err == nil {
		nc.Close()
		t.Errorf("connect without credentials, anonymous off: got nil error, want an authorization error")
	}
	nc, err := nats.Connect(g.emb.ClientURL(), nats.Timeout(5*time.Second), quietErrors, nats.UserInfo("reader", "reader-secret"))
	if err != nil {
		t.Fatalf("connect as the declared reader: %v", err)
	}
	t.Cleanup(nc.Close)
	checkReads(t, g, nc)
	checkWriteRefused(t, g, nc)
}

// TestEmbeddedAnonymousOffClientCertificate: with anonymous access off, a
// client certificate alone is not enough either: every client names a user.
func TestEmbeddedAnonymousOffClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "ncs test ca")
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.der)
	certFile, keyFile := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	g := startGatewayEmbedded(t, EmbeddedConfig{
		Listen:      "0.0.0.0:0",
		TLSCertFile: certFile, TLSKeyFile: keyFile, TLSCAFile: caFile,
		Users: []EmbeddedUser{{User: "reader", Password: "reader-secret"}},
	})
	url := strings.Replace(g.localURL(), "nats://", "tls://", 1)
	base := []nats.Option{nats.Timeout(5 * time.Second), quietErrors, nats.RootCAs(caFile), nats.ClientCert(clientCert, clientKey)}
	if nc, err := nats.Connect(url, base...); err == nil {
		nc.Close()
		t.Errorf("connect with a certificate and no user, anonymous off: got nil error, want an authorization error")
	}
	nc, err := nats.Connect(url, append(base, nats.UserInfo("reader", "reader-secret"))...)
	if err != nil {
		t.Fatalf("connect with a certificate as the declared reader: %v", err)
	}
	t.Cleanup(nc.Close)
	checkReads(t, g, nc)
}

// TestEmbeddedWarnings: what -check-config warns about, and no warning for
// the quickstart (anonymous on loopback, no users) or the packaged config.
func TestEmbeddedWarnings(t *testing.T) {
	users := []EmbeddedUser{{User: "reader", Password: "pw"}}
	tests := []struct {
		name string
		cfg  EmbeddedConfig
		want []string // substrings, one per warning; none: no warning
	}{
		{"quickstart", EmbeddedConfig{Listen: "127.0.0.1:4222", Anonymous: true}, nil},
		{"packaged", EmbeddedConfig{Listen: "127.0.0.1:4222", Users: users}, nil},
		{"anonymous with users", EmbeddedConfig{Listen: "127.0.0.1:4222", Anonymous: true, Users: users},
			[]string{"nats.embedded_anonymous: on while nats.embedded_users"}},
		{"anonymous off a loopback listener", EmbeddedConfig{Listen: "0.0.0.0:4222", Anonymous: true,
			TLSCertFile: "c.pem", TLSKeyFile: "k.pem", TLSCAFile: "ca.pem"},
			[]string{`nats.embedded_anonymous: on with nats.embedded_listen "0.0.0.0:4222"`}},
		{"anonymous with users, off loopback, no client ca", EmbeddedConfig{Listen: ":4222", Anonymous: true, Users: users,
			TLSCertFile: "c.pem", TLSKeyFile: "k.pem"},
			[]string{"nats.embedded_anonymous: on with nats.embedded_listen"}},
		{"both", EmbeddedConfig{Listen: ":4222", Anonymous: true, Users: users, TLSCertFile: "c.pem", TLSKeyFile: "k.pem", TLSCAFile: "ca.pem"},
			[]string{"nats.embedded_anonymous: on with nats.embedded_listen", "nats.embedded_anonymous: on while nats.embedded_users"}},
		{"nkey users over plain tcp", EmbeddedConfig{Listen: "0.0.0.0:4222", Users: []EmbeddedUser{{NKey: testNKey}}},
			[]string{`nats.embedded_listen: "0.0.0.0:4222" without TLS`}},
		{"nobody can read", EmbeddedConfig{Listen: "127.0.0.1:4222"},
			[]string{"nats.embedded_anonymous: off and no nats.embedded_users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("warnings: got %q, want %d naming %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d: got %q, want it to contain %q", i, got[i], w)
				}
			}
			for _, w := range got {
				if strings.Contains(w, `"pw"`) {
					t.Errorf("warning %q: carries a password", w)
				}
			}
		})
	}
}
