package textmatch

import "testing"

func TestContainsFold(t *testing.T) {
	tests := []struct {
		s, sub string
		want   bool
	}{
		{"Jürgen Müller", "MÜLLER", true},
		{"Jürgen Müller", "mul", false},
		{"abc", "", true},
		{"", "a", false},
		{"Straße", "STRASSE", false}, // simple folding only, as EqualFold
		{"ΣΊΣΥΦΟΣ", "σίσυφος", true},
		{"ab", "abc", false},
	}
	for _, tc := range tests {
		if got := ContainsFold(tc.s, tc.sub); got != tc.want {
			t.Errorf("ContainsFold(%q, %q) = %v", tc.s, tc.sub, got)
		}
	}
}
