package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Acceptance of issue 5 (multi-user rooms at <subdomain>.<domain>, rooms
// bound to directory groups) for what the other MUC tests leave out: the
// [muc] keys as an operator writes them (subdomain, name, history_size,
// create_rooms = "admins", max_occupants_per_room, [[muc.room]],
// [[muc.auto_room]], enabled = false) and their errors from `xmppd check`,
// history on join with maxchars/seconds/since, status codes 170, 210 and
// 332, hidden rooms, the room info form, reserved nicks, temporary rooms,
// XEP-0402 bookmarks of bound rooms, binding by the owner's form, and
// every standard muc#roomconfig field.

const (
	a5Service = "rooms." + domain
	a5Lobby   = "lobby@" + a5Service
	a5Eng     = "eng@" + a5Service
	a5Dept    = "dept@" + a5Service
	a5Plan    = "plan@" + a5Service
	a5Tmp     = "tmp@" + a5Service
)

// a5Config: alice and Bob are in Engineering (coreConfig), alice is the
// only one who may create rooms, new rooms hold 3 occupants.
const a5Config = `
[muc]
subdomain = "rooms"
name = "Team rooms"
history_size = 2
create_rooms = "admins"
admins = ["alice@` + domain + `"]
max_occupants_per_room = 3
[[muc.room]]
name = "lobby"
title = "Lobby"
public = true
[[muc.room]]
name = "eng"
title = "Engineering"
members_groups = ["Engineering"]
[[muc.auto_room]]
name = "dept"
group = "Engineering"
`

// a5Join joins room as nick; cond is the stanza error condition of a
// refused join, "" on success.
func a5Join(t *testing.T, s *Slix, room, nick string, extra map[string]any) (Event, string) {
	t.Helper()
	cmd := map[string]any{"cmd": "muc_join", "room": room, "nick": nick}
	for k, v := range extra {
		cmd[k] = v
	}
	ev, err := s.Do(cmd)
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && ce.Type != "driver" {
			return nil, ce.Condition
		}
		t.Fatalf("%s joining %s as %s: %v", s.Opts.JID, room, nick, err)
	}
	return ev.Map("data"), ""
}

func a5MustJoin(t *testing.T, s *Slix, room, nick string, extra map[string]any) Event {
	t.Helper()
	ev, cond := a5Join(t, s, room, nick, extra)
	if cond != "" {
		t.Fatalf("%s joining %s as %s: %s", s.Opts.JID, room, nick, cond)
	}
	return ev
}

// a5Leave leaves and waits for the own unavailable presence, so that a
// later join is not answered by this leave's self-presence.
func a5Leave(t *testing.T, s *Slix, room, nick string) {
	t.Helper()
	s.MustDo(t, map[string]any{"cmd": "muc_leave", "room": room, "nick": nick})
	s.Expect(t, mucPresence(room+"/"+nick, "unavailable", "110"), mucWait)
}

func a5History(ev Event) (bodies, stamps []string) {
	hist, _ := ev["history"].([]any)
	for _, h := range hist {
		m := Event(h.(map[string]any))
		bodies = append(bodies, m.Str("body"))
		stamps = append(stamps, m.Str("delay"))
	}
	return bodies, stamps
}

// a5Bookmark2 reports whether s's XEP-0402 bookmarks (PEP node
// urn:xmpp:bookmarks:1) hold room with autojoin.
func a5Bookmark2(t *testing.T, s *Slix, room string) bool {
	t.Helper()
	ev, err := s.Do(map[string]any{"cmd": "pep_items", "jid": bare(s.JID), "node": "urn:xmpp:bookmarks:1"})
	if err != nil {
		if isCondition(err, "item-not-found") {
			return false
		}
		t.Fatalf("%s: bookmarks: %v", s.Opts.JID, err)
	}
	items, _ := ev.Map("data")["items"].([]any)
	for _, it := range items {
		m := Event(it.(map[string]any))
		if m.Str("id") == room {
			x := m.Str("xml")
			return strings.Contains(x, `autojoin="true"`) || strings.Contains(x, "autojoin='true'") ||
				strings.Contains(x, `autojoin="1"`) || strings.Contains(x, "autojoin='1'")
		}
	}
	return false
}

func a5Items(t *testing.T, s *Slix, jid string) []string {
	t.Helper()
	ev := s.MustDo(t, map[string]any{"cmd": "disco_items", "jid": jid})
	var out []string
	items, _ := ev["items"].([]any)
	for _, it := range items {
		out = append(out, Event(it.(map[string]any)).Str("jid"))
	}
	return out
}

// a5FormValue returns the values of field v in the first data form of raw.
func a5FormValue(raw, v string) (string, bool) {
	i := strings.Index(raw, `var="`+v+`"`)
	if i < 0 {
		return "", false
	}
	rest := raw[i:]
	end := strings.Index(rest, "</field>")
	if end < 0 {
		return "", true
	}
	rest = rest[:end]
	j := strings.Index(rest, "<value>")
	if j < 0 {
		return "", true
	}
	k := strings.Index(rest[j:], "</value>")
	return rest[j+len("<value>") : j+k], true
}

// TestAccept5ServiceAndRooms drives one server configured with every
// [muc] key through what a client sees.
func TestAccept5ServiceAndRooms(t *testing.T) {
	cs := startCore(t, a5Config)
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "e2e")
	carol := mucLogin(t, cs, "carol", "e2e")
	dave := mucLogin(t, cs, "dave", "e2e")

	t.Run("subdomain and name", func(t *testing.T) {
		items := a5Items(t, alice, domain)
		if !slices.Contains(items, a5Service) || slices.Contains(items, "conference."+domain) {
			t.Errorf("the domain's disco#items %v: want %s and no conference.%s", items, a5Service, domain)
		}
		info := alice.MustDo(t, map[string]any{"cmd": "disco_info", "jid": a5Service})
		ids, _ := info["identities"].([]any)
		found := false
		for _, i := range ids {
			m := Event(i.(map[string]any))
			found = found || (m.Str("category") == "conference" && m.Str("type") == "text" && m.Str("name") == "Team rooms")
		}
		if !found || !slices.Contains(info.Strings("features"), "http://jabber.org/protocol/muc") {
			t.Errorf("service disco#info %s: want identity conference/text \"Team rooms\" and the muc feature", info.Str("xml"))
		}
	})

	t.Run("public rooms only in disco#items", func(t *testing.T) {
		items := a5Items(t, carol, a5Service)
		if !slices.Contains(items, a5Lobby) || slices.Contains(items, a5Eng) || slices.Contains(items, a5Dept) {
			t.Errorf("service disco#items %v: want the public lobby, not the hidden eng and dept", items)
		}
	})

	t.Run("create_rooms admins", func(t *testing.T) {
		for _, s := range []*Slix{carol, bob} {
			if _, cond := a5Join(t, s, "mine@"+a5Service, "Me", nil); cond != "not-allowed" {
				t.Errorf("%s creating a room under create_rooms = \"admins\": %q, want not-allowed", s.Opts.JID, cond)
			}
		}
	})

	t.Run("bound template and auto room", func(t *testing.T) {
		for _, room := range []string{a5Eng, a5Dept} {
			ev := alice.MustDo(t, map[string]any{"cmd": "muc_affiliations", "room": room, "affiliation": "member"})
			if !slices.Contains(ev.Strings("jids"), "bob@"+domain) {
				t.Errorf("%s members %v lack bob (Engineering)", room, ev.Strings("jids"))
			}
			ev = alice.MustDo(t, map[string]any{"cmd": "muc_affiliations", "room": room, "affiliation": "owner"})
			if !slices.Equal(ev.Strings("jids"), []string{"alice@" + domain}) {
				t.Errorf("%s owners %v, want the [muc] admin alice", room, ev.Strings("jids"))
			}
			if !bookmarked(t, bob, room) || !a5Bookmark2(t, bob, room) {
				t.Errorf("bob (Engineering) lacks an autojoin bookmark of %s (XEP-0048 %v, XEP-0402 %v)",
					room, bookmarked(t, bob, room), a5Bookmark2(t, bob, room))
			}
			if bookmarked(t, carol, room) || a5Bookmark2(t, carol, room) {
				t.Errorf("carol (no group) has a bookmark of %s", room)
			}
			if _, cond := a5Join(t, carol, room, "Carol", nil); cond != "registration-required" {
				t.Errorf("carol joining the bound room %s: %q, want registration-required", room, cond)
			}
		}
		info := bob.MustDo(t, map[string]any{"cmd": "disco_info", "jid": a5Dept})
		for _, f := range []string{"muc_membersonly", "muc_hidden", "muc_persistent"} {
			if !slices.Contains(info.Strings("features"), f) {
				t.Errorf("auto room features %v lack %s", info.Strings("features"), f)
			}
		}
		// XEP-0045 §7.12: the reserved nick is the directory display name.
		ev := bob.MustDo(t, map[string]any{"cmd": "disco_info", "jid": a5Eng, "node": "x-roomuser-item"})
		ids, _ := ev["identities"].([]any)
		if len(ids) != 1 || Event(ids[0].(map[string]any)).Str("name") != "Bob Brenner" {
			t.Errorf("bob's reserved nick in eng: %s, want Bob Brenner", ev.Str("xml"))
		}
	})

	t.Run("history on join", func(t *testing.T) {
		if self := occupantsSelf(t, a5MustJoin(t, alice, a5Lobby, "Alice", nil)); self.has("201") || self.Affiliation != "owner" {
			t.Errorf("alice in the template room: %+v, want owner without 201", self)
		}
		t0 := time.Now().Add(-time.Second)
		for _, b := range []string{"h1", "h2", "h3"} {
			alice.MustDo(t, map[string]any{"cmd": "muc_send", "room": a5Lobby, "body": b})
			alice.Expect(t, Is("message", "from", a5Lobby+"/Alice", "body", b), mucWait)
		}
		t1 := time.Now().Add(time.Second)

		bodies, stamps := a5History(a5MustJoin(t, bob, a5Lobby, "Bob", nil))
		if !slices.Equal(bodies, []string{"h2", "h3"}) {
			t.Fatalf("history with history_size = 2: %v, want [h2 h3]", bodies)
		}
		for _, st := range stamps {
			at, err := time.Parse(time.RFC3339Nano, st)
			if err != nil || at.Before(t0) || at.After(t1) {
				t.Errorf("history delay stamp %q (%v): want the server's time of the message", st, err)
			}
		}
		a5Leave(t, bob, a5Lobby, "Bob")
		if bodies, _ := a5History(a5MustJoin(t, bob, a5Lobby, "Bob", map[string]any{"maxchars": 0})); len(bodies) != 0 {
			t.Errorf("history with maxchars=0: %v, want none", bodies)
		}
		a5Leave(t, bob, a5Lobby, "Bob")
		if bodies, _ := a5History(a5MustJoin(t, bob, a5Lobby, "Bob", map[string]any{"seconds": 3600})); !slices.Equal(bodies, []string{"h2", "h3"}) {
			t.Errorf("history with seconds=3600: %v, want [h2 h3]", bodies)
		}
		a5Leave(t, bob, a5Lobby, "Bob")
		if bodies, _ := a5History(a5MustJoin(t, bob, a5Lobby, "Bob", map[string]any{"since": stamps[1]})); !slices.Equal(bodies, []string{"h3"}) {
			t.Errorf("history since %s: %v, want [h3]", stamps[1], bodies)
		}
	})

	t.Run("210 normalized nick", func(t *testing.T) {
		// "Rene" + combining acute is "René" after NFC (RFC 7622 §3.4).
		dave.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<presence to='" + a5Lobby + "/Rene\u0301'><x xmlns='http://jabber.org/protocol/muc'/></presence>"})
		dave.Expect(t, mucPresence(a5Lobby+"/René", "", "110", "210"), mucWait)
		dave.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<presence type='unavailable' to='" + a5Lobby + "/René'/>"})
		dave.Expect(t, mucPresence(a5Lobby+"/René", "unavailable", "110"), mucWait)
	})

	t.Run("max_occupants_per_room", func(t *testing.T) {
		a5MustJoin(t, carol, a5Lobby, "Carol", nil) // alice, Bob, Carol
		if _, cond := a5Join(t, dave, a5Lobby, "Dave", nil); cond != "service-unavailable" {
			t.Errorf("a 4th occupant with max_occupants_per_room = 3: %q, want service-unavailable", cond)
		}
		a5Leave(t, carol, a5Lobby, "Carol")
	})

	var form Event
	t.Run("owner form", func(t *testing.T) {
		if self := occupantsSelf(t, a5MustJoin(t, alice, a5Plan, "Alice", nil)); !self.has("201", "110") {
			t.Fatalf("the admin creating a room: %+v, want 201 110", self)
		}
		form = alice.MustDo(t, map[string]any{"cmd": "muc_config_get", "room": a5Plan})
		if v := form.Map("fields").Strings("muc#roomconfig_maxusers"); !slices.Equal(v, []string{"3"}) {
			t.Errorf("maxusers of a new room %v, want [3] from max_occupants_per_room", v)
		}
		if !strings.Contains(form.Str("xml"), `var="muc#roomconfig_ownchat_groups"`) || !strings.Contains(form.Str("xml"), `value>Engineering<`) {
			t.Errorf("the form does not offer the directory's groups: %s", form.Str("xml"))
		}
		configure5(t, alice, a5Plan, map[string]any{"muc#roomconfig_enablelogging": "1", "muc#roomconfig_publicroom": "0",
			"muc#roomconfig_roomdesc": "Planning"})
	})

	t.Run("every standard muc#roomconfig field", func(t *testing.T) {
		// XEP-0045 §15.5.3, the muc#roomconfig FORM_TYPE registry.
		for _, f := range []string{"muc#maxhistoryfetch", "muc#roomconfig_allowpm", "muc#roomconfig_allowinvites",
			"muc#roomconfig_changesubject", "muc#roomconfig_enablelogging", "muc#roomconfig_getmemberlist",
			"muc#roomconfig_lang", "muc#roomconfig_pubsub", "muc#roomconfig_maxusers", "muc#roomconfig_membersonly",
			"muc#roomconfig_moderatedroom", "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_persistentroom",
			"muc#roomconfig_presencebroadcast", "muc#roomconfig_publicroom", "muc#roomconfig_roomadmins",
			"muc#roomconfig_roomdesc", "muc#roomconfig_roomname", "muc#roomconfig_roomowners",
			"muc#roomconfig_roomsecret", "muc#roomconfig_whois"} {
			if _, ok := form.Map("fields")[f]; !ok {
				t.Errorf("DEFECT: the owner configuration form lacks the standard field %s", f)
			}
		}
	})

	t.Run("170 hidden room and room info form", func(t *testing.T) {
		if self := occupantsSelf(t, a5MustJoin(t, bob, a5Plan, "Bob", nil)); !self.has("110", "170") {
			t.Errorf("joining a logged room: %+v, want 170 (XEP-0045 §7.2.12)", self)
		}
		if items := a5Items(t, carol, a5Service); slices.Contains(items, a5Plan) {
			t.Errorf("hidden room listed: %v", items)
		}
		info := carol.MustDo(t, map[string]any{"cmd": "disco_info", "jid": a5Plan})
		for _, f := range []string{"muc_hidden", "muc_temporary", "muc_open"} {
			if !slices.Contains(info.Strings("features"), f) {
				t.Errorf("room features %v lack %s", info.Strings("features"), f)
			}
		}
		raw := info.Str("xml")
		for f, want := range map[string]string{"FORM_TYPE": "http://jabber.org/protocol/muc#roominfo",
			"muc#roominfo_description": "Planning", "muc#roominfo_occupants": "2"} {
			if v, ok := a5FormValue(raw, f); !ok || v != want {
				t.Errorf("room info form %s = %q (present %v), want %q", f, v, ok, want)
			}
		}
	})

	t.Run("reserved nick", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": a5Plan, "affiliation": "member", "jid": "bob@" + domain})
		if _, cond := a5Join(t, dave, a5Plan, "Bob Brenner", nil); cond != "conflict" {
			t.Errorf("dave taking member bob's reserved nick: %q, want conflict", cond)
		}
	})

	t.Run("owner binds the room to a group", func(t *testing.T) {
		if err := configure5Err(alice, a5Plan, map[string]any{"muc#roomconfig_ownchat_groups": []string{"NoSuchGroup"}, "muc#roomconfig_persistentroom": "1"}); !isCondition(err, "not-acceptable") {
			t.Errorf("binding to a group that does not exist: %v, want not-acceptable", err)
		}
		if err := configure5Err(alice, a5Plan, map[string]any{"muc#roomconfig_ownchat_groups": []string{"Engineering"}, "muc#roomconfig_persistentroom": "0"}); !isCondition(err, "not-acceptable") {
			t.Errorf("binding a temporary room: %v, want not-acceptable", err)
		}
		alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": a5Plan, "affiliation": "none", "jid": "bob@" + domain})
		configure5(t, alice, a5Plan, map[string]any{"muc#roomconfig_ownchat_groups": []string{"Engineering"}, "muc#roomconfig_persistentroom": "1"})
		ev := alice.MustDo(t, map[string]any{"cmd": "muc_affiliations", "room": a5Plan, "affiliation": "member"})
		if !slices.Contains(ev.Strings("jids"), "bob@"+domain) {
			t.Errorf("members after binding to Engineering %v lack bob", ev.Strings("jids"))
		}
		eventually(t, "bob gets the plan bookmarks", func() bool { return bookmarked(t, bob, a5Plan) && a5Bookmark2(t, bob, a5Plan) })
	})

	t.Run("temporary room goes when empty", func(t *testing.T) {
		a5MustJoin(t, alice, a5Tmp, "Alice", nil)
		configure5(t, alice, a5Tmp, nil)
		a5Leave(t, alice, a5Tmp, "Alice")
		if self := occupantsSelf(t, a5MustJoin(t, alice, a5Tmp, "Alice", nil)); !self.has("201") {
			t.Errorf("rejoining an emptied temporary room: %+v, want a new room (201)", self)
		}
	})

	t.Run("332 at shutdown", func(t *testing.T) {
		// bob is in lobby and plan.
		if err := cs.Xmppd.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		for _, room := range []string{a5Lobby, a5Plan} {
			bob.Expect(t, mucPresence(room+"/Bob", "unavailable", "332", "110"), mucWait)
		}
	})
}

func configure5Err(s *Slix, room string, fields map[string]any) error {
	_, err := s.Do(map[string]any{"cmd": "muc_config_submit", "room": room, "fields": fields})
	return err
}

func configure5(t *testing.T, s *Slix, room string, fields map[string]any) {
	t.Helper()
	if err := configure5Err(s, room, fields); err != nil {
		t.Fatalf("configure %s %v: %v", room, fields, err)
	}
}

// TestAccept5Disabled: [muc] enabled = false serves no conference
// component.
func TestAccept5Disabled(t *testing.T) {
	cs := startCore(t, "[muc]\nenabled = false\n")
	alice := mucLogin(t, cs, "alice", "e2e")
	if items := a5Items(t, alice, domain); slices.Contains(items, "conference."+domain) {
		t.Errorf("disco#items %v list the disabled conference service", items)
	}
	// An error at once (today remote-server-not-found), not silence.
	_, err := alice.Do(map[string]any{"cmd": "disco_info", "jid": "conference." + domain})
	if ce, ok := err.(*CommandError); !ok || ce.Type == "driver" {
		t.Errorf("disco#info of the disabled conference service: %v, want a stanza error", err)
	}
}

// TestAccept5CheckErrors: `xmppd check` names the file, line and key of
// each [muc] mistake and exits 1.
func TestAccept5CheckErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xmppd.toml")
	text := coreConfig(filepath.Join(dir, "data"), FreePort(), FreePort(), FreePort(), `
[muc]
history_size = 5000
create_rooms = "admins"
max_occupants_per_room = -1
[[muc.room]]
name = "legal"
members_groups = ["Legal"]
persistent = false
[[muc.auto_room]]
name = "eng"
`)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) string {
		for i, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, s) {
				return cfg + ":" + strconv.Itoa(i+1) + ": "
			}
		}
		t.Fatalf("no line %q", s)
		return ""
	}
	out, errOut, code := runXmppd(t, "check", "-config", cfg)
	if code != 1 {
		t.Errorf("check exit %d, want 1", code)
	}
	all := out + errOut
	for _, want := range []string{
		lineOf("history_size") + "muc.history_size: ",
		lineOf("create_rooms") + "muc.create_rooms: ",
		lineOf("max_occupants_per_room") + "muc.max_occupants_per_room: ",
		lineOf("members_groups") + "muc.room.members_groups: ",
		lineOf("persistent = false") + "muc.room.persistent: ",
		lineOf("[[muc.auto_room]]") + "muc.auto_room.group: ",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("check output lacks %q:\n%s", want, all)
		}
	}
}
