package publish

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// localURL is the loopback URL of g's listener, whatever host it binds.
func (g *gatewayEmbedded) localURL() string {
	port := g.emb.Server().Addr().(*net.TCPAddr).Port
	return "nats://127.0.0.1:" + strconv.Itoa(port)
}

// checkWriteRefused publishes under the prefix on nc and fails the test if
// the stream took it.
func checkWriteRefused(t *testing.T, g *gatewayEmbedded, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("create jetstream context: %v", err)
	}
	_, before := g.streamState(t)
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	defer cancel()
	if _, err := js.Publish(ctx, "agora.ncs.3.31", []byte(`{"forged":true}`)); err == nil {
		t.Errorf("publish as a reader: got nil error, want it refused")
	}
	if _, after := g.streamState(t); after != before {
		t.Errorf("stream messages after a reader's publish: got %d, want %d", after, before)
	}
}

// TestEmbeddedGatewayIdentityInProcessOnly: the gateway's key works only on
// the in-process connection, so even its seed would not let a local
// process write over TCP.
func TestEmbeddedGatewayIdentityInProcessOnly(t *testing.T) {
	g := startGatewayEmbedded(t, EmbeddedConfig{})
	a := g.emb.auth
	nc, err := nats.Connect(g.emb.ClientURL(), nats.Nkey(a.pub, a.kp.Sign), nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
		t.Fatalf("connect over tcp with the gateway's key: got nil error, want an authorization error")
	}
}

func TestEmbeddedUsers(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("hashed-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("create nkey: %v", err)
	}
	upub, _ := ukp.PublicKey()
	// Not loopback: no anonymous access even when asked for, and TLS, as
	// passwords must not cross the network in the clear.
	dir := t.TempDir()
	ca := newTestCA(t, "ncs test ca")
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.der)
	certFile, keyFile := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	g := startGatewayEmbedded(t, EmbeddedConfig{
		Listen:    "0.0.0.0:0",
		Anonymous: true,
		Users: []EmbeddedUser{
			{User: "alice", Password: "plain-secret"},
			{User: "bob", Password: string(hash)},
			{NKey: upub},
		},
		TLSCertFile: certFile, TLSKeyFile: keyFile,
	})

	clients := []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{"anonymous", nil, false},
		{"password", []nats.Option{nats.UserInfo("alice", "plain-secret")}, true},
		{"wrong password", []nats.Option{nats.UserInfo("alice", "plain-secreT")}, false},
		{"bcrypt hash", []nats.Option{nats.UserInfo("bob", "hashed-secret")}, true},
		{"the hash as the password", []nats.Option{nats.UserInfo("bob", string(hash))}, false},
		{"nkey", []nats.Option{nats.Nkey(upub, ukp.Sign)}, true},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			nc, err := nats.Connect(strings.Replace(g.localURL(), "nats://", "tls://", 1),
				append([]nats.Option{nats.Timeout(5 * time.Second), quietErrors, nats.RootCAs(caFile)}, c.opts...)...)
			if !c.ok {
				if err == nil {
					nc.Close()
					t.Fatalf("connect: got nil error, want an authorization error")
				}
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			t.Cleanup(nc.Close)
			checkReads(t, g, nc)
			checkWriteRefused(t, g, nc)
		})
	}
}

// TestEmbeddedRefusesOpenListener: the daemon itself, not only
// -check-config, refuses a listener other hosts reach without users or a
// client CA (the rules are EmbeddedConfig.Validate's, tested there).
func TestEmbeddedRefusesOpenListener(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedConfig{Listen: "0.0.0.0:0", StoreDir: t.TempDir()}, zap.NewNop()); err == nil ||
		!strings.Contains(err.Error(), "nats.embedded_listen") {
		t.Errorf("start on all interfaces without users: got %v, want the nats.embedded_listen error", err)
	}
}

// TestEmbeddedClientCertificates: with a CA and anonymous access on, a
// client with a certificate it signed reads without other credentials, and
// nobody else gets in.
func TestEmbeddedClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "ncs test ca")
	rogue := newTestCA(t, "rogue ca")
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.der)
	certFile, keyFile := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	rogueCert, rogueKey := rogue.issue(t, dir, "rogue", x509.ExtKeyUsageClientAuth)

	g := startGatewayEmbedded(t, EmbeddedConfig{
		Listen:      "0.0.0.0:0",
		Anonymous:   true, // the certificate is the credential
		TLSCertFile: certFile, TLSKeyFile: keyFile, TLSCAFile: caFile,
	})
	connect := func(opts ...nats.Option) (*nats.Conn, error) {
		return nats.Connect(strings.Replace(g.localURL(), "nats://", "tls://", 1),
			append([]nats.Option{nats.Timeout(5 * time.Second), quietErrors, nats.RootCAs(caFile)}, opts...)...)
	}

	if nc, err := connect(); err == nil {
		nc.Close()
		t.Errorf("connect without a client certificate: got nil error, want a tls error")
	}
	if nc, err := connect(nats.ClientCert(rogueCert, rogueKey)); err == nil {
		nc.Close()
		t.Errorf("connect with a certificate of another ca: got nil error, want a tls error")
	}
	nc, err := connect(nats.ClientCert(clientCert, clientKey))
	if err != nil {
		t.Fatalf("connect with a client certificate: %v", err)
	}
	t.Cleanup(nc.Close)
	checkReads(t, g, nc)
	checkWriteRefused(t, g, nc)
}

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate ca key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create ca certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse ca certificate: %v", err)
	}
	return &testCA{cert: cert, key: key, der: der}
}

// issue writes a certificate for 127.0.0.1 signed by ca and its key.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", kder)
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}
