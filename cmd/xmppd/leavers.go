package main

import (
	"github.com/ownchat/ownchat/ldapsync"
)

// groupsToRecord returns the groups to record with archives after a sync,
// by bare JID: for leavers (removed or disabled) the groups they had
// before, which only the diff still knows; for people who are new,
// renamed or in other groups, the groups they have now. Only what diff
// names is looked at, so a sync costs its size, not the directory's.
func groupsToRecord(d *ldapsync.Directory, diff ldapsync.Diff, domain string) map[string][]string {
	rec := make(map[string][]string, len(diff.LeaverGroups))
	for u, g := range diff.LeaverGroups {
		rec[u+"@"+domain] = g
	}
	now := func(u string) {
		if p, ok := d.Lookup(u); ok {
			rec[u+"@"+domain] = p.Groups
		}
	}
	for _, r := range diff.Renamed {
		// The archive moves with the name (store.RenameUser), and with
		// it the groups recorded so far; the new name's are recorded.
		now(r.To)
	}
	for _, l := range [][]string{diff.Added, diff.Regrouped} {
		for _, u := range l {
			now(u)
		}
	}
	return rec
}
