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
	// PhotoChanged are users whose directory photo changed: their
	// available sessions' presence is sent again with the new XEP-0153
	// hash, so that contacts fetch the new avatar now rather than at the
	// user's next presence change.
	PhotoChanged []string
	// Renamed users keep their directory identity under a new username.
	// Their old name's sessions end (list it in Gone too) and their
	// stored data moves to the new name (store.RenameUser) before the
	// roster pushes.
	Renamed []UserRename
}

// UserRename is one username change in the directory.
type UserRename struct{ From, To string }

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
	s.forgetColleagues()       // presence routing follows group changes (rostercache.go)
	s.forgetArchiveDirectory() // retention group rules follow group changes
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
		text := "your account was disabled or removed in the company directory"
		for _, r := range ch.Renamed {
			if r.From == u {
				text = "your username changed in the company directory: sign in as " + r.To
			}
		}
		if n := s.CloseUserSessions(u, string(errNotAuthorized), text); n > 0 {
			s.Logger.Info("directory: sessions closed", "user", u, "sessions", n)
		}
	}
	for _, r := range ch.Renamed {
		// The old name's sessions were told to end; a stanza they
		// still send lands under the old name, which the directory no
		// longer has, so nothing new is written there after this.
		if err := s.Store.RenameUser(r.From+"@"+s.Domain, r.To+"@"+s.Domain); err != nil {
			s.Logger.Error("directory: rename: stored data stays under the old name", "from", r.From, "to", r.To, "err", err)
			continue
		}
		s.Logger.Info("directory: user renamed; stored data moved", "from", r.From, "to", r.To)
	}
	if len(ch.PhotoChanged) > maxContactPushes {
		// A bulk photo import would send every photo to every colleague
		// at once; avatars then update with each user's next presence.
		s.Logger.Warn("directory: many photos changed; avatars update with the next presence", "users", len(ch.PhotoChanged))
	} else {
		for _, u := range ch.PhotoChanged {
			s.rebroadcastAvatar(u)
			s.notifyDirectoryAvatar(u) // XEP-0084 metadata subscribers, avatar.go
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

// rebroadcastAvatar sends the last available presence of each of user's
// sessions again, to the same recipients as goAvailable, with the hash of
// the current avatar: the directory's photo, else the converted one
// (avatar.go; XEP-0153 §4.3: an empty <photo/> when there is none).
func (s *Server) rebroadcastAvatar(user string) {
	if _, ok := s.Directory.Person(user); !ok {
		return
	}
	hash, _ := s.avatarHash(user)
	entries, _, err := s.roster(user)
	if err != nil {
		s.Logger.Error("directory: avatar update", "user", user, "err", err)
		return
	}
	for _, c := range s.router.sessionsOf(user) {
		c.pmu.Lock()
		old, avail := c.presence, c.available
		c.pmu.Unlock()
		if !avail || old == nil {
			continue
		}
		el, err := wire.ParseElement(old)
		if err != nil {
			s.Logger.Error("directory: avatar update", "user", user, "err", err)
			continue
		}
		setAvatarHash(el, hash)
		b := el.AppendXML(make([]byte, 0, len(old)+48), nsClient)
		c.pmu.Lock()
		// A presence the client sent meanwhile already carries the hash.
		replaced := c.available && len(c.presence) > 0 && &c.presence[0] == &old[0]
		if replaced {
			c.presence = b
		}
		c.pmu.Unlock()
		if !replaced {
			continue
		}
		s.toSubscribers(c, entries, b)
		for _, r := range s.router.sessionsOf(user) {
			if r.isAvailable() {
				sendWithTo(r, b)
			}
		}
	}
}
