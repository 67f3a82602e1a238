package main

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/ownchat/ownchat/store"
)

// The message path records a person's groups when the server first asks
// whether their archive is kept, so a leaver keeps their group's rule
// even when no purge ran while the directory knew them.
func TestArchiveSkipRecordsGroups(t *testing.T) {
	cfg := retentionConf(t, `[archive]
default_retention = "1d"
[[archive.rule]]
match = "group:Legal"
retention = "forever"
[[archive.rule]]
match = "group:Interns"
retention = "none"
`)
	pol, err := archivePolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prev := policy.Swap(pol)
	t.Cleanup(func() { policy.Store(prev) })
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := map[string][]string{"ann@corp.example": {"Legal"}, "ivy@corp.example": {"Interns"}, "bo@corp.example": nil}
	archiveGroups.Store(&groupRecorder{store: st, log: slog.New(slog.DiscardHandler), groups: func(owner string) ([]string, bool) {
		g, ok := dir[owner]
		return g, ok
	}})
	t.Cleanup(func() { archiveGroups.Store(nil) })

	const ann, ivy, bo, lobby = "ann@corp.example", "ivy@corp.example", "bo@corp.example", "lobby@conference.corp.example"
	for _, c := range []struct {
		owner string
		room  bool
		skip  bool
	}{{ann, false, false}, {ivy, false, true}, {bo, false, false}, {lobby, true, false}} {
		if got := archiveSkip(c.owner, c.room, dir[c.owner]); got != c.skip {
			t.Errorf("archiveSkip(%s) = %v; want %v", c.owner, got, c.skip)
		}
	}
	recorded := map[string][]string{}
	owners, err := st.ArchiveOwners()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range owners {
		recorded[o.JID] = o.Groups
	}
	// Only ann has something to record: ivy's archive is never kept, bo
	// has no groups, rooms have none.
	if len(recorded) != 1 || !slices.Equal(recorded[ann], []string{"Legal"}) {
		t.Fatalf("recorded %q; want ann in Legal only", recorded)
	}

	// ann leaves: asked again (a directory change cleared the server's
	// cache), she is unknown, and her recorded groups stay.
	delete(dir, ann)
	archiveSkip(ann, false, nil)
	owners, _ = st.ArchiveOwners()
	for _, o := range owners {
		if o.JID == ann && !slices.Equal(o.Groups, []string{"Legal"}) {
			t.Errorf("after leaving, ann's recorded groups are %q", o.Groups)
		}
	}
}
