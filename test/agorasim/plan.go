package main

import "math/rand/v2"

// delivery is one notification in the order the simulator sends it, with
// the anomalies Agora documents: arriving out of order, and arriving twice
// with the same bytes (redundant notifications).
type delivery struct {
	n          *notification
	reordered  bool // swapped with its neighbour, so it arrives out of sequence
	duplicated bool // the accepted bytes are sent a second time, unchanged
}

// plan turns a session's events into deliveries: each pair of neighbours is
// swapped with probability pReorder (a swapped event is not swapped again),
// and each delivery is duplicated with probability pDuplicate.
func plan(rng *rand.Rand, events []*notification, pReorder, pDuplicate float64) []delivery {
	out := make([]delivery, len(events))
	for i, n := range events {
		out[i] = delivery{n: n}
	}
	for i := 0; i+1 < len(out); i++ {
		if rng.Float64() < pReorder {
			out[i], out[i+1] = out[i+1], out[i]
			out[i].reordered, out[i+1].reordered = true, true
			i++
		}
	}
	for i := range out {
		out[i].duplicated = rng.Float64() < pDuplicate
	}
	return out
}
