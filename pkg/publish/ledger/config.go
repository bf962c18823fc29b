package ledger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
)

// Defaults of the ledger.* configuration keys.
const (
	DefaultBucket      = "NCS_SESSIONS"
	DefaultUploadGrace = time.Hour
	DefaultStallAfter  = 26 * time.Hour
)

// ConsumerName is the durable pull consumer the ledger reads the
// notification stream through; gateways sharing a stream share it.
const ConsumerName = "NCS_GATEWAY_LEDGER"

// minDuration is the shortest upload_grace and stall_after accepted:
// tests use seconds, and the ledger checks due times about every second.
const minDuration = time.Second

// Config is the ledger's configuration: the ledger.* keys, and the stream,
// subject prefix and replicas of the nats.* keys it shares.
type Config struct {
	Enabled       bool          // ledger.enabled
	Bucket        string        // ledger.bucket: the KV bucket of session records
	Stream        string        // nats.stream: the notification stream
	SubjectPrefix string        // nats.subject_prefix
	Replicas      int           // nats.stream_replicas: the bucket's replicas
	UploadGrace   time.Duration // ledger.upload_grace
	StallAfter    time.Duration // ledger.stall_after
	// Store, when set, stores the derived notifications: the daemon passes
	// its publisher, whose acknowledgements readers cannot spoof (they see
	// the reply subject of every publish under the prefix). Nil publishes
	// on the ledger's own connection, as tests do.
	Store DerivedStore
}

// DerivedStore stores one message in the notification stream and reports
// whether the stream already held its Nats-Msg-Id; *publish.Publisher's
// StoreDirect is one.
type DerivedStore interface {
	StoreDirect(ctx context.Context, m publish.Message) (duplicate bool, err error)
}

// DefaultConfig is the configuration with every default, for the default
// stream AGORA_NCS and prefix agora.ncs.
func DefaultConfig() Config {
	return Config{
		Enabled:       true,
		Bucket:        DefaultBucket,
		Stream:        "AGORA_NCS",
		SubjectPrefix: "agora.ncs",
		Replicas:      1,
		UploadGrace:   DefaultUploadGrace,
		StallAfter:    DefaultStallAfter,
	}
}

var (
	bucketRe  = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	streamRe  = regexp.MustCompile(`^[^.*>\s]+$`)
	subjectRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*$`)
)

// Validate reports every problem of the configuration at once, each
// naming its key and the fix. A disabled ledger is not checked.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if !bucketRe.MatchString(c.Bucket) {
		errs = append(errs, fmt.Errorf("ledger.bucket: %q is not a bucket name: use letters, digits, '_' and '-'", c.Bucket))
	}
	if c.UploadGrace < minDuration {
		errs = append(errs, fmt.Errorf("ledger.upload_grace: %s is too short: use 1s or more (default %s)", c.UploadGrace, DefaultUploadGrace))
	}
	if c.StallAfter < minDuration {
		errs = append(errs, fmt.Errorf("ledger.stall_after: %s is too short: use 1s or more (default %s)", c.StallAfter, DefaultStallAfter))
	}
	if !streamRe.MatchString(c.Stream) {
		errs = append(errs, fmt.Errorf("nats.stream: %q is not a stream name the ledger can read", c.Stream))
	}
	if !subjectRe.MatchString(c.SubjectPrefix) {
		errs = append(errs, fmt.Errorf("nats.subject_prefix: %q is not a subject prefix the ledger can read", c.SubjectPrefix))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("nats.stream_replicas: %d: the ledger's bucket needs 1 to 5 replicas", c.Replicas))
	}
	return errors.Join(errs...)
}
