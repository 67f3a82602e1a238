package muc

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Rooms bound to directory groups. A bound room's members are exactly the
// members of its groups (owners, admins and outcasts are left alone): on
// every directory sync someone who joined a group becomes a member and gets
// the room in their bookmarks, someone who left loses membership, and is
// removed with status 321 if present in a members-only room (XEP-0045 §9.4
// semantics, applied by the directory instead of an admin).
//
// Bound rooms are persistent. Their JIDs and groups are also kept in the
// bucket "muc.bound", so a sync visits only them: with 100,000 rooms in
// the store a sync must not load them all.

// Directory is what bound rooms and reserved nicks need from the company
// directory; cmd/xmppd adapts the static and the LDAP directory to it.
type Directory interface {
	// GroupMembers returns the bare JIDs of the members of group; ok is
	// false when no such group exists.
	GroupMembers(group string) (bareJIDs []string, ok bool)
	// Groups returns the names of the existing groups, sorted.
	Groups() []string
	// Nick returns the registered nick of a user (XEP-0045 §7.12: their
	// display name, else their username); "" when not a directory user.
	Nick(bareJID string) string
}

// boundBucket maps a bound room's JID to its groups, one per line.
const boundBucket = "muc.bound"

// RoomTemplate is a room declared by configuration ([[muc.room]] and
// [[muc.auto_room]]): EnsureRooms creates it if missing and applies these
// fields at every start, so the file stays the truth for them.
type RoomTemplate struct {
	Name        string // the localpart
	Title       string // muc#roomconfig_roomname
	Description string
	Groups      []string // bound to these directory groups
	Persistent  bool
	MembersOnly bool
	Public      bool
	// Owners become owners of the room (the [muc] admins): somebody has to
	// be able to configure a room nobody created.
	Owners []string
}

// EnsureRooms creates or updates the template rooms, then syncs the
// members of every bound room with the directory.
func (s *Service) EnsureRooms(ts []RoomTemplate) error {
	var errs []error
	for _, t := range ts {
		if err := s.ensureRoom(t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.SyncBoundRooms(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Service) ensureRoom(t RoomTemplate) error {
	roomJID := t.Name + "@" + s.domain
	if b, ok := normBare(roomJID); ok {
		roomJID = b
	} else {
		return fmt.Errorf("muc: room %q: not a valid room JID", t.Name)
	}
	if len(t.Groups) > 0 && !t.Persistent {
		return fmt.Errorf("muc: room %s: a room bound to groups must be persistent", roomJID)
	}
	for {
		r, _, cond := s.room(roomJID, false, "")
		if cond != "" {
			return &RoomError{Room: roomJID, Condition: cond}
		}
		if r == nil {
			r = s.createRoom(roomJID)
			if r == nil {
				continue // created concurrently: look again
			}
		}
		r.mu.Lock()
		if r.gone {
			r.mu.Unlock()
			continue
		}
		n := r.cfg
		n.Name, n.Description = t.Title, t.Description
		n.Persistent, n.MembersOnly, n.Public = t.Persistent, t.MembersOnly, t.Public
		n.Groups = slices.Clone(t.Groups)
		slices.Sort(n.Groups)
		n.Groups = slices.Compact(n.Groups)
		for _, o := range t.Owners {
			if b, ok := normBare(o); ok {
				r.affs[b] = Owner
			}
		}
		old := r.cfg
		r.cfg = n
		r.locked = false
		r.save()
		if !slices.Equal(old.Groups, n.Groups) || old.Persistent != n.Persistent {
			r.saveBinding()
		}
		if n.MembersOnly && !old.MembersOnly {
			for i := len(r.list) - 1; i >= 0; i-- {
				if o := r.list[i]; o.aff < Member {
					r.remove(o, &presExtra{codes: []string{"322"}}, false)
				}
			}
		}
		if n.Persistent {
			r.unloadIdle()
		}
		r.mu.Unlock()
		return nil
	}
}

// createRoom makes an unlocked room that nobody asked for (a template); nil
// when one appeared in the meantime.
func (s *Service) createRoom(roomJID string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[roomJID] != nil {
		return nil
	}
	r := newRoom(s, roomJID)
	s.rooms[roomJID] = r
	return r
}

// saveBinding keeps the bound-room index in step with the room; called
// under r.mu when the groups or the persistence changed, or on destroy.
func (r *room) saveBinding() {
	s := r.svc
	if s.st == nil {
		return
	}
	var err error
	if r.cfg.Persistent && len(r.cfg.Groups) > 0 && !r.gone {
		err = s.st.Put(boundBucket, r.jid, []byte(strings.Join(r.cfg.Groups, "\n")))
	} else {
		err = s.st.Delete(boundBucket, r.jid)
	}
	if err != nil {
		s.log.Error("muc: save room binding", "room", r.jid, "err", err)
	}
}

// SyncBoundRooms makes the members of every bound room those of its
// groups. cmd/xmppd calls it at start and after each directory sync.
func (s *Service) SyncBoundRooms() error {
	if s.cfg.Directory == nil || s.st == nil {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	var rooms []string
	if err := s.st.ForEach(boundBucket, func(k string, _ []byte) error {
		rooms = append(rooms, k)
		return nil
	}); err != nil {
		return fmt.Errorf("muc: bound rooms: %w", err)
	}
	members := map[string][]string{} // group -> members, read once per sync
	var errs []error
	for _, j := range rooms {
		if err := s.syncRoom(j, members); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncRoom applies the directory to one bound room.
func (s *Service) syncRoom(roomJID string, cache map[string][]string) error {
	for {
		r, _, cond := s.room(roomJID, false, "")
		if cond != "" {
			return &RoomError{Room: roomJID, Condition: cond}
		}
		if r == nil {
			// Destroyed without the index knowing: forget the binding.
			if err := s.st.Delete(boundBucket, roomJID); err != nil {
				return fmt.Errorf("muc: forget binding of %s: %w", roomJID, err)
			}
			return nil
		}
		r.mu.Lock()
		if r.gone {
			r.mu.Unlock()
			continue
		}
		if len(r.cfg.Groups) == 0 || !r.cfg.Persistent {
			r.saveBinding()
		} else {
			r.syncMembers(cache)
		}
		r.unloadIdle()
		r.mu.Unlock()
		return nil
	}
}

// syncMembers sets the members from the groups (under r.mu) and queues
// the bookmark changes. cache may be nil.
func (r *room) syncMembers(cache map[string][]string) {
	s := r.svc
	d := s.cfg.Directory
	if d == nil {
		return
	}
	want := map[string]bool{}
	for _, g := range r.cfg.Groups {
		ms, ok := cache[g]
		if !ok {
			ms, _ = d.GroupMembers(g)
			if cache != nil {
				cache[g] = ms
			}
		}
		for _, m := range ms {
			if b, ok := normBare(m); ok {
				want[b] = true
			}
		}
	}
	r.applyMembers(want)
}

// applyMembers makes want the members (under r.mu) and queues bookmarks:
// added members get the room, removed ones lose it.
func (r *room) applyMembers(want map[string]bool) {
	added, removed := r.setMembers(want)
	if len(added)+len(removed) == 0 {
		return
	}
	r.save()
	name := r.cfg.Name
	if name == "" {
		name = r.jid[:strings.IndexByte(r.jid, '@')]
	}
	changes := make([]bookmarkChange, 0, len(added)+len(removed))
	for _, j := range added {
		changes = append(changes, bookmarkChange{bare: j, room: r.jid, name: name, nick: r.svc.reservedNick(j), add: true})
	}
	for _, j := range removed {
		changes = append(changes, bookmarkChange{bare: j, room: r.jid})
	}
	r.svc.queueBookmarks(changes)
}

// setMembers gives exactly want the affiliation member, leaving owners,
// admins and outcasts alone; it returns who became and who stopped being a
// member, sorted. Called under r.mu; the caller saves.
func (r *room) setMembers(want map[string]bool) (added, removed []string) {
	for j, a := range r.affs {
		if a == Member && !want[j] {
			removed = append(removed, j)
		}
	}
	sort.Strings(removed)
	for _, j := range removed {
		r.setAffiliation(j, None, "", "")
	}
	for j := range want {
		if r.affOf(j) == None {
			added = append(added, j)
		}
	}
	sort.Strings(added)
	for _, j := range added {
		r.setAffiliation(j, Member, "", "")
	}
	return added, removed
}

// checkGroups reports whether every group exists in the directory.
func (s *Service) checkGroups(groups []string) (unknown string, ok bool) {
	if len(groups) == 0 {
		return "", true
	}
	if s.cfg.Directory == nil {
		return groups[0], false
	}
	for _, g := range groups {
		if _, exists := s.cfg.Directory.GroupMembers(g); !exists {
			return g, false
		}
	}
	return "", true
}
