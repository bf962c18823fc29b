package main

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPlan(t *testing.T) {
	events := make([]*notification, 7)
	for i := range events {
		events[i] = &notification{sequence: i}
	}
	seqs := func(ds []delivery) []int {
		var s []int
		for _, d := range ds {
			s = append(s, d.n.sequence)
		}
		return s
	}
	tests := []struct {
		name              string
		reorder, dup      float64
		wantSeqs          []int
		wantDup, wantReor int
	}{
		{"as is", 0, 0, []int{0, 1, 2, 3, 4, 5, 6}, 0, 0},
		{"every pair swapped", 1, 0, []int{1, 0, 3, 2, 5, 4, 6}, 0, 6},
		{"every one twice", 0, 1, []int{0, 1, 2, 3, 4, 5, 6}, 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan(rand.New(rand.NewPCG(1, 1)), events, tt.reorder, tt.dup)
			if s := seqs(got); !slices.Equal(s, tt.wantSeqs) {
				t.Errorf("order %v, want %v", s, tt.wantSeqs)
			}
			dup, reor := 0, 0
			for _, d := range got {
				if d.duplicated {
					dup++
				}
				if d.reordered {
					reor++
				}
			}
			if dup != tt.wantDup || reor != tt.wantReor {
				t.Errorf("duplicated %d, reordered %d, want %d and %d", dup, reor, tt.wantDup, tt.wantReor)
			}
		})
	}
}

// TestPlanKeepsEveryEvent checks random plans: a permutation of the events
// in which no event moves more than one place.
func TestPlanKeepsEveryEvent(t *testing.T) {
	events := make([]*notification, 30)
	for i := range events {
		events[i] = &notification{sequence: i}
	}
	for seed := range uint64(50) {
		got := plan(rand.New(rand.NewPCG(seed, 0)), events, 0.3, 0.3)
		var s []int
		for i, d := range got {
			s = append(s, d.n.sequence)
			if diff := d.n.sequence - i; diff < -1 || diff > 1 {
				t.Errorf("seed %d: sequence %d at position %d", seed, d.n.sequence, i)
			}
			if d.reordered != (d.n.sequence != i) {
				t.Errorf("seed %d: sequence %d at %d marked reordered=%v", seed, d.n.sequence, i, d.reordered)
			}
		}
		slices.Sort(s)
		for i, v := range s {
			if v != i {
				t.Fatalf("seed %d: sequences %v are not 0..29 once each", seed, s)
			}
		}
	}
}
