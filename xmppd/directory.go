package xmppd

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
	for _, u := range ch.Gone {
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
		for _, cu := range ch.Contacts {
			if cu == u {
				continue
			}
			contact := cu + "@" + s.Domain
			s.pushFromRoster(u, contact, entries, ver)
			// Presence follows the roster: a new colleague is seen at once,
			// a former one disappears (RFC 6121 §4.3, §3.2.3).
			s.sendPresencesOf(contact, u, !has[contact])
			s.sendPresencesOf(u+"@"+s.Domain, cu, !has[contact])
		}
	}
}
