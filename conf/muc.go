package conf

import "strings"

// MUC is the [muc] section (issue 5): the group chat service
// (XEP-0045) at <subdomain>.<domain>.
type MUC struct {
	// Enabled serves the rooms; false: no conference component at all.
	Enabled bool `toml:"enabled"`
	// Subdomain is the service's label: rooms are name@<subdomain>.<domain>.
	Subdomain string `toml:"subdomain"`
	// Name is the service's name in service discovery.
	Name string `toml:"name"`
	// HistorySize is how many messages a room replays to a joiner; 0: none.
	HistorySize int `toml:"history_size"`
	// CreateRooms says who may create rooms: "everyone", "admins", or one
	// or more "group:NAME" entries (members of any of those directory
	// groups; admins always may). In TOML a string or an array.
	CreateRooms StringList `toml:"create_rooms"`
	// Admins are bare JIDs that may always create rooms and own the rooms
	// declared in this file. Validation normalizes them.
	Admins []string `toml:"admins"`
	// MaxOccupantsPerRoom is the default muc#roomconfig_maxusers of new
	// rooms; 0: no limit.
	MaxOccupantsPerRoom int `toml:"max_occupants_per_room"`
	// Rooms are the [[muc.room]] templates: rooms that exist from start,
	// optionally bound to directory groups.
	Rooms []MUCRoom `toml:"room"`
	// AutoRooms are the [[muc.auto_room]] department rooms: one
	// members-only room per directory group.
	AutoRooms []MUCAutoRoom `toml:"auto_room"`
}

// MUCRoom is one [[muc.room]]: a persistent room the server creates at
// start (and re-applies this configuration to at every start). Binding it
// to groups makes its member list follow the directory.
type MUCRoom struct {
	// Name is the room's localpart (name@conference.<domain>), normalized.
	Name string `toml:"name"`
	// Title is the room's natural-language name (muc#roomconfig_roomname).
	Title       string `toml:"title"`
	Description string `toml:"description"`
	// MembersGroups binds the room: its members are the members of these
	// directory groups, on every sync.
	MembersGroups []string `toml:"members_groups"`
	Persistent    bool     `toml:"persistent"`
	// MembersOnly defaults to true when MembersGroups is set.
	MembersOnly bool `toml:"members_only"`
	Public      bool `toml:"public"`
}

// MUCAutoRoom is one [[muc.auto_room]]: a department room bound to one
// group, persistent, members-only and hidden, titled after the group.
type MUCAutoRoom struct {
	Name  string `toml:"name"`
	Group string `toml:"group"`
}

// CreatePolicy interprets CreateRooms: everyone may create rooms, or only
// the admins and the members of groups.
func (m *MUC) CreatePolicy() (everyone bool, groups []string) {
	for _, v := range m.CreateRooms {
		switch {
		case v == "everyone":
			everyone = true
		case strings.HasPrefix(v, "group:"):
			groups = append(groups, strings.TrimSpace(v[len("group:"):]))
		}
	}
	return everyone, groups
}

func defaultMUC() MUC {
	return MUC{
		Enabled:     true,
		Subdomain:   "conference",
		Name:        "Chatrooms",
		HistorySize: 20,
		CreateRooms: StringList{"everyone"},
	}
}
