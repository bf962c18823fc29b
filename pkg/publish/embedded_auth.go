package publish

import (
	"fmt"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// gatewayInboxPrefix is the inbox of the gateway's own connection. Readers
// may subscribe to _INBOX.> only, so they never see the gateway's
// acknowledgements.
const gatewayInboxPrefix = "_NCS_GATEWAY_INBOX"

// ledgerConsumerName is the session ledger's durable consumer on the
// stream (ledger.ConsumerName, which imports this package): readers may
// not create, delete, pull from or acknowledge as it.
const ledgerConsumerName = "NCS_GATEWAY_LEDGER"

// embeddedAuth is the generated identity of the gateway on its embedded
// server: an nkey pair made at start, held in memory only.
type embeddedAuth struct {
	kp  nkeys.KeyPair
	pub string
}

// newEmbeddedAuth generates the gateway's identity.
func newEmbeddedAuth() (*embeddedAuth, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("generate embedded nats gateway key: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("generate embedded nats gateway key: %w", err)
	}
	return &embeddedAuth{kp: kp, pub: pub}, nil
}

// clientOptions are the options of the gateway's in-process connection.
func (a *embeddedAuth) clientOptions() []nats.Option {
	return []nats.Option{
		nats.Nkey(a.pub, a.kp.Sign),
		nats.CustomInboxPrefix(gatewayInboxPrefix),
	}
}

// configureAuth sets the users, permissions and TLS of opts: the gateway
// may do anything but only in-process; readers (declared users, and
// anonymous clients where allowed) may only read the stream.
// Anonymous clients, where cfg.Anonymous allows them, read on a loopback
// listener, or where every client has presented a certificate the CA
// signed; elsewhere there are none.
func configureAuth(opts *server.Options, cfg EmbeddedConfig, gw *embeddedAuth) error {
	reader := readerPermissions(cfg.Stream, cfg.SubjectPrefix, cfg.LedgerBucket)
	opts.Nkeys = []*server.NkeyUser{{
		Nkey:                   gw.pub,
		AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
	}}
	for _, u := range cfg.Users {
		if u.NKey != "" {
			opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: reader})
			continue
		}
		opts.Users = append(opts.Users, &server.User{Username: u.User, Password: u.Password, Permissions: reader})
	}
	if cfg.Anonymous && (loopbackHost(opts.Host) || cfg.TLSCAFile != "") {
		// The anonymous identity: an nkey nobody holds the seed of, so it
		// can only be reached by connecting without credentials.
		anon, err := newEmbeddedAuth()
		if err != nil {
			return err
		}
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: anon.pub, Permissions: reader})
		opts.NoAuthUser = anon.pub
	}
	if cfg.TLSCertFile != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: cfg.TLSCertFile,
			KeyFile:  cfg.TLSKeyFile,
			CaFile:   cfg.TLSCAFile,
			Verify:   cfg.TLSCAFile != "",
		})
		if err != nil {
			return fmt.Errorf("load embedded nats tls: %w", err)
		}
		opts.TLSConfig = tc
		opts.TLSVerify = cfg.TLSCAFile != ""
		opts.TLSTimeout = 2
	}
	return nil
}

// readerPermissions allow what a consumer of the stream needs, in NATS's
// own terms (the JetStream API subjects, NATS's "JetStream API
// permissions"), and nothing else: no publish under the prefix, no stream
// management, no message deletion. With a ledger bucket, readers also read
// the bucket as `nats kv get/watch/ls` do. The deny lists, which win over
// the allow lists, keep readers off the ledger's consumer and off the KV
// subjects, where they would see the gateway's reply subjects.
func readerPermissions(stream, prefix, bucket string) *server.Permissions {
	api := func(format string) string { return fmt.Sprintf(format, stream) }
	pub := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		api("$JS.API.STREAM.INFO.%s"),
		api("$JS.API.STREAM.MSG.GET.%s"),
		api("$JS.API.DIRECT.GET.%s"),
		api("$JS.API.DIRECT.GET.%s.>"),
		// Consumers: named in the subject, with an optional filter
		// (CREATE.<stream>.<name>.<filter>, what nats.go and natscli
		// send to nats-server 2.9 and later), and the legacy durable
		// form; their info, lists, pulls, deletion (natscli's pager and
		// nats.go's ordered consumer delete their own). Not the legacy
		// CREATE.<stream>, whose consumer is named in the body, where
		// no permission can see it: with it, a reader replaced the
		// ledger's durable consumer by one of its own.
		api("$JS.API.CONSUMER.CREATE.%s.>"),
		api("$JS.API.CONSUMER.DURABLE.CREATE.%s.*"),
		api("$JS.API.CONSUMER.INFO.%s.*"),
		api("$JS.API.CONSUMER.NAMES.%s"),
		api("$JS.API.CONSUMER.LIST.%s"),
		api("$JS.API.CONSUMER.MSG.NEXT.%s.*"),
		api("$JS.API.CONSUMER.DELETE.%s.*"),
		// Acknowledgements and push consumers' flow control replies.
		api("$JS.ACK.%s.>"),
		api("$JS.FC.%s.>"),
	}
	// The ledger's consumer is the gateway's: a reader that created it
	// first, deleted it, pulled from it or acknowledged as it would make
	// the ledger skip or stall. Its info stays readable (its lag).
	lc := func(format string) string { return fmt.Sprintf(format, stream, ledgerConsumerName) }
	denyPub := []string{
		lc("$JS.API.CONSUMER.CREATE.%s.%s"),
		lc("$JS.API.CONSUMER.CREATE.%s.%s.>"),
		lc("$JS.API.CONSUMER.DURABLE.CREATE.%s.%s"),
		lc("$JS.API.CONSUMER.DELETE.%s.%s"),
		lc("$JS.API.CONSUMER.MSG.NEXT.%s.%s"),
		lc("$JS.ACK.%s.%s.>"),
		lc("$JS.FC.%s.%s.>"),
		"$KV.>", // nobody but the gateway writes a bucket
	}
	if bucket != "" {
		// Read-only: stream info, direct and plain gets (kv get),
		// ordered consumers with their flow control (kv watch, kv ls of
		// keys), which delete themselves; no acknowledgements (ordered
		// consumers take none), purge, delete or update.
		kv := func(format string) string { return fmt.Sprintf(format, "KV_"+bucket) }
		pub = append(pub,
			kv("$JS.API.STREAM.INFO.%s"),
			kv("$JS.API.STREAM.MSG.GET.%s"),
			kv("$JS.API.DIRECT.GET.%s"),
			kv("$JS.API.DIRECT.GET.%s.>"),
			kv("$JS.API.CONSUMER.CREATE.%s.>"),
			kv("$JS.API.CONSUMER.INFO.%s.*"),
			kv("$JS.API.CONSUMER.MSG.NEXT.%s.*"),
			kv("$JS.API.CONSUMER.DELETE.%s.*"),
			kv("$JS.FC.%s.>"),
		)
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: pub, Deny: denyPub},
		Subscribe: &server.SubjectPermission{
			Allow: []string{
				prefix + ".>",
				"_INBOX.>", // API replies and delivered messages
			},
			// Not in the allow list either; said twice because a
			// reader there would see the gateway's KV reply subjects.
			Deny: []string{"$KV.>"},
		},
	}
}
