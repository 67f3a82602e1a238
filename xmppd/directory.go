package xmppd

import (
	"slices"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// DirectoryChange tells the server what a directory sync changed.
type DirectoryChange struct {
	// Gone are users deleted or disabled in the directory: their sessions
	// end now (a login re-checks the directory anyway).
	Gone []string
	// RosterChanged are users whose shared roster changed.
	RosterChanged []string
	// Contacts are the users whose entries may have changed in those
	// rosters (added, removed, renamed, regrouped).
	Contacts []string
	// Regrouped are users (in RosterChanged and Contacts) whose shared
	// groups changed: their own rosters may have gained or lost any user
	// in RosterChanged.
	Regrouped []string
}

// maxContactPushes bounds the roster pushes one sync sends to one user:
// past it (a mass reorganisation) clients pick the new roster up through
// roster versioning at their next login instead of a flood of pushes.
const maxContactPushes = 200

// DirectoryChanged applies a directory sync to the online sessions: gone
// users are disconnected with <not-authorized/>, and users whose shared
// roster changed get roster pushes (RFC 6121 §2.1.6) for the affected
// contacts plus their current presence (or unavailable, when a contact left
// the roster).
func (s *Server) DirectoryChanged(ch DirectoryChange) {
	s.init()
	// A closed session leaves the router when its reader ends, and then
	// broadcasts unavailable to its roster, which the directory has
	// already emptied: colleagues would see a gone user online forever.
	// So their unavailable presences are built now and sent below.
	gone := make(map[string][][]byte, len(ch.Gone))
	for _, u := range ch.Gone {
		for _, c := range s.router.sessionsOf(u) {
			if c.isAvailable() {
				el := &wire.Element{Space: nsClient, Local: "presence", Attrs: []wire.Attr{{Name: "from", Value: c.fullJID}, {Name: "type", Value: "unavailable"}}}
				gone[u] = append(gone[u], el.AppendXML(nil, nsClient))
			}
		}
		if n := s.CloseUserSessions(u, string(errNotAuthorized), "your account was disabled or removed in the company directory"); n > 0 {
			s.Logger.Info("directory: sessions closed", "user", u, "sessions", n)
		}
	}
	if len(ch.Contacts) > maxContactPushes {
		s.Logger.Warn("directory: large change; rosters update at next login", "contacts", len(ch.Contacts))
		return
	}
	for _, u := range ch.RosterChanged {
		if len(s.router.sessionsOf(u)) == 0 {
			continue
		}
		entries, ver, err := s.roster(u)
		if err != nil {
			s.Logger.Error("directory: roster", "user", u, "err", err)
			continue
		}
		has := make(map[string]bool, len(entries))
		for _, e := range entries {
			if !e.Hidden {
				has[e.JID] = true
			}
		}
		contacts := ch.Contacts
		if slices.Contains(ch.Regrouped, u) {
			contacts = append(slices.Clip(contacts), ch.RosterChanged...)
			slices.Sort(contacts)
			contacts = slices.Compact(contacts)
			if len(contacts) > maxContactPushes {
				s.Logger.Warn("directory: large change; roster updates at next login", "user", u, "contacts", len(contacts))
				continue
			}
		}
		for _, cu := range contacts {
			if cu == u {
				continue
			}
			contact := cu + "@" + s.Domain
			s.pushFromRoster(u, contact, entries, ver)
			if ps, ok := gone[cu]; ok {
				for _, r := range s.router.sessionsOf(u) {
					if r.isAvailable() {
						for _, p := range ps {
							sendWithTo(r, p)
						}
					}
				}
				continue
			}
			// Presence follows the roster: a new colleague is seen at once,
			// a former one disappears (RFC 6121 §4.3, §3.2.3).
			s.sendPresencesOf(contact, u, !has[contact])
			s.sendPresencesOf(u+"@"+s.Domain, cu, !has[contact])
		}
	}
}
