package publish_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
)

// Example shows the daemon's wiring: the embedded server, the publisher and
// its forwarder owned by an errgroup, and the shutdown order.
func Example() {
	log := zap.NewExample()
	stateDir := "/var/lib/ncs-gateway"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	syncInterval, _ := publish.ParseSyncInterval("always")
	emb, err := publish.StartEmbedded(publish.EmbeddedConfig{
		Listen:       publish.DefaultEmbeddedListen,
		StoreDir:     stateDir,
		SyncInterval: syncInterval,
		Anonymous:    true, // nats.embedded_anonymous: local processes read without a user
	}, log.Named("nats"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer emb.Shutdown() // after the publisher has drained

	// Fields left zero take the defaults (publish.DefaultStream, ...).
	cfg := publish.Config{
		Embedded:  emb, // or URL: "nats://..." for an external server
		SpoolPath: filepath.Join(stateDir, "spool.db"),
	}
	p, err := publish.New(cfg, log, prometheus.DefaultRegisterer)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(closeCtx)
	}()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Run(ctx) })

	// In the webhook handler: 200 for Published or Spooled, 503 for
	// ErrUnavailable.
	out, err := p.Publish(ctx, publish.Message{
		Subject: "agora.ncs.3.31",
		ID:      "4eb720f0-8da7-11e9-a43e-53f411c2761f",
		Header:  nats.Header{"Agora-Signature-V2": []string{"..."}},
		Data:    []byte(`{"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f"}`),
	})
	fmt.Println(out, err)

	_ = g.Wait()
}
