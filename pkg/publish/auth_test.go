package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// startAuthNATS starts a JetStream server that demands the given user and
// password, or token when user is empty.
func startAuthNATS(t *testing.T, user, password, token string) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(),
		Username: user, Password: password, Authorization: token,
	})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

func TestAuthenticationAndRedaction(t *testing.T) {
	const secret = "s3cret-Pw"
	tests := []struct {
		name      string
		user, pw  string // what the server wants
		token     string
		configure func(c *Config, url string)
		want      Outcome
	}{
		{"user and password", "gw", secret, "", func(c *Config, _ string) { c.User, c.Password = "gw", secret }, Published},
		{"wrong password", "gw", secret, "", func(c *Config, _ string) { c.User, c.Password = "gw", secret+"x" }, Spooled},
		{"token", "", "", secret, func(c *Config, _ string) { c.Token = secret }, Published},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAuthNATS(t, tt.user, tt.pw, tt.token)
			cfg := testConfig(srv.ClientURL(), t.TempDir())
			cfg.PublishTimeout = 2 * time.Second
			tt.configure(&cfg, srv.ClientURL())
			p := newTestPublisher(t, cfg, false)

			if tt.want == Published {
				eventually(t, 5*time.Second, "connect", func() error {
					if !p.Status(context.Background()).Connected {
						return errors.New("not connected")
					}
					return nil
				})
			}
			out, err := p.Publish(context.Background(), testMsg(0))
			if err != nil || out != tt.want {
				t.Fatalf("publish: got %v, %v, want %v, nil", out, err, tt.want)
			}
			st := p.Status(context.Background())
			if strings.Contains(st.ServerURL, secret) {
				t.Errorf("status server url: got %q, want no secret", st.ServerURL)
			}
			for _, e := range p.logs.All() {
				line := e.Message
				for k, v := range e.ContextMap() {
					line += fmt.Sprintf(" %s=%v", k, v)
				}
				if strings.Contains(line, secret) {
					t.Errorf("log line: got %q, want no secret", line)
				}
			}
		})
	}
}

// TestPasswordInURLRefused: nats.url must not carry credentials, and the
// refusal does not repeat the password.
func TestPasswordInURLRefused(t *testing.T) {
	const secret = "s3cret-Pw"
	cfg := testConfig("nats://gw:"+secret+"@127.0.0.1:4222", t.TempDir())
	_, err := New(cfg, zap.NewNop(), nil)
	if err == nil || !strings.Contains(err.Error(), "nats.url") || strings.Contains(err.Error(), secret) {
		t.Errorf("new with a password in the url: got %v, want a nats.url error without the password", err)
	}
}
