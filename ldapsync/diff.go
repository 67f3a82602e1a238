package ldapsync

import (
	"fmt"
	"slices"
	"strings"
)

// Diff is what one sync changed, in usernames (normalized JID localparts),
// each list sorted. A server applies it in this order: Removed, Disabled
// and Renamed (old names) end sessions; Added, Changed and RosterChanged
// refresh vCards and push rosters. A user deleted and re-created under the
// same name (a new directory identity) is in both Removed and Added.
type Diff struct {
	Added    []string // new, or able to log in again
	Removed  []string // deleted, moved out of the base DN or the filter, or no longer a valid name
	Disabled []string // disabled, locked or expired (DisabledFilter, ExpiresAttr)
	// Renamed users keep their directory identity (objectGUID/entryUUID)
	// under a new username: the old name's sessions end and its data is
	// the new name's.
	Renamed []Rename
	// Changed users have a new display name, mail, title, phone,
	// department, given name, surname, nickname or photo (vCard,
	// XEP-0153 avatar hash).
	Changed []string
	// PhotoChanged users (a subset of Changed) have a new, or no longer
	// a, photo: their presence carries a new XEP-0153 hash, so the server
	// re-broadcasts it instead of waiting for their next presence.
	PhotoChanged []string
	// RosterChanged users have a different set of colleagues, or
	// colleagues whose display name or shared groups changed: they need a
	// roster push. Users in Added, Removed, Disabled and Renamed are not
	// listed.
	RosterChanged []string
	// Regrouped users (a subset of RosterChanged) are in other
	// shared-roster groups than before: their item changed in their
	// colleagues' rosters, and their own roster may have gained or lost
	// any user in RosterChanged.
	Regrouped []string
	// LeaverGroups are the groups of each Removed and Disabled user as of
	// the snapshot before the sync: the new one no longer has them, and
	// retention rules by group must keep following a leaver's archive.
	LeaverGroups map[string][]string
	// Summary is one line for logs and `xmppd ctl sync`:
	// "users +3 -1 ~2 (disabled 1), groups ~2, 12 rosters changed". The
	// "-" count includes the disabled users.
	Summary string
}

// Rename is one user's change of username.
type Rename struct{ From, To string }

func (d *Diff) leaverGroups(p *person) {
	if d.LeaverGroups == nil {
		d.LeaverGroups = make(map[string][]string)
	}
	d.LeaverGroups[p.Username] = p.Groups
}

// Empty reports whether the sync changed nothing.
func (d *Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Disabled)+len(d.Renamed)+len(d.Changed)+len(d.RosterChanged) == 0
}

// diff compares two snapshots by directory identity. prev may be nil (no
// snapshot yet): then everyone is Added.
func diff(prev, next *snapshot) Diff {
	var d Diff
	if prev == nil {
		prev = &snapshot{}
	}
	// Users by identity.
	renamedOrNew := map[int32]bool{} // next people indices
	for pi := range next.people {
		p := &next.people[pi]
		id := next.users[p.rec].id
		old := prev.activeByID(id)
		switch {
		case old == nil:
			d.Added = append(d.Added, p.Username)
			renamedOrNew[int32(pi)] = true
		case old.Username != p.Username:
			d.Renamed = append(d.Renamed, Rename{From: old.Username, To: p.Username})
			renamedOrNew[int32(pi)] = true
		case profileChanged(&old.Person, &p.Person):
			d.Changed = append(d.Changed, p.Username)
			if old.PhotoHash != p.PhotoHash {
				d.PhotoChanged = append(d.PhotoChanged, p.Username)
			}
		}
	}
	for pi := range prev.people {
		p := &prev.people[pi]
		id := prev.users[p.rec].id
		if next.activeByID(id) != nil {
			continue
		}
		if ui, ok := next.userByID[id]; ok {
			if why := next.inactive[next.users[ui].id]; why == whyDisabled || why == whyExpired {
				d.Disabled = append(d.Disabled, p.Username)
				d.leaverGroups(p)
				continue
			}
		}
		d.Removed = append(d.Removed, p.Username)
		d.leaverGroups(p)
	}

	// Rosters. A shared-roster group is dirty when its members (by
	// identity) changed or a member's roster-visible data (username,
	// display name) did; then every member's roster changed. So are the
	// rosters of users whose own groups changed.
	visible := map[string]bool{} // ids whose username or display name changed
	for pi := range next.people {
		p := &next.people[pi]
		if old := prev.activeByID(next.users[p.rec].id); old != nil && (old.Username != p.Username || old.DisplayName != p.DisplayName) {
			visible[next.users[p.rec].id] = true
		}
	}
	dirty := map[string]bool{}         // lowercased group names whose members changed
	renamedIn := map[string][]string{} // group -> ids of members with a new username or display name
	groupsChanged := 0
	prevGroups := map[string]int{}
	for gi, name := range prev.groupNames {
		prevGroups[strings.ToLower(name)] = gi
	}
	for gi, name := range next.groupNames {
		key := strings.ToLower(name)
		pg, had := prevGroups[key]
		delete(prevGroups, key)
		if !had || prev.groupNames[pg] != name || !sameMembers(prev, prev.members[pg], next, next.members[gi]) {
			dirty[key] = true
		} else {
			for _, m := range next.members[gi] {
				if id := next.users[next.people[m].rec].id; visible[id] {
					renamedIn[key] = append(renamedIn[key], id)
				}
			}
		}
		if dirty[key] || len(renamedIn[key]) > 0 {
			groupsChanged++
		}
	}
	groupsChanged += len(prevGroups) // groups gone (or without active members)
	for key := range prevGroups {
		dirty[key] = true
	}
	for pi := range next.people {
		p := &next.people[pi]
		if renamedOrNew[int32(pi)] {
			continue
		}
		id := next.users[p.rec].id
		old := prev.activeByID(id)
		// With roster rules a person also sees groups they are not in:
		// the view, not the membership, decides whose rosters changed.
		oldView, view := prev.viewNames(old), next.viewNames(p)
		regrouped := !slices.Equal(old.Groups, p.Groups) || !slices.Equal(oldView, view)
		if regrouped {
			d.Regrouped = append(d.Regrouped, p.Username)
		}
		changed := regrouped
		for _, g := range view {
			key := strings.ToLower(g)
			// A member's own new display name is not in their roster.
			r := renamedIn[key]
			changed = changed || dirty[key] || len(r) > 1 || len(r) == 1 && r[0] != id
		}
		if changed {
			d.RosterChanged = append(d.RosterChanged, p.Username)
		}
	}

	for _, l := range [][]string{d.Added, d.Removed, d.Disabled, d.Changed, d.PhotoChanged, d.RosterChanged, d.Regrouped} {
		slices.Sort(l)
	}
	slices.SortFunc(d.Renamed, func(a, b Rename) int { return strings.Compare(a.From, b.From) })
	d.Summary = summary(&d, groupsChanged)
	return d
}

func summary(d *Diff, groups int) string {
	if d.Empty() && groups == 0 {
		return "no changes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "users +%d -%d", len(d.Added), len(d.Removed)+len(d.Disabled))
	if len(d.Changed) > 0 {
		fmt.Fprintf(&b, " ~%d", len(d.Changed))
	}
	var notes []string
	if len(d.Disabled) > 0 {
		notes = append(notes, fmt.Sprintf("disabled %d", len(d.Disabled)))
	}
	if len(d.Renamed) > 0 {
		notes = append(notes, fmt.Sprintf("renamed %d", len(d.Renamed)))
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
	}
	fmt.Fprintf(&b, ", groups ~%d, %d rosters changed", groups, len(d.RosterChanged))
	return b.String()
}

// activeByID returns the person with directory identity id, or nil when
// there is none or the entry cannot log in.
func (sn *snapshot) activeByID(id string) *person {
	ui, ok := sn.userByID[id]
	if !ok {
		return nil
	}
	u := &sn.users[ui]
	if _, out := sn.inactive[u.id]; out {
		return nil
	}
	return sn.lookup(u.username)
}

// viewNames returns the names of the groups whose members p sees.
func (sn *snapshot) viewNames(p *person) []string {
	out := make([]string, len(p.viewIDs))
	for i, g := range p.viewIDs {
		out[i] = sn.groupNames[g]
	}
	return out
}

func profileChanged(a, b *Person) bool {
	return a.DisplayName != b.DisplayName || a.Mail != b.Mail || a.Title != b.Title ||
		a.Phone != b.Phone || a.Department != b.Department || a.PhotoHash != b.PhotoHash ||
		a.GivenName != b.GivenName || a.Surname != b.Surname || a.Nickname != b.Nickname
}

// sameMembers compares two member lists by identity. Both are sorted by
// username, so without renames equal sets are equal lists.
func sameMembers(a *snapshot, am []int32, b *snapshot, bm []int32) bool {
	if len(am) != len(bm) {
		return false
	}
	inOrder := true
	for i := range am {
		if a.users[a.people[am[i]].rec].id != b.users[b.people[bm[i]].rec].id {
			inOrder = false
			break
		}
	}
	if inOrder {
		return true
	}
	set := make(map[string]bool, len(am))
	for _, m := range am {
		set[a.users[a.people[m].rec].id] = true
	}
	for _, m := range bm {
		if !set[b.users[b.people[m].rec].id] {
			return false
		}
	}
	return true
}
