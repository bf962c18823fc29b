package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Watch timings.
const (
	// watchPollInterval is how often the iptables backend reads its rules
	// and sets back: ipsets (and iptables-legacy) send no events.
	watchPollInterval = time.Second
	// watchRetry is the pause before reopening a broken nftables monitor.
	watchRetry = time.Second
	// watchRecvBuffer holds the events of a large transaction (one per set
	// element of an Apply) before they are read; an overflow only costs a
	// reopen and an extra Reconcile.
	watchRecvBuffer = 4 << 20
)

// Watch calls changed after every nftables transaction committed in this
// network namespace (anyone's: "nft flush ruleset", a reload of
// nftables.service, iptables-nft, our own Apply), once per transaction or
// fewer when they come in bursts, and once at the start, since whatever
// happened before the monitor was listening went unseen. It blocks until
// ctx ends and then returns nil.
//
// Every transaction counts, not only those touching our table: the
// element events of v0.3.0's monitor do not name their table, and the
// Reconcile that follows a foreign change is one read of our table. If the
// monitor breaks (its socket overflows when events come faster than they
// are read), changed is called, since events were lost, and it is opened
// again.
//
// The netlink socket is opened on the calling goroutine's thread, so Watch
// watches the caller's network namespace, like the other methods.
func (b *nftBackend) Watch(ctx context.Context, changed func()) error {
	return watchNFTables(ctx, b.log, nil, changed, changed, nil)
}

// Watch calls changed when a read of our chain, jump and sets (quickCheck
// and the set comparison) finds them different from the last Apply: after
// every nftables transaction, and about every second. With iptables-nft,
// whose rule changes the nftables monitor reports, the one-second poll
// reads the sets alone ("ipset save", one tool run: ipsets send no events);
// with iptables-legacy, which sends none either, it also reads the rules
// (three read-only tool runs, run at once). Before the first Apply there is
// nothing to check. It calls changed once at the start, blocks until ctx
// ends and then returns nil. Tools are started from the calling
// goroutine's thread, so Watch watches the caller's network namespace.
func (b *iptBackend) Watch(ctx context.Context, changed func()) error {
	t := time.NewTicker(watchPollInterval)
	defer t.Stop()
	check := func(rules bool) {
		if ok, err := b.inPlace(ctx, rules); err != nil || !ok {
			changed()
		}
	}
	return watchNFTables(ctx, b.log, t.C, changed, func() { check(true) }, func() {
		b.mu.Lock()
		rules := !b.nftVariant
		b.mu.Unlock()
		check(rules)
	})
}

// inPlace reports whether a read of our sets, and with rules our chains
// and jumps too, matches the last Apply, without repairing anything.
// Before any Apply it reports true.
func (b *iptBackend) inPlace(ctx context.Context, rules bool) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.applied == nil || b.families == nil {
		return true, nil
	}
	want := [][]netip.Prefix{splitZero(b.applied.v4), splitZero(b.applied.v6)}
	if !rules {
		sets, err := ipsetSave(ctx)
		if err != nil {
			return false, fmt.Errorf("check ipsets: %w", err)
		}
		for i, f := range b.families {
			if compareSet(sets, f.set, want[i]) != nil {
				return false, nil
			}
		}
		return true, nil
	}
	snap, err := b.snapshot(ctx)
	if err != nil {
		return false, fmt.Errorf("check iptables: %w", err)
	}
	for i, f := range b.families {
		if compareSet(snap.sets, f.set, want[i]) != nil || !f.quickCheck(snap.filter[i]) {
			return false, nil
		}
	}
	return true, nil
}

// watchNFTables runs the nftables monitor until ctx ends. It calls start
// once, when the monitor first listens (or first failed to open), event
// after each committed transaction (coalescing those already queued) and
// after the monitor broke, and onTick on every tick (a nil tick never
// fires) while the monitor listens, event on every tick while it does not. A monitor that cannot be opened is retried; with a tick the
// caller still polls meanwhile.
func watchNFTables(ctx context.Context, log *zap.Logger, tick <-chan time.Time, start, event, onTick func()) error {
	var retry <-chan time.Time
	for ctx.Err() == nil {
		events, closeMon, err := openMonitor()
		if err != nil {
			log.Warn("nftables monitor not opened; retrying", zap.Duration("retry_in", watchRetry), zap.Error(err))
			retry = time.After(watchRetry)
		}
		if start != nil {
			start()
			start = nil
		}
		for events != nil {
			select {
			case <-ctx.Done():
				closeMon()
				return nil
			case <-tick:
				onTick()
			case ev, ok := <-events:
				if !ok || ev.GeneratedBy.Type == nftables.MonitorEventTypeOOB {
					err := errors.New("monitor closed")
					if ok && ev.GeneratedBy.Error != nil {
						err = ev.GeneratedBy.Error
					}
					log.Warn("nftables monitor broke; events may be lost, reopening", zap.Error(err))
					closeMon()
					events, retry = nil, time.After(watchRetry)
					event()
					continue
				}
				drain(events)
				event()
			}
		}
		for retry != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-tick:
				event() // no events meanwhile: the full check
			case <-retry:
				retry = nil
			}
		}
	}
	return nil
}

// drain takes the transactions already queued, so that a burst costs one
// call; it stops at a broken monitor, which the caller then sees.
func drain(events chan *nftables.MonitorEvents) {
	for range cap(events) {
		select {
		case ev, ok := <-events:
			if !ok || ev.GeneratedBy.Type == nftables.MonitorEventTypeOOB {
				return
			}
		default:
			return
		}
	}
}

// openMonitor subscribes to nftables events in the caller's network
// namespace. One event arrives per committed transaction (the generation
// message that ends it). closeMon stops the monitor and lets its reader
// goroutine end.
func openMonitor() (events chan *nftables.MonitorEvents, closeMon func(), err error) {
	// A lasting Conn, so that closeMon can close the socket itself: the
	// monitor of v0.3.0 leaves it open when it stops on an error.
	c, err := nftables.New(nftables.AsLasting(), nftables.WithSockOptions(recvBuffer(watchRecvBuffer)))
	if err != nil {
		return nil, nil, fmt.Errorf("open nftables connection: %w", err)
	}
	mon := nftables.NewMonitor(nftables.WithMonitorEventBuffer(64))
	events, err = c.AddGenerationalMonitor(mon)
	if err != nil {
		_ = c.CloseLasting()
		return nil, nil, fmt.Errorf("open nftables monitor: %w", err)
	}
	closeMon = func() {
		_ = mon.Close()
		_ = c.CloseLasting() // ends the reader's Receive
		// The reader may be blocked handing over an event; take what is
		// left until it closes the channel.
		for range events {
		}
	}
	return events, closeMon, nil
}

// recvBuffer returns a socket option that sets the receive buffer of a
// netlink socket to size bytes, past net.core.rmem_max (SO_RCVBUFFORCE
// needs CAP_NET_ADMIN).
func recvBuffer(size int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return fmt.Errorf("set netlink receive buffer: %w", err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}); err != nil {
			return fmt.Errorf("set netlink receive buffer: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("set netlink receive buffer: %w", serr)
		}
		return nil
	}
}
