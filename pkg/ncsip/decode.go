package ncsip

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// maxExamples bounds Result.Rejected so a hostile answer cannot flood logs.
const maxExamples = 5

// maxExampleLen bounds the quoted text of one rejected entry.
const maxExampleLen = 64

// Result is a usable list of NCS source addresses.
type Result struct {
	// Addrs is sorted, deduplicated, never empty; IPv4 addresses are
	// unmapped (never ::ffff:a.b.c.d).
	Addrs []netip.Addr
	// Endpoint is the URL that answered (empty from decode).
	Endpoint string
	// Attempts is how many HTTP requests the fetch made (0 from decode).
	Attempts int
	// Rejected holds up to 5 examples of skipped host entries, each with
	// the reason, e.g. `"10.1.2.3": private`.
	Rejected []string
	// RejectedCount is how many host entries were skipped in all.
	RejectedCount int
}

// rejects collects skipped host entries: a count and a few examples.
type rejects struct {
	count    int
	examples []string
}

func (r *rejects) add(what, why string) {
	r.count++
	if len(r.examples) < maxExamples {
		r.examples = append(r.examples, what+": "+why)
	}
}

func (r *rejects) String() string {
	if r.count == 0 {
		return ""
	}
	s := strings.Join(r.examples, "; ")
	if r.count > len(r.examples) {
		s += fmt.Sprintf("; and %d more", r.count-len(r.examples))
	}
	return s
}

// decode reads the body of a 200 answer to GET /v1/ncs/ip and returns its
// usable addresses. Only data.service.hosts[].primaryIP is read; host
// entries that are not objects, lack primaryIP or carry an unusable address
// are skipped and reported in Result.Rejected. Keys are matched exactly
// ("primaryIP", as Agora spells it). The error wraps ErrEmpty when no
// address survives and is a bad response when the body is not JSON of the
// expected shape.
func decode(body []byte, allowPrivate bool) (Result, error) {
	hosts, err := decodeHosts(body)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", errBadResponse, err)
	}
	var rej rejects
	addrs := make([]netip.Addr, 0, len(hosts))
	for i, raw := range hosts {
		a, ok := hostAddr(i, raw, allowPrivate, &rej)
		if ok {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		if len(hosts) == 0 {
			return Result{}, fmt.Errorf("%w: the host list is empty", ErrEmpty)
		}
		return Result{}, fmt.Errorf("%w: all %d host entries rejected: %s", ErrEmpty, len(hosts), rej.String())
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	return Result{Addrs: addrs, Rejected: rej.examples, RejectedCount: rej.count}, nil
}

// decodeHosts returns the raw entries of data.service.hosts. Maps of raw
// messages (rather than structs) keep key matching exact and let each host
// entry fail on its own.
func decodeHosts(body []byte) ([]json.RawMessage, error) {
	cur := body
	for _, key := range []string{"data", "service"} {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err != nil {
			return nil, fmt.Errorf("decode json: %w", err)
		}
		next, ok := obj[key]
		if !ok {
			return nil, fmt.Errorf("no %q object in the answer", key)
		}
		cur = next
	}
	var service map[string]json.RawMessage
	if err := json.Unmarshal(cur, &service); err != nil {
		return nil, fmt.Errorf("decode data.service: %w", err)
	}
	raw, ok := service["hosts"]
	if !ok {
		return nil, fmt.Errorf("no data.service.hosts in the answer")
	}
	var hosts []json.RawMessage
	if err := json.Unmarshal(raw, &hosts); err != nil {
		return nil, fmt.Errorf("decode data.service.hosts: %w", err)
	}
	return hosts, nil
}

// hostAddr returns the usable address of host entry i, or records why it
// has none.
func hostAddr(i int, raw json.RawMessage, allowPrivate bool, rej *rejects) (netip.Addr, bool) {
	entry := "host " + strconv.Itoa(i)
	var host map[string]json.RawMessage
	if err := json.Unmarshal(raw, &host); err != nil || host == nil {
		rej.add(entry, "not an object")
		return netip.Addr{}, false
	}
	v, ok := host["primaryIP"]
	if !ok || string(v) == "null" {
		rej.add(entry, "no primaryIP")
		return netip.Addr{}, false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		rej.add(entry, "primaryIP is not a string")
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		rej.add(quote(s), "not an IP address")
		return netip.Addr{}, false
	}
	if a.Zone() != "" {
		// Checked before Unmap, which would drop the zone of ::ffff:a.b.c.d%eth0.
		rej.add(quote(s), "has a zone")
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if why := rejectReason(a, allowPrivate); why != "" {
		rej.add(quote(s), why)
		return netip.Addr{}, false
	}
	return a, true
}

// quote makes an untrusted string safe and short enough for a log line.
func quote(s string) string {
	if len(s) > maxExampleLen {
		return strconv.Quote(s[:maxExampleLen]) + "..."
	}
	return strconv.Quote(s)
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
)

// rejectReason says why a (already unmapped) cannot be an NCS source
// address, or returns "" when it can.
func rejectReason(a netip.Addr, allowPrivate bool) string {
	switch {
	case a.Zone() != "":
		return "has a zone"
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsMulticast():
		return "multicast"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case reserved4.Contains(a):
		return "reserved"
	case !allowPrivate && (a.IsPrivate() || cgnat.Contains(a)):
		return "private"
	}
	return ""
}
