package publish

import "testing"

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		filter, subj string
		want         bool
	}{
		{">", "agora.ncs.>", true},
		{"agora.>", "agora.ncs.>", true},
		{"agora.ncs.>", "agora.ncs.>", true},
		{"agora.*.>", "agora.ncs.>", true},
		{"agora.ncs.*", "agora.ncs.>", false},
		{"agora.ncs.3.>", "agora.ncs.>", false},
		{"agora.ncs", "agora.ncs.>", false},
		{"other.>", "agora.ncs.>", false},
		{"agora.ncs.>", "agora.ncs", false},
		{"agora.ncs.*", "agora.ncs.x", true},
		{"*.*", "agora.ncs", true},
		{"*", "agora.ncs", false},
	}
	for _, tt := range tests {
		if got := subjectCovers(tt.filter, tt.subj); got != tt.want {
			t.Errorf("subjectCovers(%q, %q): got %t, want %t", tt.filter, tt.subj, got, tt.want)
		}
	}
}
