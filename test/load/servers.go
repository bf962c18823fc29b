package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream settings shared with the gateway's defaults (cmd/ncs-gateway
// config.go and pkg/publish stream.go), so both baselines and the gateway
// write to the same kind of stream.
const (
	streamName        = "AGORA_NCS"
	streamSubjects    = "agora.ncs.>"
	streamDuplicates  = 2 * time.Hour
	streamMaxAge      = 7 * 24 * time.Hour
	publishTimeout    = 3 * time.Second
	maxBodyBytes      = 1 << 20
	minimalSubject    = "agora.ncs.minimal"
	answerOK          = `{"status":"ok"}`
	serverReadTimeout = 10 * time.Second
)

// serverFlags are the flags both baseline servers take.
type serverFlags struct {
	listen     string
	addrFile   string
	cpuProfile string
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "listen `address` (port 0 picks a free one)")
	fs.StringVar(&f.addrFile, "addr-file", "", "write the bound address to this `file` once listening")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to this `file` on exit")
}

// runEchoCmd is `serve-echo`: baseline 1, the cost of HTTP alone.
func runEchoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve-echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf serverFlags
	sf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(ctx, sf, http.HandlerFunc(echoHandler), stdout)
}

// echoHandler reads the body and answers 200, doing nothing else.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, `{"error":"cannot read body"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, answerOK)
}

// runMinimalCmd is `serve-minimal`: baseline 2, the essential work only.
func runMinimalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve-minimal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf serverFlags
	sf.register(fs)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS `URL` (loopback)")
	stream := fs.String("stream", streamName, "JetStream stream, created like the gateway's when absent")
	subject := fs.String("subject", minimalSubject, "subject to publish on (under the stream's agora.ncs.>)")
	secret := fs.String("secret", "", "HMAC `secret` (default $"+secretEnv+", else the quickstart secret)")
	embedded := fs.String("embedded", "", "run an in-process nats-server with its JetStream store in this `dir` "+
		"(fsync before every ack, like the gateway's embedded default) and publish to it in-process; -nats is then ignored")
	urlFile := fs.String("nats-url-file", "", "with -embedded: write the embedded server's loopback client URL to this `file`")
	decode := fs.String("decode", decodeScan, "how the noticeId is read: "+decodeScan+" (a byte scan for it) or "+
		decodeJSON+" (the envelope decoded with encoding/json, as a typical Go receiver does)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	idOf, err := noticeIDReader(*decode)
	if err != nil {
		return err
	}
	var nc *nats.Conn
	if *embedded != "" {
		emb, err := startMinimalEmbedded(*embedded, *urlFile)
		if err != nil {
			return err
		}
		defer emb.shutdown() // after nc.Close, deferred below
		if nc, err = emb.connect(); err != nil {
			return err
		}
	} else if nc, err = nats.Connect(*natsURL, nats.Name("load-minimal-receiver")); err != nil {
		return fmt.Errorf("connect nats %s: %w", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("create jetstream context: %w", err)
	}
	if err := ensureStream(ctx, js, *stream); err != nil {
		return err
	}
	h := &minimalHandler{key: []byte(secretFrom(*secret)), js: js, subject: *subject, noticeID: idOf}
	return serve(ctx, sf, h, stdout)
}

// ensureStream creates the stream with the gateway's settings when absent.
func ensureStream(ctx context.Context, js jetstream.JetStream, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{streamSubjects},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     streamMaxAge,
		Duplicates: streamDuplicates,
		Replicas:   1,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil // an existing stream (the gateway's) is used as it is
}

// jsPublisher is the one JetStream method the minimal receiver calls.
type jsPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// minimalHandler is what any receiver must do and nothing more: read the
// body, check its HMAC-SHA256 in constant time, publish it to JetStream
// with the noticeId as Nats-Msg-Id and wait for the ack, answer 200.
type minimalHandler struct {
	key     []byte
	js      jsPublisher
	subject string
	// noticeID reads the id from a verified body ("" when it has none):
	// scanNoticeID unless set.
	noticeID func([]byte) string
}

func (h *minimalHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readAll(r)
	if err != nil {
		http.Error(w, `{"error":"cannot read body"}`, http.StatusBadRequest)
		return
	}
	want, err := hex.DecodeString(r.Header.Get("Agora-Signature-V2"))
	mac := hmac.New(sha256.New, h.key)
	mac.Write(body)
	if err != nil || !hmac.Equal(mac.Sum(nil), want) {
		http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	idOf := h.noticeID
	if idOf == nil {
		idOf = scanNoticeID
	}
	id := idOf(body)
	if id == "" {
		http.Error(w, `{"error":"no noticeId"}`, http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: h.subject, Header: nats.Header{jetstream.MsgIDHeader: {id}}, Data: body}
	if _, err := h.js.PublishMsg(ctx, msg); err != nil {
		http.Error(w, `{"error":"publish failed"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, answerOK)
}

// readAll reads a body of at most maxBodyBytes, in one allocation when the
// length is known.
func readAll(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, errors.New("body too large")
	}
	if r.ContentLength >= 0 {
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return b, nil
}

// noticeIDKey is how the generator's bodies carry the id.
var noticeIDKey = []byte(`"noticeId":"`)

// scanNoticeID finds the noticeId without decoding JSON: the least a
// receiver must do to get a dedup key. It handles the compact form the
// generator sends (and Agora's), not every legal JSON spelling.
func scanNoticeID(body []byte) string {
	i := bytes.Index(body, noticeIDKey)
	if i < 0 {
		return ""
	}
	rest := body[i+len(noticeIDKey):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 || j > 256 {
		return ""
	}
	return string(rest[:j])
}

// serve listens on sf.listen, writes the bound address to sf.addrFile and
// serves h until ctx ends, with an optional CPU profile of the whole life.
func serve(ctx context.Context, sf serverFlags, h http.Handler, stdout io.Writer) error {
	if sf.cpuProfile != "" {
		f, err := os.Create(sf.cpuProfile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ln, err := net.Listen("tcp", sf.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", sf.listen, err)
	}
	addr := ln.Addr().String()
	if sf.addrFile != "" {
		if err := writeFileAtomic(sf.addrFile, addr); err != nil {
			ln.Close()
			return fmt.Errorf("write addr file: %w", err)
		}
	}
	fmt.Fprintf(stdout, "listening on %s\n", addr)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       serverReadTimeout,
		WriteTimeout:      serverReadTimeout,
		IdleTimeout:       90 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	<-errc
	return nil
}
