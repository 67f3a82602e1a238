package ldapsync

import (
	"strings"
	"testing"
	"time"
)

// TestSearch searches the snapshot of the fixture company: substrings,
// any case, umlauts, every term must match, locked accounts never show.
func TestSearch(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	d, _ := newDir(t, testConfig(s), nil)
	if got := d.Search(map[string]string{"name": "a"}, 50); got != nil {
		t.Errorf("Search before the first sync: %v", got)
	}
	mustSync(t, d)
	tests := []struct {
		q    map[string]string
		max  int
		want string
	}{
		{map[string]string{"name": "MÜLL"}, 50, "jmueller"},
		{map[string]string{"name": "jsmi"}, 50, "jsmith"},  // the username
		{map[string]string{"name": "hopper"}, 50, "grace"}, // the display name
		{map[string]string{"email": "@CORP.example"}, 2, "alice bob"},
		{map[string]string{"department": "engineering"}, 50, "alice bob jsmith"}, // frank is locked
		{map[string]string{"department": "sales", "title": "account"}, 50, "carol"},
		{map[string]string{"department": "sales", "email": "hopper"}, 50, "grace"},
		{map[string]string{"title": "anwalt"}, 50, "jmueller"},
		{map[string]string{"name": "", "email": ""}, 50, ""},
		{map[string]string{"name": "alice", "phone": "1"}, 50, ""}, // not a search field
		{map[string]string{"name": "*"}, 50, ""},
		{map[string]string{"name": "alice"}, 0, ""},
	}
	for _, tc := range tests {
		if got := strings.Join(usernames(d.Search(tc.q, tc.max)), " "); got != tc.want {
			t.Errorf("Search(%v, %d) = %q, want %q", tc.q, tc.max, got, tc.want)
		}
	}
}

func BenchmarkSearch50k(b *testing.B) {
	s, users, groups := syntheticDirectory(50000, 10, false)
	d := &Directory{}
	d.snap.Store(build(s, users, groups, snapMeta{}, time.Now()))
	// A match near the end: the scan covers the whole directory.
	q := map[string]string{"name": "USER04999"}
	b.ReportAllocs()
	for b.Loop() {
		if len(d.Search(q, 50)) == 0 {
			b.Fatal("no match")
		}
	}
}
