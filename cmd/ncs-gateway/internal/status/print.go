package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ncs-gateway/ncs-gateway/pkg/publish"
	"github.com/ncs-gateway/ncs-gateway/pkg/publish/ledger"
)

// Fetch asks the running daemon's admin endpoint (admin.listen) for its
// status: -status's way in when the control socket is not there.
func Fetch(ctx context.Context, adminListen string) (Daemon, error) {
	host, port, err := net.SplitHostPort(adminListen)
	if err != nil {
		return Daemon{}, fmt.Errorf("admin.listen: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/status"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Daemon{}, fmt.Errorf("status: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Daemon{}, fmt.Errorf("status: is the daemon running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Daemon{}, fmt.Errorf("status: %s answered %s", url, resp.Status)
	}
	var st Daemon
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st); err != nil {
		return Daemon{}, fmt.Errorf("status: decode %s: %w", url, err)
	}
	return st, nil
}

// Print writes what an operator at the terminal wants to know first.
func (st Daemon) Print(w io.Writer) {
	ready := "yes"
	if !st.Ready {
		ready = "NO: " + strings.Join(st.NotReady, "; ")
	}
	fmt.Fprintf(w, "ncs-gateway %s, ready: %s\n\n", st.Version, ready)

	al := st.Allowlist
	fmt.Fprintf(w, "allowlist (%s backend, ports %v)\n", al.Backend, al.Ports)
	if al.FetchedAt != nil {
		fmt.Fprintf(w, "  from:      %s at %s (%s ago)\n", al.Source, al.FetchedAt.Format(time.RFC3339),
			(time.Duration(al.AgeSeconds) * time.Second).Round(time.Second))
	} else {
		fmt.Fprintln(w, "  from:      never fetched")
	}
	fmt.Fprintf(w, "  addresses: %d  %s\n", len(al.Addresses), strings.Join(al.Addresses, " "))
	fmt.Fprintf(w, "  static:    %d  %s\n", len(al.StaticAllow), strings.Join(al.StaticAllow, " "))
	if r := al.LastRefresh; r != nil {
		result := "ok"
		if !r.OK {
			result = fmt.Sprintf("FAILED (%s): %s", r.Reason, r.Error)
		}
		fmt.Fprintf(w, "  last refresh: %s, %s\n", r.At.Format(time.RFC3339), result)
	}
	if al.PersistError != "" {
		fmt.Fprintf(w, "  NOT SAVED to state_dir (retried at every reconcile): %s\n", al.PersistError)
	}
	fmt.Fprintln(w)
	st.Webhook.Print(w)
	n := st.NATS
	conn := "connected"
	if !n.Connected {
		conn = "DISCONNECTED"
	}
	fmt.Fprintf(w, "nats %s (%s)\n", n.ServerURL, conn)
	if n.ConnectedServer != "" {
		fmt.Fprintf(w, "  server: %s", n.ConnectedServer)
		if n.ConnectedCluster != "" {
			fmt.Fprintf(w, " in cluster %s", n.ConnectedCluster)
		}
		fmt.Fprintln(w)
	}
	if n.StreamError != "" {
		fmt.Fprintf(w, "  stream %s: unknown (%s)\n", n.Stream, n.StreamError)
	} else {
		fmt.Fprintf(w, "  stream %s: %d messages, %d bytes\n", n.Stream, n.StreamMessages, n.StreamBytes)
	}
	printStreamPeers(w, n)
	fmt.Fprintf(w, "  spool: %d messages, %d of %d bytes", n.SpoolDepth, n.SpoolBytes, n.SpoolMaxBytes)
	if n.SpoolDepth > 0 {
		fmt.Fprintf(w, ", oldest waiting %s", (time.Duration(n.OldestSpooledAgeSeconds) * time.Second).Round(time.Second))
	}
	fmt.Fprintln(w)
	if st.Ledger != nil {
		fmt.Fprintln(w)
		printLedger(w, *st.Ledger)
	}
}

// printLedger says how far the session ledger is behind the stream and
// what its records hold.
func printLedger(w io.Writer, l ledger.Status) {
	if !l.Enabled {
		fmt.Fprintln(w, "session ledger: off (ledger.enabled: false)")
		return
	}
	lag := "caught up"
	if !l.CaughtUp {
		lag = fmt.Sprintf("BEHIND by %d notifications, %s (no time flag is raised until it catches up)",
			l.LagMessages, (time.Duration(l.LagSeconds) * time.Second).Round(time.Second))
	}
	if !l.Ready {
		lag = "NOT READY (bucket or consumer not set up yet: is NATS reachable?)"
	}
	fmt.Fprintf(w, "session ledger (bucket %s, consumer %s): %s\n", l.Bucket, l.Consumer, lag)
	loaded := ""
	if !l.IndexLoaded {
		loaded = " (still loading the bucket)"
	}
	fmt.Fprintf(w, "  sessions: %d recording, %d exited, %d completed%s\n",
		l.Sessions[ledger.StateRecording], l.Sessions[ledger.StateExited], l.Completed, loaded)
	var flags []string
	for _, f := range ledger.AllFlags {
		if n := l.Flagged[f]; n > 0 {
			flags = append(flags, fmt.Sprintf("%s %d", f, n))
		}
	}
	if len(flags) > 0 {
		fmt.Fprintf(w, "  flagged:  %s (ncs-gateway -sessions lists them)\n", strings.Join(flags, ", "))
	}
	if l.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", l.LastError)
	}
}

// PrintSessions writes the ledger's open and flagged sessions, one a line,
// for -sessions.
func PrintSessions(w io.Writer, sessions []ledger.Summary) {
	if len(sessions) == 0 {
		fmt.Fprintln(w, "no session is recording or flagged")
		return
	}
	fmt.Fprintf(w, "%-40s %-20s %-10s %-8s %-24s %s\n", "SID", "CNAME", "STATE", "OUTCOME", "FLAGS", "LAST HEARD")
	for _, s := range sessions {
		last := "-"
		if s.LastSeenMs > 0 {
			last = time.UnixMilli(s.LastSeenMs).UTC().Format(time.RFC3339)
		}
		flags := strings.Join(s.Flags, ",")
		if flags == "" {
			flags = "-"
		}
		outcome := s.Outcome
		if outcome == "" {
			outcome = "-"
		}
		fmt.Fprintf(w, "%-40s %-20s %-10s %-8s %-24s %s\n", s.SID, s.Cname, s.State, outcome, flags, last)
	}
}

// Print says how far the host's clock is from Agora's notifyMs, and whether
// that is enough for the webhook to refuse notifications as stale or future.
func (ws Webhook) Print(w io.Writer) {
	if ws.ClockSkewSeconds == nil {
		fmt.Fprintf(w, "webhook clock: no signed notification with notifyMs seen yet (refuses notifyMs older than %s or more than %s ahead)\n\n", ws.MaxNotifyAge, ws.MaxNotifyFuture)
		return
	}
	skew := time.Duration(*ws.ClockSkewSeconds * float64(time.Second)).Round(time.Millisecond)
	verdict := "ok"
	if age, err := time.ParseDuration(ws.MaxNotifyAge); err == nil && skew > age {
		verdict = "WRONG CLOCK or replays: notifications this old are refused as stale (check timedatectl, chrony)"
	}
	if future, err := time.ParseDuration(ws.MaxNotifyFuture); err == nil && -skew > future {
		verdict = "WRONG CLOCK: notifications this far ahead are refused as future (check timedatectl, chrony)"
	}
	fmt.Fprintf(w, "webhook clock: this host minus notifyMs = %s at %s: %s\n\n", skew, ws.SkewSeenAt.Format(time.RFC3339), verdict)
}

// printStreamPeers prints the stream's replicas and contract problems.
func printStreamPeers(w io.Writer, n publish.Status) {
	if len(n.StreamPeers) > 0 {
		leader := n.StreamLeader
		if leader == "" {
			leader = "NONE (election in progress?)"
		}
		fmt.Fprintf(w, "  leader: %s\n", leader)
		for _, p := range n.StreamPeers {
			state := "current"
			switch {
			case p.Offline:
				state = "OFFLINE"
			case !p.Current:
				state = fmt.Sprintf("NOT CURRENT (%d behind, last seen %.1fs ago)", p.Lag, p.ActiveSeconds)
			}
			role := "replica"
			if p.Leader {
				role = "leader "
			}
			fmt.Fprintf(w, "    %s %s: %s\n", role, p.Name, state)
		}
	}
	for _, p := range n.StreamProblems {
		fmt.Fprintf(w, "  STREAM PROBLEM %s\n", p)
	}
}
