package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestServerTLSOnlyHTTP1 shows that with TLS on, an HTTP/2-capable client
// gets HTTP/1.1: HTTP/2's 250 streams per connection would let
// max_connections no longer bound memory. Before, this client spoke h2.
func TestServerTLSOnlyHTTP1(t *testing.T) {
	certFile, keyFile, cert := writeCert(t, t.TempDir(), "h1")
	cfg := testConfig()
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	s, err := NewServer(cfg, &fakePublisher{}, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	startServer(t, s)
	addr := s.Addr().String()
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	// net/http's client, told to try HTTP/2 and offering h2 first.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}},
	}}
	code, _ := do(t, client, http.MethodPost, "https://"+addr+testPath, []byte(vectorA), http.Header{HeaderSignatureV2: {vectorASHA2}})
	if code != http.StatusOK {
		t.Fatalf("got status %d, want 200", code)
	}
	resp, err := client.Get("https://" + addr + testPath)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("got %s, ALPN %q; want HTTP/1.1 negotiated as http/1.1", resp.Proto, resp.TLS.NegotiatedProtocol)
	}

	// A client that offers h2 alone gets no h2: the handshake fails, or
	// ends without a protocol.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err == nil {
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
			t.Errorf("got ALPN %q for an h2-only client, want none", p)
		}
	}
}
