package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tlsPair is a self-signed certificate for 127.0.0.1 and its key, in PEM.
type tlsPair struct {
	cert, key []byte
	der       []byte // the certificate, to compare with what a handshake sees
}

// newTLSPair makes a fresh self-signed ECDSA certificate named cn.
func newTLSPair(t testing.TB, cn string) tlsPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return tlsPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		der:  der,
	}
}

// writeAtomic replaces path's content with b through a rename, the way a
// certificate renewal tool swaps files.
func writeAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedCert returns the leaf certificate a fresh TLS handshake with addr
// sees (no session resumption: a new connection, a new client config).
func servedCert(t testing.TB, addr string) []byte {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test compares the certificate itself
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		t.Fatalf("TLS handshake with %s: no certificate", addr)
	}
	return certs[0].Raw
}

// TestSIGHUPReloadsTheWebhookCertificate: the webhook serves TLS from
// files; after the files are replaced and SIGHUP sent, a new handshake sees
// the new certificate. A broken replacement (not PEM; a certificate with
// another certificate's key) is refused with an error in the log, and the
// certificate in use keeps serving.
func TestSIGHUPReloadsTheWebhookCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "webhook.crt"), filepath.Join(dir, "webhook.key")
	first, second, third := newTLSPair(t, "first"), newTLSPair(t, "second"), newTLSPair(t, "third")
	writeAtomic(t, certPath, first.cert)
	writeAtomic(t, keyPath, first.key)

	pool := x509.NewCertPool()
	for _, p := range []tlsPair{first, second, third} {
		pool.AppendCertsFromPEM(p.cert)
	}
	g := newGateway(t, gatewayOptions{
		webhook: fmt.Sprintf("tls_cert_file: %q, tls_key_file: %q", certPath, keyPath),
	})
	// The admin port stays plain HTTP; the webhook's is HTTPS.
	g.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true,
	}}
	g.webhook = strings.Replace(g.webhook, "http://", "https://", 1)
	hookAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(g.hookPort))
	g.start()

	if got := servedCert(t, hookAddr); !bytes.Equal(got, first.der) {
		t.Fatalf("at start: served certificate is not the first one")
	}
	if code, ans := g.post(testSecret, notification("tls-1", time.Now().UnixMilli())); code != http.StatusOK {
		t.Fatalf("signed over TLS: got %d %s, want 200", code, ans)
	}

	// hup sends SIGHUP and waits until the daemon logged msg once more.
	hup := func(msg string) map[string]any {
		t.Helper()
		before := len(faultsLogLines(g.log(), msg, nil))
		g.signal(syscall.SIGHUP)
		var lines []map[string]any
		waitFor(t, 15*time.Second, fmt.Sprintf("log line %q after SIGHUP", msg), func() bool {
			lines = faultsLogLines(g.log(), msg, nil)
			return len(lines) > before
		})
		return lines[len(lines)-1]
	}

	// A renewal: both files replaced, then SIGHUP.
	writeAtomic(t, certPath, second.cert)
	writeAtomic(t, keyPath, second.key)
	hup("webhook tls certificate reloaded")
	if got := servedCert(t, hookAddr); !bytes.Equal(got, second.der) {
		t.Errorf("after SIGHUP: served certificate is not the new one")
	}

	// Broken replacements: each refused, the second certificate stays.
	for _, c := range []struct {
		name      string
		cert, key []byte
	}{
		{"not PEM", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), second.key},
		{"a certificate with another's key", third.cert, second.key},
	} {
		writeAtomic(t, certPath, c.cert)
		writeAtomic(t, keyPath, c.key)
		line := hup("reload webhook tls certificate")
		if line["level"] != "error" || fmt.Sprint(line["error"]) == "" || fmt.Sprint(line["error"]) == "<nil>" {
			t.Errorf("%s: logged %v, want an error line with the cause", c.name, line)
		}
		if got := servedCert(t, hookAddr); !bytes.Equal(got, second.der) {
			t.Errorf("%s: served certificate changed, want the last good one kept", c.name)
		}
		if code, ans := g.post(testSecret, notification("tls-"+c.name, time.Now().UnixMilli())); code != http.StatusOK {
			t.Errorf("%s: signed over TLS: got %d %s, want 200", c.name, code, ans)
		}
	}
	if err := g.stop(); err != nil {
		t.Errorf("SIGTERM: got exit %v, want a clean exit", err)
	}
}
