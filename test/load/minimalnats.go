package main

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// minimalEmbedded is the minimal receiver's own in-process nats-server, the
// counterpart of the gateway's embedded NATS: JetStream file store in a
// directory of its own, fsync before every ack (the gateway's default,
// nats.embedded_sync_interval: always), the receiver connected in-process.
// It also listens on loopback TCP so the suite can count its stream.
type minimalEmbedded struct {
	srv *server.Server
}

// embeddedReadyTimeout bounds the start of the minimal's embedded server.
const embeddedReadyTimeout = 30 * time.Second

// startMinimalEmbedded starts the server with its store in dir and writes
// its client URL to urlFile (whole, then renamed) when urlFile is set.
func startMinimalEmbedded(dir, urlFile string) (*minimalEmbedded, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create embedded nats dir: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName:             "load-minimal",
		Host:                   "127.0.0.1",
		Port:                   server.RANDOM_PORT,
		JetStream:              true,
		StoreDir:               dir,
		SyncAlways:             true,
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create embedded nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(embeddedReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats server: not ready after %s", embeddedReadyTimeout)
	}
	e := &minimalEmbedded{srv: srv}
	if urlFile != "" {
		if err := writeFileAtomic(urlFile, srv.ClientURL()); err != nil {
			e.shutdown()
			return nil, err
		}
	}
	return e, nil
}

// connect opens the receiver's in-process connection.
func (e *minimalEmbedded) connect() (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(e.srv), nats.Name("load-minimal-receiver"))
	if err != nil {
		return nil, fmt.Errorf("connect embedded nats in-process: %w", err)
	}
	return nc, nil
}

// shutdown stops the server and waits until it has stopped.
func (e *minimalEmbedded) shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// writeFileAtomic writes s to path whole, then renames it, so a reader
// never sees half.
func writeFileAtomic(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
