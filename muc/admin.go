package muc

import (
	"sort"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// admin handles the muc#admin namespace (§8 moderator, §9 admin, §10 owner
// use cases): role changes by nick (kick, voice, moderator), affiliation
// changes by JID (ban, member, admin, owner) and the lists.
func (r *room) admin(el, q *wire.Element, o *occupant, from string) {
	s := r.svc
	actorAff := r.affOf(bareOf(from))
	actorRole := RoleNone
	actorNick := ""
	if o != nil {
		actorRole, actorNick = o.role, o.nick
	}
	var items []*wire.Element
	for _, n := range q.Nodes {
		if n.El != nil && n.El.Local == "item" && n.El.Space == nsAdmin {
			items = append(items, n.El)
		}
	}
	if len(items) == 0 {
		s.bounce(el, "modify", "bad-request")
		return
	}
	if el.Attr("type") == "get" {
		r.adminList(el, items[0], actorAff, actorRole)
		return
	}
	// Check every item before changing anything: the set is atomic.
	type change struct {
		item *wire.Element
		bare string
		aff  Affiliation
		t    *occupant
		role Role
	}
	var changes []change
	owners := 0
	for _, a := range r.affs {
		if a == Owner {
			owners++
		}
	}
	for _, it := range items {
		reason := ""
		if rs := it.Child(nsAdmin, "reason"); rs != nil {
			reason = rs.Text()
		}
		_ = reason
		if as := it.Attr("affiliation"); as != "" {
			aff, ok := parseAffiliation(as)
			if !ok {
				s.bounce(el, "modify", "bad-request")
				return
			}
			bare := ""
			if j := it.Attr("jid"); j != "" {
				bare, ok = normBare(j)
			} else if t := r.byNick[it.Attr("nick")]; t != nil {
				bare = t.bare
			} else {
				ok = false
			}
			if !ok {
				s.bounce(el, "modify", "bad-request")
				return
			}
			cur := r.affOf(bare)
			// §9, §10: admins manage members and outcasts below admin;
			// owners manage everything.
			need := Admin
			if aff >= Admin || cur >= Admin {
				need = Owner
			}
			if actorAff < need {
				s.bounce(el, "auth", "forbidden")
				return
			}
			if cur == Owner && aff != Owner {
				if owners <= 1 {
					s.bounce(el, "cancel", "conflict") // §10.6: the last owner stays
					return
				}
				owners--
			}
			changes = append(changes, change{item: it, bare: bare, aff: aff})
			continue
		}
		role, ok := parseRole(it.Attr("role"))
		t := r.byNick[it.Attr("nick")]
		if !ok || it.Attr("role") == "" {
			s.bounce(el, "modify", "bad-request")
			return
		}
		if t == nil {
			s.bounce(el, "cancel", "item-not-found")
			return
		}
		// §8.2–8.6: moderators kick and (de)voice; granting or revoking
		// moderator takes an admin; admins and owners cannot be demoted
		// or kicked by role.
		switch {
		case role == Moderator || t.role == Moderator && role != RoleNone:
			if actorAff < Admin {
				s.bounce(el, "auth", "forbidden")
				return
			}
		case actorRole < Moderator:
			s.bounce(el, "auth", "forbidden")
			return
		}
		if t.aff >= Admin && role < Moderator || (role == RoleNone && t.aff >= actorAff && t.aff >= Admin) {
			s.bounce(el, "cancel", "not-allowed")
			return
		}
		changes = append(changes, change{item: it, t: t, role: role})
	}
	s.result(el, nil)
	for _, c := range changes {
		reason := ""
		if rs := c.item.Child(nsAdmin, "reason"); rs != nil {
			reason = rs.Text()
		}
		if c.t != nil {
			if r.byReal[c.t.real] != c.t {
				continue // removed by an earlier item
			}
			if c.role == RoleNone {
				r.remove(c.t, &presExtra{codes: []string{"307"}, actor: actorNick, reason: reason}, true) // §8.2
				continue
			}
			c.t.role = c.role
			r.presenceChanged(c.t)
			continue
		}
		r.setAffiliation(c.bare, c.aff, actorNick, reason)
	}
	r.save()
}

// setAffiliation changes bare's affiliation and applies it to its
// occupants: a ban removes them (301), losing membership of a members-only
// room removes them (321), otherwise their role follows (§9, §10).
func (r *room) setAffiliation(bare string, aff Affiliation, actor, reason string) {
	r.nicks = nil // reserved nicks follow the affiliations
	if aff == None {
		delete(r.affs, bare)
	} else {
		r.affs[bare] = aff
	}
	for i := len(r.list) - 1; i >= 0; i-- {
		if i >= len(r.list) {
			continue
		}
		o := r.list[i]
		if o.bare != bare {
			continue
		}
		o.aff = aff
		switch {
		case aff == Outcast:
			r.remove(o, &presExtra{codes: []string{"301"}, actor: actor, reason: reason}, false)
		case aff < Member && r.cfg.MembersOnly:
			o.aff = None
			r.remove(o, &presExtra{codes: []string{"321"}, actor: actor, reason: reason}, false)
		default:
			o.role = r.defaultRole(aff)
			r.presenceChanged(o)
		}
	}
	// No r.empty() here: a room emptied by this is unloaded by the caller
	// once it is done with it (unloadIdle), never while it still changes
	// affiliations that a fresh load would not see.
}

// adminList answers a list request: by affiliation (members and outcasts
// for admins, admins and owners for owners too) or by role (moderators).
func (r *room) adminList(el, item *wire.Element, actorAff Affiliation, actorRole Role) {
	s := r.svc
	q := wire.New(nsAdmin, "query")
	if as := item.Attr("affiliation"); as != "" {
		aff, ok := parseAffiliation(as)
		if !ok || aff == None {
			s.bounce(el, "modify", "bad-request")
			return
		}
		// muc#roomconfig_getmemberlist: the room may let occupants of
		// some roles read the member list; the rest are for admins.
		if actorAff < Admin && (aff != Member || !r.cfg.MemberListRoles.Has(actorRole)) {
			s.bounce(el, "auth", "forbidden")
			return
		}
		var jids []string
		for j, a := range r.affs {
			if a == aff {
				jids = append(jids, j)
			}
		}
		sort.Strings(jids)
		for _, j := range jids {
			it := wire.New("", "item", "affiliation", aff.String(), "jid", j)
			for _, o := range r.list {
				if o.bare == j {
					it.SetAttr("nick", o.nick)
					it.SetAttr("role", o.role.String())
					break
				}
			}
			q.Add(it)
		}
		s.result(el, fixSpace(q))
		return
	}
	role, ok := parseRole(item.Attr("role"))
	if !ok || role == RoleNone {
		s.bounce(el, "modify", "bad-request")
		return
	}
	if actorRole < Moderator {
		s.bounce(el, "auth", "forbidden")
		return
	}
	for _, o := range r.list {
		if o.role == role {
			q.Add(wire.New("", "item", "role", role.String(), "nick", o.nick, "affiliation", o.aff.String(), "jid", o.real))
		}
	}
	s.result(el, fixSpace(q))
}

// SetMembers makes exactly members (bare JIDs) the members of the room
// roomJID: others with affiliation member lose it (and leave a members-only
// room with status 321) and the room leaves their bookmarks; new members
// get it in their bookmarks. Owners, admins and outcasts are left alone.
// Bound rooms get this from SyncBoundRooms. The room must exist.
func (s *Service) SetMembers(roomJID string, members []string) error {
	want := make(map[string]bool, len(members))
	for _, m := range members {
		if b, ok := normBare(m); ok {
			want[b] = true
		}
	}
	for {
		r, _, cond := s.room(roomJID, false, "")
		if r == nil {
			if cond == "" {
				cond = "item-not-found"
			}
			return &RoomError{Room: roomJID, Condition: cond}
		}
		r.mu.Lock()
		if r.gone {
			r.mu.Unlock()
			continue
		}
		r.applyMembers(want)
		r.unloadIdle()
		r.mu.Unlock()
		return nil
	}
}

// RoomError reports why a room operation failed, as a stanza error condition.
type RoomError struct{ Room, Condition string }

func (e *RoomError) Error() string { return "muc: room " + e.Room + ": " + e.Condition }
