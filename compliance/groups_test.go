package compliance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/store"
)

// RecordDirectoryGroups at start makes a later purge without a directory
// (ctl with the server stopped, or after the person left) apply the group
// rule the directory last gave, with no purge having run in between.
func TestRecordDirectoryGroups(t *testing.T) {
	st := openStore(t)
	const (
		dave  = "dave@corp.example"  // Legal in the directory, nothing recorded
		erin  = "erin@corp.example"  // left; Legal was recorded while known
		frank = "frank@corp.example" // moved from Legal to no group
		lobby = "lobby@conference.corp.example"
	)
	for _, o := range []string{dave, erin, frank} {
		archiveAt(t, st, o, store.KindChat, now.Add(-100*day), 2)
	}
	archiveAt(t, st, lobby, store.KindGroupchat, now.Add(-100*day), 2)
	for o, g := range map[string][]string{erin: {"Legal"}, frank: {"Legal"}} {
		if err := st.SetArchiveGroups(o, g); err != nil {
			t.Fatal(err)
		}
	}
	dir := directory{dave: {"Legal"}, frank: nil, lobby: {"Legal"}}
	n, err := RecordDirectoryGroups(st, dir.groups)
	if err != nil || n != 2 {
		t.Fatalf("RecordDirectoryGroups = %d, %v; want 2 (dave recorded, frank cleared)", n, err)
	}
	if n, err := RecordDirectoryGroups(st, dir.groups); err != nil || n != 0 {
		t.Errorf("second RecordDirectoryGroups = %d, %v; want 0", n, err)
	}
	owners, err := st.ArchiveOwners()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{dave: {"Legal"}, erin: {"Legal"}, frank: nil, lobby: nil}
	for _, o := range owners {
		if !slices.Equal(o.Groups, want[o.JID]) {
			t.Errorf("%s recorded %q; want %q", o.JID, o.Groups, want[o.JID])
		}
	}

	p := &Purger{
		Store:  st,
		Policy: policy(t, keep(30*day), retention.Rule{Match: "group:Legal", Retention: retention.Duration{Forever: true}}),
		Now:    func() time.Time { return now },
	}
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for o, n := range map[string]int{dave: 2, erin: 2, frank: 0, lobby: 0} {
		if got := left(t, st, o); got != n {
			t.Errorf("after a purge without a directory %s has %d; want %d", o, got, n)
		}
	}
	if n, err := RecordDirectoryGroups(st, nil); err != nil || n != 0 {
		t.Errorf("without a directory: %d, %v", n, err)
	}
}
