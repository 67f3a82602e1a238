package main

import (
	"slices"
	"testing"
)

func TestExtractFileFlags(t *testing.T) {
	for _, tt := range []struct {
		args          []string
		rest          []string
		out, manifest string
		wantErr       bool
	}{
		{[]string{"export", "-user", "a@x"}, []string{"export", "-user", "a@x"}, "", "", false},
		{[]string{"export", "-o", "f.jsonl", "-user", "a@x"}, []string{"export", "-user", "a@x"}, "f.jsonl", "", false},
		{[]string{"export", "--o=f", "-manifest", "m.json"}, []string{"export"}, "f", "m.json", false},
		{[]string{"export", "-manifest=m", "-other", "-o"}, nil, "", "", true},
		{[]string{"export", "-o", "same", "-manifest", "same"}, nil, "", "", true},
		{[]string{"export", "-out", "x"}, []string{"export", "-out", "x"}, "", "", false},
	} {
		rest, f, err := extractFileFlags(tt.args)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v", tt.args, err)
			continue
		}
		if err == nil && (!slices.Equal(rest, tt.rest) || f.outPath != tt.out || f.manifestPath != tt.manifest) {
			t.Errorf("%q: rest %q out %q manifest %q", tt.args, rest, f.outPath, f.manifestPath)
		}
	}
}

func TestLookupStoreCmd(t *testing.T) {
	for _, tt := range []struct {
		first string
		args  []string
		name  string
		rest  []string
	}{
		{"archive", []string{"export", "-user", "a"}, "archive export", []string{"-user", "a"}},
		{"compact", nil, "compact", nil},
		{"compact", []string{"-x"}, "compact", []string{"-x"}},
		{"hold", []string{"list"}, "hold list", []string{}},
		{"hold", []string{"frobnicate"}, "", nil},
		{"sessions", nil, "", nil},
	} {
		name, _, rest, ok := lookupStoreCmd(tt.first, tt.args)
		if name != tt.name || ok != (tt.name != "") || (ok && !slices.Equal(rest, tt.rest)) {
			t.Errorf("%s %q: %q %q %v", tt.first, tt.args, name, rest, ok)
		}
	}
	if err := unknownStoreCmd("hold", []string{"frobnicate"}); err == nil || err.Error() != `unknown command "hold frobnicate" (hold takes: add, list, release)` {
		t.Errorf("unknownStoreCmd: %v", err)
	}
}
