package conf

import (
	"reflect"
	"slices"
	"testing"
)

const mucUsers = `
[[directory.user]]
name = "alice"
password = "x"
groups = ["Legal", "Engineering"]
`

func TestMUCDefaults(t *testing.T) {
	c, err := Parse("xmppd.toml", []byte(`domain = "corp.example"`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.MUC
	if !m.Enabled || m.Subdomain != "conference" || m.HistorySize != 20 || m.Name != "Chatrooms" ||
		!slices.Equal(m.CreateRooms, []string{"everyone"}) {
		t.Errorf("defaults %+v", m)
	}
	if everyone, groups := m.CreatePolicy(); !everyone || groups != nil {
		t.Errorf("CreatePolicy() = %v, %v; want everyone", everyone, groups)
	}
}

func TestMUCEveryKey(t *testing.T) {
	doc := `domain = "corp.example"
[muc]
enabled = true
subdomain = "Rooms"
name = "Team rooms"
history_size = 50
create_rooms = ["group:Engineering", "admins"]
admins = ["Boss@Corp.Example"]
max_occupants_per_room = 500
[[muc.room]]
name = "Legal"
title = "Legal team"
description = "Contracts"
members_groups = ["Legal", " Engineering "]
public = true
[[muc.room]]
name = "lobby"
persistent = false
[[muc.auto_room]]
name = "engineering"
group = "Engineering"
` + mucUsers
	c, err := Parse("xmppd.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := MUC{
		Enabled: true, Subdomain: "rooms", Name: "Team rooms", HistorySize: 50,
		CreateRooms:         StringList{"group:Engineering", "admins"},
		Admins:              []string{"boss@corp.example"},
		MaxOccupantsPerRoom: 500,
		Rooms: []MUCRoom{
			// bound: persistent and members-only unless said otherwise
			{Name: "legal", Title: "Legal team", Description: "Contracts", MembersGroups: []string{"Legal", "Engineering"},
				Persistent: true, MembersOnly: true, Public: true},
			{Name: "lobby"},
		},
		AutoRooms: []MUCAutoRoom{{Name: "engineering", Group: "Engineering"}},
	}
	if !reflect.DeepEqual(c.MUC, want) {
		t.Errorf("got  %+v\nwant %+v", c.MUC, want)
	}
	if everyone, groups := c.MUC.CreatePolicy(); everyone || !slices.Equal(groups, []string{"Engineering"}) {
		t.Errorf("CreatePolicy() = %v, %v", everyone, groups)
	}
}

func TestMUCCreateRoomsString(t *testing.T) {
	c, err := Parse("xmppd.toml", []byte("domain = \"corp.example\"\n[muc]\ncreate_rooms = \"group:Legal\"\n"+mucUsers))
	if err != nil {
		t.Fatal(err)
	}
	if _, groups := c.MUC.CreatePolicy(); !slices.Equal(groups, []string{"Legal"}) {
		t.Errorf("groups %v", groups)
	}
}

func TestMUCProblems(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"subdomain", "[muc]\nsubdomain = \"a b\"",
			`xmppd.toml:3: muc.subdomain: contains ' ', which DNS names cannot (got "a b")`},
		{"history", "[muc]\nhistory_size = -1",
			"xmppd.toml:3: muc.history_size: must be between 0 and 1000 (got -1)"},
		{"max occupants", "[muc]\nmax_occupants_per_room = -5",
			"xmppd.toml:3: muc.max_occupants_per_room: must be 0 (no limit) or more (got -5)"},
		{"create_rooms value", "[muc]\ncreate_rooms = \"nobody\"",
			`xmppd.toml:3: muc.create_rooms: must be "everyone", "admins" or "group:NAME" (got "nobody")`},
		{"create_rooms empty group", "[muc]\ncreate_rooms = [\"admins\", \"group:\"]\nadmins = [\"a@corp.example\"]",
			`xmppd.toml:3: muc.create_rooms: "group:" needs a group name, such as "group:Engineering"`},
		{"everyone and more", "[muc]\ncreate_rooms = [\"everyone\", \"admins\"]\nadmins = [\"a@corp.example\"]",
			`xmppd.toml:3: muc.create_rooms: "everyone" cannot be combined with other entries`},
		{"admins without admins", "[muc]\ncreate_rooms = \"admins\"",
			`xmppd.toml:3: muc.create_rooms: "admins" but muc.admins is empty: nobody could create rooms`},
		{"create_rooms empty", "[muc]\ncreate_rooms = []",
			`xmppd.toml:3: muc.create_rooms: must not be empty: "everyone", "admins" or "group:NAME" entries`},
		{"admin jid", "[muc]\nadmins = [\"ok@corp.example\", \"corp.example/res\"]",
			`xmppd.toml:3: muc.admins: must be a bare JID such as "boss@corp.example" (got "corp.example/res")`},
		{"room without name", "[[muc.room]]\ntitle = \"x\"",
			"xmppd.toml:2: muc.room.name: required: the room's name, as in name@conference.corp.example"},
		{"room bad name", "[[muc.room]]\nname = \"a@b\"",
			`xmppd.toml:3: muc.room.name: "a@b" is not a valid room name (RFC 7622 §3.3 localpart)`},
		{"duplicate room", "[[muc.room]]\nname = \"Legal\"\n[[muc.auto_room]]\nname = \"legal\"\ngroup = \"Legal\"",
			`xmppd.toml:5: muc.auto_room.name: duplicate room "legal" (first defined at line 3)`},
		{"bound temporary", "[[muc.room]]\nname = \"legal\"\nmembers_groups = [\"Legal\"]\npersistent = false",
			"xmppd.toml:5: muc.room.persistent: a room bound to members_groups must be persistent"},
		{"unknown static group", "[[muc.room]]\nname = \"x\"\nmembers_groups = [\"Lgeal\"]",
			`xmppd.toml:4: muc.room.members_groups: no [[directory.user]] is in group "Lgeal"`},
		{"empty group name", "[[muc.room]]\nname = \"x\"\nmembers_groups = [\" \"]",
			"xmppd.toml:4: muc.room.members_groups: empty group name"},
		{"auto room without group", "[[muc.auto_room]]\nname = \"eng\"",
			"xmppd.toml:2: muc.auto_room.group: required: the directory group whose members are the room's members"},
		{"unknown key", "[[muc.auto_room]]\nname = \"eng\"\ngroups = \"Legal\"\ngroup = \"Legal\"",
			`xmppd.toml:4: muc.auto_room.groups: unknown key (did you mean "group"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "domain = \"corp.example\"\n" + tc.doc + "\n" + mucUsers
			_, err := Parse("xmppd.toml", []byte(doc))
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
