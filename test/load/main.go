// Command load is ncs-gateway's load and benchmark tool. It posts distinct,
// correctly signed Cloud Recording notifications over loopback and measures
// events/s, latency percentiles, CPU time per event and peak RSS of the
// gateway side by side with two baselines from the same run: a no-work echo
// server and a minimal receiver (read, HMAC, JetStream publish with ack, 200).
// It also floods the gateway with hostile traffic while measuring valid
// notifications (attack), runs it for minutes at a steady rate (soak), and
// runs all three for one report (all).
//
// Usage:
//
//	go run ./test/load suite [-d 10s] [-c 1,32,256] [-quick] [-out FILE]
//	go run ./test/load all [-quick] [-out FILE]
//	go run ./test/load attack [-d 30s] [-nofile N] [-quick] [-out FILE]
//	go run ./test/load soak [-d 3m] [-rate 500] [-c 16] [-quick] [-out FILE]
//	go run ./test/load gen -url URL [-secret S] [-c 32] [-d 10s] [-n MAX] [-sizes 200:8192]
//	go run ./test/load serve-echo [-listen ADDR]
//	go run ./test/load serve-minimal [-listen ADDR] [-nats URL] [-stream NAME]
//
// Every run is bounded in time and count, sends traffic to 127.0.0.1 only,
// and stops every process it started, also on error and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks a command line that cannot run; main exits 2 for it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// usage is printed for a missing or unknown subcommand.
const usage = `usage: go run ./test/load COMMAND [flags]

commands:
  suite          build the gateway and nats-server, run every target at every
                 concurrency against both NATS setups, print a Markdown table
  all            suite, attack and soak in one run, one report with the machine
                 and date: the README's figures (-quick: a shortened smoke run)
  attack         valid notifications at a fixed rate, alone and then under a flood
                 of forged, oversized, slow and idle connections; p99, memory,
                 goroutines, and the stream holding exactly the valid ones
  soak           paced load for minutes on the embedded NATS; RSS, heap,
                 goroutines, fds and spool over time, flat or growing
  ledger         the session ledger's cost on the webhook (on against off in one
                 run), its catch-up, and peak RSS with 100,000 open sessions
  gen            post signed notifications to a URL and report events/s and latency
  serve-echo     baseline 1: answer 200 after reading the body, no other work
  serve-minimal  baseline 2: read, verify HMAC-SHA256, JetStream publish with ack, 200

run "go run ./test/load COMMAND -h" for a command's flags.
`

// run is the whole program with its inputs injected.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "suite":
		return runSuiteCmd(ctx, rest, stdout, stderr)
	case "attack":
		return runAttackCmd(ctx, rest, stdout, stderr)
	case "soak":
		return runSoakCmd(ctx, rest, stdout, stderr)
	case "all":
		return runAllCmd(ctx, rest, stdout, stderr)
	case "ledger":
		return runLedgerCmd(ctx, rest, stdout, stderr)
	case "gen":
		return runGenCmd(ctx, rest, stdout, stderr)
	case "serve-echo":
		return runEchoCmd(ctx, rest, stdout, stderr)
	case "serve-minimal":
		return runMinimalCmd(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "load: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}
