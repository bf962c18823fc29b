package ledger_test

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ledger"
)

// Example shows the wiring the daemon does: the ledger.* keys, the
// stream, prefix and replicas of the nats.* keys, and the publisher's
// connection ((*publish.Publisher).Conn()).
func Example() {
	var nc *nats.Conn // the publisher's connection
	cfg := ledger.Config{
		Enabled:       true,                      // ledger.enabled
		Bucket:        ledger.DefaultBucket,      // ledger.bucket
		UploadGrace:   ledger.DefaultUploadGrace, // ledger.upload_grace
		StallAfter:    ledger.DefaultStallAfter,  // ledger.stall_after
		Stream:        "AGORA_NCS",               // nats.stream
		SubjectPrefix: "agora.ncs",               // nats.subject_prefix
		Replicas:      1,                         // nats.stream_replicas
	}
	if err := cfg.Validate(); err != nil { // -check-config calls the same
		return
	}
	if nc == nil {
		return // (no NATS in this example)
	}
	l, err := ledger.New(cfg, nc, zap.NewNop(), prometheus.DefaultRegisterer)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.Run(ctx) // in the daemon's errgroup; -status shows l.Status(), -sessions l.Sessions()
	// Output:
}
