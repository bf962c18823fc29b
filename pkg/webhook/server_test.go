package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files and returns their paths and the parsed certificate.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatalf("write cert: %v", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatalf("write key: %v", err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return certFile, keyFile, cert
}

// startServer starts s and shuts it down at the end of the test.
func startServer(t *testing.T, s *Server) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := s.Wait(); err != nil {
			t.Errorf("wait: %v", err)
		}
	})
}

func TestServerHTTP(t *testing.T) {
	pub := &fakePublisher{}
	s, err := NewServer(testConfig(), pub, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if s.Addr() != nil {
		t.Errorf("got addr %v before start, want nil", s.Addr())
	}
	startServer(t, s)
	if err := s.Start(); err == nil {
		t.Errorf("second start: got nil error, want one")
	}
	url := "http://" + s.Addr().String() + testPath
	body := fixture(t, "uploaded.json")
	code, answer := do(t, http.DefaultClient, http.MethodPost, url, body, http.Header{HeaderSignatureV2: {signSHA256(testSecret, body)}})
	if code != http.StatusOK {
		t.Fatalf("got %d %s, want 200", code, answer)
	}
	if got := len(pub.messages()); got != 1 {
		t.Errorf("got %d messages, want 1", got)
	}
	if want := `{"status":"ok","noticeId":"2000001428:4330:107","outcome":"published"}`; string(answer) != want {
		t.Errorf("got answer %s, want %s", answer, want)
	}
}

func TestServerTimeouts(t *testing.T) {
	s, err := NewServer(testConfig(), &fakePublisher{}, nil, nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{"read header", s.srv.ReadHeaderTimeout, readHeaderTimeout},
		{"read", s.srv.ReadTimeout, readTimeout},
		{"write", s.srv.WriteTimeout, writeTimeout},
		{"idle", s.srv.IdleTimeout, idleTimeout},
	}
	for _, tt := range tests {
		if tt.got <= 0 || tt.got != tt.want {
			t.Errorf("%s timeout: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if s.srv.IdleTimeout < 10*time.Second {
		t.Errorf("got idle timeout %v, want at least 10s", s.srv.IdleTimeout)
	}
	if s.cfg.PublishTimeout >= s.srv.WriteTimeout || s.srv.WriteTimeout >= 10*time.Second {
		t.Errorf("got publish %v, write %v, want publish < write < 10s", s.cfg.PublishTimeout, s.srv.WriteTimeout)
	}
	if s.srv.MaxHeaderBytes <= 0 || s.srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("got max header bytes %d, want a modest positive limit", s.srv.MaxHeaderBytes)
	}
}

// TestServerSlowHeaders shows a client that never finishes its headers is
// cut off instead of holding a connection.
func TestServerSlowHeaders(t *testing.T) {
	s, err := NewServer(testConfig(), &fakePublisher{}, nil, nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	startServer(t, s)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST " + testPath + " HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(readHeaderTimeout + 3*time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	buf := make([]byte, 512)
	_, err = conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("got no answer within %v, want the server to close the connection", readHeaderTimeout+3*time.Second)
	}
}

func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "first")
	cfg := testConfig()
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	pub := &fakePublisher{}
	s, err := NewServer(cfg, pub, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	startServer(t, s)
	url := "https://" + s.Addr().String() + testPath

	client := func(c *x509.Certificate, maxVersion uint16) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(c)
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion},
		}}
	}
	body := []byte(vectorA)
	sig := http.Header{HeaderSignatureV2: {vectorASHA2}}
	if code, answer := do(t, client(cert, 0), http.MethodPost, url, body, sig); code != http.StatusOK {
		t.Fatalf("got %d %s, want 200", code, answer)
	}
	if got := len(pub.messages()); got != 1 {
		t.Errorf("got %d messages, want 1", got)
	}

	// TLS 1.1 and below are refused.
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(vectorA))
	if _, err := client(cert, tls.VersionTLS11).Do(req); err == nil {
		t.Errorf("TLS 1.1 client: got nil error, want a handshake failure")
	}
	// Plain HTTP on the TLS port gets no 200.
	if resp, err := http.Post("http://"+s.Addr().String()+testPath, "application/json", strings.NewReader(vectorA)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP on the TLS port: got 200, want a refusal")
		}
	}

	// A renewed certificate is served after ReloadCertificate.
	_, _, renewed := writeCert(t, dir, "renewed")
	if err := s.ReloadCertificate(); err != nil {
		t.Fatalf("reload certificate: %v", err)
	}
	resp, err := client(renewed, 0).Post(url, "application/json", strings.NewReader(vectorA))
	if err != nil {
		t.Fatalf("post after reload: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != "renewed" {
		t.Errorf("got certificate %q after reload, want %q", got, "renewed")
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("got TLS version %x, want at least 1.2", resp.TLS.Version)
	}
}

func TestServerBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Listen = ln.Addr().String()
	s, err := NewServer(cfg, &fakePublisher{}, nil, nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Errorf("got %v, want a listen error", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown of an unstarted server: got %v, want nil", err)
	}
}

// TestServerShutdownWaitsForPublish shows that Shutdown lets an in-flight
// notification finish and be answered.
func TestServerShutdownWaitsForPublish(t *testing.T) {
	release := make(chan struct{})
	pub := &gatePublisher{entered: make(chan struct{}), release: release}
	s, err := NewServer(testConfig(), pub, nil, nil)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	url := "http://" + s.Addr().String() + testPath
	codes := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(vectorA))
		req.Header.Set(HeaderSignatureV2, vectorASHA2)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			codes <- 0
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}()
	<-pub.entered
	// net/http runs the OnShutdown hooks right after closing the listeners:
	// release the publish only once Shutdown is really under way.
	closed := make(chan struct{})
	s.srv.RegisterOnShutdown(func() { close(closed) })
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not close the listener within 10 s")
	}
	close(release)
	if err := <-shut; err != nil {
		t.Errorf("shutdown: got %v, want nil", err)
	}
	if got := <-codes; got != http.StatusOK {
		t.Errorf("got status %d, want 200 for the in-flight request", got)
	}
}

// gatePublisher holds each Publish until release is closed.
type gatePublisher struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gatePublisher) Publish(ctx context.Context, _ Notification) (Outcome, error) {
	close(g.entered)
	select {
	case <-g.release:
		return Spooled, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
