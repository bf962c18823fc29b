package main

import (
	"context"
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
	"time"
)

// loadTLS is the TLS side of a run over HTTPS: a self-signed certificate
// made at start for 127.0.0.1, its files for the gateway, and the client
// configuration that trusts it.
type loadTLS struct {
	certFile, keyFile string
	client            *tls.Config // offers h2 first, as a modern client does
}

// newLoadTLS writes a fresh self-signed P-256 certificate for 127.0.0.1
// into dir.
func newLoadTLS(dir string) (*loadTLS, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate tls key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "ncs-gateway load test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create tls certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal tls key: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse tls certificate: %w", err)
	}
	t := &loadTLS{certFile: filepath.Join(dir, "webhook-cert.pem"), keyFile: filepath.Join(dir, "webhook-key.pem")}
	if err := os.WriteFile(t.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("write tls certificate: %w", err)
	}
	if err := os.WriteFile(t.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("write tls key: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	t.client = &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	return t, nil
}

// withTLS makes tr speak HTTPS with c, trying HTTP/2 as browsers and most
// clients do (the gateway must still answer in HTTP/1.1); nil c leaves tr
// alone.
func withTLS(tr *http.Transport, c *tls.Config) *http.Transport {
	if c != nil {
		tr.TLSClientConfig = c.Clone()
		tr.ForceAttemptHTTP2 = true
	}
	return tr
}

// negotiatedProto posts nothing: one GET to url with an h2-capable client,
// and returns the protocol the server chose, e.g. "HTTP/1.1 (ALPN http/1.1)".
func negotiatedProto(ctx context.Context, url string, c *tls.Config) (string, error) {
	tr := withTLS(newTransport(1), c)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("protocol check: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", fmt.Errorf("protocol check: %w", err)
	}
	resp.Body.Close()
	alpn := "none"
	if resp.TLS != nil && resp.TLS.NegotiatedProtocol != "" {
		alpn = resp.TLS.NegotiatedProtocol
	}
	return fmt.Sprintf("%s (ALPN %s)", resp.Proto, alpn), nil
}

// dialTLS completes a TLS handshake over conn for the hand-written
// HTTP/1.1 attackers; it offers http/1.1 only, since they speak it.
func dialTLS(ctx context.Context, conn net.Conn, addr string, c *tls.Config) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := c.Clone()
	cfg.ServerName = host // an IP: verified against the certificate's IP SANs
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}
