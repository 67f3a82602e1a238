package main

import (
	"github.com/ownchat/ownchat/ldapsync"
)

// knownGroups is each person's LDAP groups as of the snapshot before the
// sync being applied. ldapsync calls onDiff after it swapped in the new
// snapshot, where a leaver no longer is, so the groups their archive must
// keep following are only here. ldapsync serializes onDiff calls (they run
// under its sync lock), hence no lock of its own.
type knownGroups struct {
	d *ldapsync.Directory
	m map[string][]string // username -> groups
}

// newKnownGroups starts from the snapshot the directory loaded from the
// store: the first sync's diff is against that one.
func newKnownGroups(d *ldapsync.Directory) *knownGroups {
	people := d.People()
	k := &knownGroups{d: d, m: make(map[string][]string, len(people))}
	for _, p := range people {
		k.m[p.Username] = p.Groups
	}
	return k
}

// apply moves k to the snapshot after diff and returns the groups to
// record with archives, by bare JID: for leavers (removed or disabled)
// the groups they had before, for people whose groups the sync changed
// (or who are new) the groups they have now. Only what diff names is
// looked at, so a sync costs its size, not the directory's.
func (k *knownGroups) apply(diff ldapsync.Diff, domain string) map[string][]string {
	rec := make(map[string][]string)
	for _, l := range [][]string{diff.Removed, diff.Disabled} {
		for _, u := range l {
			if g, ok := k.m[u]; ok {
				rec[u+"@"+domain] = g
				delete(k.m, u)
			}
		}
	}
	now := func(u string) {
		if p, ok := k.d.Lookup(u); ok {
			k.m[u] = p.Groups
			rec[u+"@"+domain] = p.Groups
		}
	}
	for _, r := range diff.Renamed {
		// The archive moves with the name (store.RenameUser), and with
		// it the groups recorded so far.
		delete(k.m, r.From)
		now(r.To)
	}
	for _, l := range [][]string{diff.Added, diff.Regrouped} {
		for _, u := range l {
			now(u)
		}
	}
	return rec
}
