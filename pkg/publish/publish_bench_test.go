package publish

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// BenchmarkPublish compares a bare jetstream PublishMsg with ack against
// Publisher.Publish, over TCP and in-process, against an embedded server
// that fsyncs before every ack (sync=always, the default) or every 2 minutes
// (nats-server's default). "seq" publishes one at a time (latency); "par"
// runs 16 goroutines per CPU as concurrent webhook requests would.
//
//	go test ./pkg/publish -run '^$' -bench BenchmarkPublish -benchtime 2s
func BenchmarkPublish(b *testing.B) {
	body := make([]byte, 600) // a typical Agora notification
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	for _, sync := range []struct {
		name     string
		interval time.Duration
	}{{"sync=always", 0}, {"sync=2m", 2 * time.Minute}} {
		b.Run(sync.name, func(b *testing.B) {
			emb, writer := startBenchServer(b, EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), SyncInterval: sync.interval})
			defer emb.Shutdown()

			for _, mode := range []string{"bare_tcp", "bare_inprocess", "publisher_tcp", "publisher_inprocess"} {
				publish := benchPublishFunc(b, emb, writer, mode)
				var seq atomic.Int64
				msg := func() Message {
					n := seq.Add(1)
					return Message{
						Subject: "agora.ncs.3.31",
						ID:      mode + "-" + strconv.FormatInt(n, 10),
						Header:  nats.Header{"Agora-Signature-V2": []string{"de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24"}},
						Data:    body,
					}
				}
				b.Run(mode+"/seq", func(b *testing.B) {
					for b.Loop() {
						if err := publish(msg()); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run(mode+"/par", func(b *testing.B) {
					b.SetParallelism(16)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := publish(msg()); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}

// startBenchServer starts the embedded server as StartEmbedded does, plus
// a user that may write over TCP too (which StartEmbedded never allows),
// for the benchmark's TCP baselines.
func startBenchServer(b *testing.B, cfg EmbeddedConfig) (*Embedded, *embeddedAuth) {
	b.Helper()
	cfg.Stream, cfg.SubjectPrefix = DefaultStream, DefaultSubjectPrefix
	opts, err := embeddedOptions(cfg)
	if err != nil {
		b.Fatalf("embedded options: %v", err)
	}
	gw, err := newEmbeddedAuth()
	if err != nil {
		b.Fatal(err)
	}
	writer, err := newEmbeddedAuth()
	if err != nil {
		b.Fatal(err)
	}
	if err := configureAuth(opts, cfg, gw); err != nil {
		b.Fatalf("configure auth: %v", err)
	}
	opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: writer.pub})
	emb, err := startServer(opts, 0, zap.NewNop())
	if err != nil {
		b.Fatalf("start embedded: %v", err)
	}
	emb.auth = gw
	return emb, writer
}

// benchPublishFunc returns a publish function for mode, with the stream
// created; its connections close when b ends. Bare clients and the TCP
// publisher use writer's key.
func benchPublishFunc(b *testing.B, emb *Embedded, writer *embeddedAuth, mode string) func(Message) error {
	b.Helper()
	switch mode {
	case "bare_tcp", "bare_inprocess":
		opts := []nats.Option{nats.Name("bench"), nats.Nkey(writer.pub, writer.kp.Sign)}
		if mode == "bare_inprocess" {
			opts = append(opts, nats.InProcessServer(emb.Server()))
		}
		nc, err := nats.Connect(emb.ClientURL(), opts...)
		if err != nil {
			b.Fatalf("connect: %v", err)
		}
		b.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatalf("jetstream: %v", err)
		}
		_, err = js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
			Name: DefaultStream, Subjects: []string{DefaultSubjectPrefix + ".>"},
			Storage: jetstream.FileStorage, Duplicates: DefaultDuplicateWindow, MaxAge: DefaultStreamMaxAge,
		})
		if err != nil {
			b.Fatalf("create stream: %v", err)
		}
		return func(m Message) error {
			ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
			defer cancel()
			_, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, jetstream.WithMsgID(m.ID))
			return err
		}
	default:
		cfg := testConfig(emb.ClientURL(), b.TempDir())
		cfg.SpoolPath = filepath.Join(b.TempDir(), "spool.db")
		seed, err := writer.kp.Seed()
		if err != nil {
			b.Fatal(err)
		}
		cfg.NkeySeedFile = filepath.Join(b.TempDir(), "writer.nk")
		if err := os.WriteFile(cfg.NkeySeedFile, seed, 0o600); err != nil {
			b.Fatal(err)
		}
		if mode == "publisher_inprocess" {
			cfg.NkeySeedFile = "" // the gateway's own identity
			cfg.URL, cfg.Embedded = "", emb
		}
		p, err := New(cfg, zap.NewNop(), nil)
		if err != nil {
			b.Fatalf("new publisher: %v", err)
		}
		b.Cleanup(func() { _ = p.Close(context.Background()) })
		return func(m Message) error {
			out, err := p.Publish(context.Background(), m)
			if err == nil && out != Published {
				err = fmt.Errorf("outcome: got %v, want published", out)
			}
			return err
		}
	}
}
