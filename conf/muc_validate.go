package conf

import (
	"strings"

	"mellium.im/xmpp/jid"
)

// maxHistorySize bounds history_size: each loaded room keeps that many
// messages in memory, so a typo like 200000 would be a memory leak per room.
const maxHistorySize = 1000

// validateMUC checks [muc], normalizes room names and admin JIDs and fills
// the defaults that depend on other keys (members_only and persistent of
// [[muc.room]]).
func validateMUC(p *problems, c *Config) {
	m := &c.MUC
	set := func(path string) bool { _, ok := p.lines[path]; return ok }
	domain := c.Domain
	if _, err := jid.New("", domain, ""); err != nil || domain == "" {
		domain = "example.com" // a bad domain is reported once, by validateTop
	}

	if m.Subdomain == "" {
		p.addf("muc.subdomain", "must not be empty")
	} else if err := checkHostname(m.Subdomain); err != nil {
		p.addf("muc.subdomain", "%v (got %q)", err, m.Subdomain)
	} else {
		m.Subdomain = strings.ToLower(m.Subdomain)
	}
	service := m.Subdomain + "." + domain

	if m.HistorySize < 0 || m.HistorySize > maxHistorySize {
		p.addf("muc.history_size", "must be between 0 and %d (got %d)", maxHistorySize, m.HistorySize)
	}
	if m.MaxOccupantsPerRoom < 0 {
		p.addf("muc.max_occupants_per_room", "must be 0 (no limit) or more (got %d)", m.MaxOccupantsPerRoom)
	}

	for i, a := range m.Admins {
		j, err := jid.Parse(strings.TrimSpace(a))
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			p.addf(indexKey("muc.admins", i), "must be a bare JID such as \"boss@%s\" (got %q)", domain, a)
			continue
		}
		m.Admins[i] = j.String()
	}

	validateCreateRooms(p, m)

	// Room names: one namespace for [[muc.room]] and [[muc.auto_room]].
	seen := map[string]int{}
	roomName := func(path, name string) string {
		if name == "" {
			p.addf(path+".name", "required: the room's name, as in name@%s", service)
			return ""
		}
		j, err := jid.New(name, service, "")
		if err != nil || j.Localpart() == "" {
			p.addf(path+".name", "%q is not a valid room name (RFC 7622 §3.3 localpart)", name)
			return ""
		}
		n := j.Localpart()
		if first, dup := seen[n]; dup {
			p.addf(path+".name", "duplicate room %q (first defined at line %d)", n, first)
		} else {
			seen[n] = p.lines.line(path + ".name")
		}
		return n
	}
	staticGroups := map[string]bool{}
	for _, u := range c.Directory.Users {
		for _, g := range u.Groups {
			staticGroups[g] = true
		}
	}
	// With the static directory every group is known now; with LDAP a group
	// that does not exist yet is simply empty until it does.
	checkGroup := func(path, g string) {
		if c.Directory.Backend == "static" && !staticGroups[g] {
			p.addf(path, "no [[directory.user]] is in group %q", g)
		}
	}

	for i := range m.Rooms {
		r := &m.Rooms[i]
		path := indexKey("muc.room", i)
		if n := roomName(path, r.Name); n != "" {
			r.Name = n
		}
		groups := r.MembersGroups[:0:0]
		for k, g := range r.MembersGroups {
			g = strings.TrimSpace(g)
			if g == "" {
				p.addf(indexKey(path+".members_groups", k), "empty group name")
				continue
			}
			checkGroup(indexKey(path+".members_groups", k), g)
			groups = append(groups, g)
		}
		r.MembersGroups = groups
		if !set(path + ".persistent") {
			r.Persistent = true // a room declared in the file should not vanish when empty
		}
		if len(groups) > 0 {
			if !set(path + ".members_only") {
				r.MembersOnly = true
			}
			if !r.Persistent {
				p.addf(path+".persistent", "a room bound to members_groups must be persistent")
			}
		}
	}
	for i := range m.AutoRooms {
		a := &m.AutoRooms[i]
		path := indexKey("muc.auto_room", i)
		if n := roomName(path, a.Name); n != "" {
			a.Name = n
		}
		a.Group = strings.TrimSpace(a.Group)
		if a.Group == "" {
			p.addf(path+".group", "required: the directory group whose members are the room's members")
		} else {
			checkGroup(path+".group", a.Group)
		}
	}
}

// validateCreateRooms checks create_rooms: "everyone", "admins" or
// "group:NAME" entries, never a policy that locks everyone out by accident.
func validateCreateRooms(p *problems, m *MUC) {
	const key = "muc.create_rooms"
	if len(m.CreateRooms) == 0 {
		p.addf(key, "must not be empty: \"everyone\", \"admins\" or \"group:NAME\" entries")
		return
	}
	at := func(i int) string {
		if len(m.CreateRooms) > 1 {
			return indexKey(key, i)
		}
		return key
	}
	everyone, admins, groups := false, false, 0
	for i, v := range m.CreateRooms {
		switch {
		case v == "everyone":
			everyone = true
		case v == "admins":
			admins = true
		case strings.HasPrefix(v, "group:"):
			if strings.TrimSpace(v[len("group:"):]) == "" {
				p.addf(at(i), "\"group:\" needs a group name, such as \"group:Engineering\"")
			}
			groups++
		default:
			p.addf(at(i), "must be \"everyone\", \"admins\" or \"group:NAME\" (got %q)", v)
		}
	}
	switch {
	case everyone && len(m.CreateRooms) > 1:
		p.addf(key, "\"everyone\" cannot be combined with other entries")
	case admins && groups == 0 && len(m.Admins) == 0:
		p.addf(key, "\"admins\" but muc.admins is empty: nobody could create rooms")
	}
}
