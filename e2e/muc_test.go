package e2e

import (
	"encoding/xml"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// Multi-user chat (XEP-0045) at conference.<domain>, proven with slixmpp's
// xep_0045 plugin: the status codes each use case must carry are read from
// the presences the real client received.

const (
	mucService = "conference." + domain
	mucRoom    = "team@" + mucService
	mucWait    = 10 * time.Second
)

// mucInfo is what a MUC presence or message says in its muc#user element.
type mucInfo struct {
	Codes                        []string
	Affiliation, Role, JID, Nick string
	Destroy                      string // alternate venue of a destroy
	Invite                       string // from of a mediated invitation
	StanzaIDBy                   string // XEP-0359 stanza-id by
	Conference                   string // XEP-0249 direct invitation jid
}

func parseMUC(raw string) mucInfo {
	var mi mucInfo
	d := xml.NewDecoder(strings.NewReader(raw))
	for {
		tok, err := d.Token()
		if err != nil {
			return mi
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := func(n string) string {
			for _, a := range se.Attr {
				if a.Name.Local == n {
					return a.Value
				}
			}
			return ""
		}
		switch se.Name {
		case xml.Name{Space: "http://jabber.org/protocol/muc#user", Local: "status"}:
			mi.Codes = append(mi.Codes, attr("code"))
		case xml.Name{Space: "http://jabber.org/protocol/muc#user", Local: "item"}:
			mi.Affiliation, mi.Role, mi.JID, mi.Nick = attr("affiliation"), attr("role"), attr("jid"), attr("nick")
		case xml.Name{Space: "http://jabber.org/protocol/muc#user", Local: "destroy"}:
			mi.Destroy = attr("jid")
		case xml.Name{Space: "http://jabber.org/protocol/muc#user", Local: "invite"}:
			mi.Invite = attr("from")
		case xml.Name{Space: "urn:xmpp:sid:0", Local: "stanza-id"}:
			mi.StanzaIDBy = attr("by")
		case xml.Name{Space: "jabber:x:conference", Local: "x"}:
			mi.Conference = attr("jid")
		}
	}
}

func (mi mucInfo) has(codes ...string) bool {
	for _, c := range codes {
		if !slices.Contains(mi.Codes, c) {
			return false
		}
	}
	return true
}

// mucPresence matches a presence from room/nick of type typ ("" for
// available) carrying at least the given status codes.
func mucPresence(from, typ string, codes ...string) func(Event) bool {
	if typ == "" {
		typ = "available"
	}
	return func(e Event) bool {
		return e.Name() == "presence" && e.Str("from") == from && e.Str("type") == typ && parseMUC(e.Str("xml")).has(codes...)
	}
}

// mucLogin logs user in and sends initial presence, as a chat client
// does: invitations to the bare JID go to available resources only.
func mucLogin(t *testing.T, cs *coreServer, user, resource string) *Slix {
	t.Helper()
	s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: strings.ToLower(user) + "-pw",
		Port: cs.C2S, NoVerify: true, Resource: resource})
	s.WaitSession(t)
	s.MustDo(t, map[string]any{"cmd": "presence"})
	return s
}

func occupantsSelf(t *testing.T, data Event) mucInfo {
	t.Helper()
	self := data.Map("self")
	mi := mucInfo{Affiliation: self.Str("affiliation"), Role: self.Str("role"), JID: self.Str("jid"), Nick: self.Str("nick")}
	mi.Codes = self.Strings("codes")
	return mi
}

func mucJoin(t *testing.T, s *Slix, nick string, extra map[string]any) Event {
	t.Helper()
	cmd := map[string]any{"cmd": "muc_join", "room": mucRoom, "nick": nick}
	for k, v := range extra {
		cmd[k] = v
	}
	return s.MustDo(t, cmd)
}

func mucJoinError(t *testing.T, s *Slix, nick string, extra map[string]any) string {
	t.Helper()
	cmd := map[string]any{"cmd": "muc_join", "room": mucRoom, "nick": nick}
	for k, v := range extra {
		cmd[k] = v
	}
	_, err := s.Do(cmd)
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("%s joining as %s: %v, want a stanza error", s.Opts.JID, nick, err)
	}
	return ce.Condition
}

func configure(t *testing.T, s *Slix, fields map[string]any) {
	t.Helper()
	s.MustDo(t, map[string]any{"cmd": "muc_config_submit", "room": mucRoom, "fields": fields})
}

// TestMUCOccupants: create an instant room, three users join, messages,
// nick change, subject, private message, history on join, self-ping,
// disco of the service and the room.
func TestMUCOccupants(t *testing.T) {
	cs := startCore(t, "")
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "e2e")
	carol := mucLogin(t, cs, "carol", "e2e")
	dave := mucLogin(t, cs, "dave", "e2e")

	// Creation: 201 + 110, owner and moderator; locked until configured.
	got := mucJoin(t, alice, "Alice", nil)
	if self := occupantsSelf(t, got); !self.has("110", "201") || self.Affiliation != "owner" || self.Role != "moderator" {
		t.Fatalf("creator self-presence %+v, want 110 201 owner moderator", self)
	}
	if cond := mucJoinError(t, bob, "Bob", nil); cond != "item-not-found" {
		t.Fatalf("join of a locked room: %s, want item-not-found (XEP-0045 §10.1.1)", cond)
	}
	configure(t, alice, nil) // instant room: accept the defaults

	got = mucJoin(t, bob, "Bob", nil)
	if self := occupantsSelf(t, got); !self.has("110") || self.has("201") || self.has("100") || self.Role != "participant" {
		t.Errorf("bob's self-presence %+v", self)
	}
	if occ, _ := got["occupants"].([]any); len(occ) != 1 || Event(occ[0].(map[string]any)).Str("jid") != "" {
		t.Errorf("occupants %v: want Alice only, without her JID (semi-anonymous)", got["occupants"])
	}
	// Alice is a moderator: she sees bob's real JID.
	ev := alice.Expect(t, mucPresence(mucRoom+"/Bob", ""), mucWait)
	if mi := parseMUC(ev.Str("xml")); mi.JID != bob.JID {
		t.Errorf("moderator saw bob as %+v, want jid %s", mi, bob.JID)
	}
	mucJoin(t, carol, "Carol", nil)
	if cond := mucJoinError(t, dave, "Carol", nil); cond != "conflict" {
		t.Errorf("nick conflict: %s, want conflict", cond)
	}

	// Groupchat: everyone, the sender included, gets it once with a
	// stanza-id by the room.
	alice.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": "hello room", "stanza_id": "g1"})
	for _, s := range []*Slix{alice, bob, carol} {
		ev := s.Expect(t, Is("message", "from", mucRoom+"/Alice", "type", "groupchat", "body", "hello room"), mucWait)
		if ev.Str("id") != "g1" || parseMUC(ev.Str("xml")).StanzaIDBy != mucRoom {
			t.Errorf("%s got %v", s.Opts.JID, ev)
		}
	}

	// Nick change: 303 with the new nick, then the new presence.
	carol.MustDo(t, map[string]any{"cmd": "muc_nick", "room": mucRoom, "nick": "Caroline"})
	ev = bob.Expect(t, mucPresence(mucRoom+"/Carol", "unavailable", "303"), mucWait)
	if mi := parseMUC(ev.Str("xml")); mi.Nick != "Caroline" {
		t.Errorf("303 without the new nick: %+v", mi)
	}
	bob.Expect(t, mucPresence(mucRoom+"/Caroline", ""), mucWait)
	carol.Expect(t, mucPresence(mucRoom+"/Carol", "unavailable", "303", "110"), mucWait)

	// Subject: moderators may; participants may not by default.
	alice.MustDo(t, map[string]any{"cmd": "muc_subject", "room": mucRoom, "subject": "Sprint 12"})
	bob.Expect(t, Is("message", "from", mucRoom+"/Alice", "subject", "Sprint 12"), mucWait)
	bob.MustDo(t, map[string]any{"cmd": "muc_subject", "room": mucRoom, "subject": "mine"})
	ev = bob.Expect(t, Is("message", "from", mucRoom, "type", "error"), mucWait)
	if ev.Map("error").Str("condition") != "forbidden" {
		t.Errorf("participant subject change: %v", ev)
	}

	// Private message between occupants.
	bob.MustDo(t, map[string]any{"cmd": "send", "to": mucRoom + "/Alice", "body": "psst", "type": "chat"})
	alice.Expect(t, Is("message", "from", mucRoom+"/Bob", "type", "chat", "body", "psst"), mucWait)

	// History and subject on join.
	bob.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": "second"})
	alice.Expect(t, Is("message", "from", mucRoom+"/Bob", "body", "second"), mucWait)
	got = mucJoin(t, dave, "Dave", map[string]any{"maxstanzas": 1})
	hist, _ := got["history"].([]any)
	if len(hist) != 1 || Event(hist[0].(map[string]any)).Str("body") != "second" || Event(hist[0].(map[string]any)).Str("delay") == "" {
		t.Errorf("history with maxstanzas=1: %v", got["history"])
	}
	if got.Str("subject") != "Sprint 12" {
		t.Errorf("subject on join %q", got.Str("subject"))
	}
	dave.MustDo(t, map[string]any{"cmd": "muc_leave", "room": mucRoom, "nick": "Dave"})
	alice.Expect(t, mucPresence(mucRoom+"/Dave", "unavailable"), mucWait)
	got = mucJoin(t, dave, "Dave", nil)
	if hist, _ := got["history"].([]any); len(hist) != 2 {
		t.Errorf("default history: %v, want both messages", got["history"])
	}

	// XEP-0410 self-ping; a non-occupant is told it is not joined.
	bob.MustDo(t, map[string]any{"cmd": "ping", "jid": mucRoom + "/Bob"})
	eve := mucLogin(t, cs, "carol", "other") // carol's second session is not an occupant
	if _, err := eve.Do(map[string]any{"cmd": "ping", "jid": mucRoom + "/Bob"}); err == nil || !strings.Contains(err.Error(), "not-acceptable") {
		t.Errorf("self-ping from a non-occupant: %v, want not-acceptable", err)
	}

	// Disco: the service, its public rooms, the room's features.
	info := bob.MustDo(t, map[string]any{"cmd": "disco_info", "jid": mucService})
	if !slices.Contains(info.Strings("features"), "http://jabber.org/protocol/muc") {
		t.Errorf("service features %v", info.Strings("features"))
	}
	items := bob.MustDo(t, map[string]any{"cmd": "disco_items", "jid": mucService})
	if !strings.Contains(items.Str("xml"), "jid=\""+mucRoom+"\"") {
		t.Errorf("disco#items %s lacks the public room", items.Str("xml"))
	}
	info = bob.MustDo(t, map[string]any{"cmd": "disco_info", "jid": mucRoom})
	for _, f := range []string{"muc_public", "muc_temporary", "muc_open", "muc_semianonymous", "muc_unmoderated", "muc_unsecured"} {
		if !slices.Contains(info.Strings("features"), f) {
			t.Errorf("room features %v lack %s", info.Strings("features"), f)
		}
	}
	domItems := bob.MustDo(t, map[string]any{"cmd": "disco_items", "jid": domain})
	if !strings.Contains(domItems.Str("xml"), mucService) {
		t.Errorf("the domain's disco#items %s do not list %s", domItems.Str("xml"), mucService)
	}

	// Leaving: self gets 110, the others an unavailable presence.
	carol.MustDo(t, map[string]any{"cmd": "muc_leave", "room": mucRoom, "nick": "Caroline"})
	carol.Expect(t, mucPresence(mucRoom+"/Caroline", "unavailable", "110"), mucWait)
	bob.Expect(t, mucPresence(mucRoom+"/Caroline", "unavailable"), mucWait)
}

// TestMUCModeration: kick (307), ban (301), members-only (322, 321,
// registration-required), voice in a moderated room, affiliation lists,
// mediated and direct invitations.
func TestMUCModeration(t *testing.T) {
	cs := startCore(t, "")
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "e2e")
	carol := mucLogin(t, cs, "carol", "e2e")
	dave := mucLogin(t, cs, "dave", "e2e")

	mucJoin(t, alice, "Alice", nil)
	configure(t, alice, map[string]any{"muc#roomconfig_whois": "anyone", "muc#roomconfig_moderatedroom": "1"})
	got := mucJoin(t, bob, "Bob", nil)
	if self := occupantsSelf(t, got); !self.has("110", "100") || self.Role != "visitor" {
		t.Errorf("bob in a moderated non-anonymous room: %+v, want 100 110 visitor", self)
	}
	mucJoin(t, carol, "Carol", nil)
	mucJoin(t, dave, "Dave", nil)

	// Voice: a visitor may not speak until a moderator grants it.
	bob.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": "may I?"})
	if ev := bob.Expect(t, Is("message", "from", mucRoom, "type", "error"), mucWait); ev.Map("error").Str("condition") != "forbidden" {
		t.Errorf("visitor message: %v", ev)
	}
	alice.MustDo(t, map[string]any{"cmd": "muc_role", "room": mucRoom, "nick": "Bob", "role": "participant"})
	ev := carol.Expect(t, func(e Event) bool {
		return mucPresence(mucRoom+"/Bob", "")(e) && parseMUC(e.Str("xml")).Role == "participant"
	}, mucWait)
	if mi := parseMUC(ev.Str("xml")); mi.JID != bob.JID {
		t.Errorf("voice: %+v", mi)
	}
	bob.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": "thanks"})
	carol.Expect(t, Is("message", "from", mucRoom+"/Bob", "body", "thanks"), mucWait)

	// A participant cannot kick.
	if _, err := bob.Do(map[string]any{"cmd": "muc_role", "room": mucRoom, "nick": "Dave", "role": "none"}); err == nil {
		t.Error("a participant kicked someone")
	}
	// Kick: 307 for everyone, 110 too for the kicked.
	alice.MustDo(t, map[string]any{"cmd": "muc_role", "room": mucRoom, "nick": "Dave", "role": "none", "reason": "flood"})
	dave.Expect(t, mucPresence(mucRoom+"/Dave", "unavailable", "307", "110"), mucWait)
	carol.Expect(t, mucPresence(mucRoom+"/Dave", "unavailable", "307"), mucWait)
	// Ban: 301, and the outcast cannot come back.
	alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": mucRoom, "affiliation": "outcast", "jid": "dave@" + domain})
	if cond := mucJoinError(t, dave, "Dave", nil); cond != "forbidden" {
		t.Errorf("banned rejoin: %s, want forbidden", cond)
	}
	alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": mucRoom, "affiliation": "outcast", "jid": "carol@" + domain, "reason": "bye"})
	carol.Expect(t, mucPresence(mucRoom+"/Carol", "unavailable", "301", "110"), mucWait)
	bob.Expect(t, mucPresence(mucRoom+"/Carol", "unavailable", "301"), mucWait)
	l := alice.MustDo(t, map[string]any{"cmd": "muc_affiliations", "room": mucRoom, "affiliation": "outcast"})
	if want := []string{"carol@" + domain, "dave@" + domain}; !slices.Equal(l.Strings("jids"), want) {
		t.Errorf("outcasts %v, want %v", l.Strings("jids"), want)
	}

	// Members-only: non-members are removed (322) and refused.
	alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": mucRoom, "affiliation": "none", "jid": "dave@" + domain})
	configure(t, alice, map[string]any{"muc#roomconfig_membersonly": "1"})
	bob.Expect(t, mucPresence(mucRoom+"/Bob", "unavailable", "322", "110"), mucWait)
	if cond := mucJoinError(t, bob, "Bob", nil); cond != "registration-required" {
		t.Errorf("non-member join: %s, want registration-required", cond)
	}
	alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": mucRoom, "affiliation": "member", "jid": "bob@" + domain})
	mucJoin(t, bob, "Bob", nil)
	// Losing membership removes with 321.
	alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": mucRoom, "affiliation": "none", "jid": "bob@" + domain})
	bob.Expect(t, mucPresence(mucRoom+"/Bob", "unavailable", "321"), mucWait)

	// A mediated invitation makes dave a member of the members-only room.
	alice.MustDo(t, map[string]any{"cmd": "muc_invite", "room": mucRoom, "jid": "dave@" + domain, "reason": "come back"})
	ev = dave.Expect(t, func(e Event) bool { return Is("message", "from", mucRoom)(e) && parseMUC(e.Str("xml")).Invite != "" }, mucWait)
	if mi := parseMUC(ev.Str("xml")); !strings.HasPrefix(mi.Invite, "alice@"+domain) {
		t.Errorf("invitation %v", ev)
	}
	mucJoin(t, dave, "Dave", nil)
	l = alice.MustDo(t, map[string]any{"cmd": "muc_affiliations", "room": mucRoom, "affiliation": "member"})
	if !slices.Equal(l.Strings("jids"), []string{"dave@" + domain}) {
		t.Errorf("members %v", l.Strings("jids"))
	}
	// XEP-0249: a direct invitation is a message between users.
	alice.MustDo(t, map[string]any{"cmd": "muc_direct_invite", "jid": "bob@" + domain, "room": mucRoom, "reason": "join"})
	ev = bob.Expect(t, func(e Event) bool { return e.Name() == "message" && parseMUC(e.Str("xml")).Conference == mucRoom }, mucWait)
	if !strings.HasPrefix(ev.Str("from"), "alice@"+domain) {
		t.Errorf("direct invitation from %s", ev.Str("from"))
	}
}

// TestMUCPersistence: the owner configuration form round trip; a
// persistent room's configuration, affiliations and subject survive a
// restart of xmppd; destroy with an alternate venue.
func TestMUCPersistence(t *testing.T) {
	cs := startCore(t, "")
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "e2e")

	mucJoin(t, alice, "Alice", nil)
	form := alice.MustDo(t, map[string]any{"cmd": "muc_config_get", "room": mucRoom}).Map("fields")
	for _, f := range []string{"muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
		"muc#roomconfig_publicroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom",
		"muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret", "muc#roomconfig_whois",
		"muc#roomconfig_maxusers", "muc#roomconfig_changesubject", "muc#roomconfig_allowinvites",
		"muc#roomconfig_allowpm", "muc#roomconfig_enablelogging"} {
		if _, ok := form[f]; !ok {
			t.Errorf("configuration form lacks %s", f)
		}
	}
	configure(t, alice, map[string]any{
		"muc#roomconfig_roomname":              "Team Room",
		"muc#roomconfig_roomdesc":              "Where we plan",
		"muc#roomconfig_persistentroom":        "1",
		"muc#roomconfig_passwordprotectedroom": "1",
		"muc#roomconfig_roomsecret":            "s3cret",
		"muc#roomconfig_maxusers":              "50",
	})
	alice.MustDo(t, map[string]any{"cmd": "muc_affiliation", "room": mucRoom, "affiliation": "admin", "jid": "bob@" + domain})
	alice.MustDo(t, map[string]any{"cmd": "muc_subject", "room": mucRoom, "subject": "Kept across restarts"})
	alice.Expect(t, Is("message", "from", mucRoom+"/Alice", "subject", "Kept across restarts"), mucWait)
	if cond := mucJoinError(t, bob, "Bob", map[string]any{"password": "wrong"}); cond != "not-authorized" {
		t.Errorf("wrong password: %s, want not-authorized", cond)
	}

	if err := cs.Xmppd.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	cs.Xmppd = StartXmppd(t, cs.Config)
	alice = mucLogin(t, cs, "alice", "e2e")
	bob = mucLogin(t, cs, "Bob", "e2e")

	got := mucJoin(t, bob, "Bob", map[string]any{"password": "s3cret"})
	if self := occupantsSelf(t, got); self.has("201") || self.Affiliation != "admin" || self.Role != "moderator" {
		t.Errorf("bob after restart: %+v, want admin moderator, no 201", self)
	}
	if got.Str("subject") != "Kept across restarts" {
		t.Errorf("subject after restart %q", got.Str("subject"))
	}
	mucJoin(t, alice, "Alice", nil) // the owner needs no password
	form = alice.MustDo(t, map[string]any{"cmd": "muc_config_get", "room": mucRoom}).Map("fields")
	for k, want := range map[string]string{"muc#roomconfig_roomname": "Team Room", "muc#roomconfig_roomdesc": "Where we plan",
		"muc#roomconfig_persistentroom": "1", "muc#roomconfig_maxusers": "50", "muc#roomconfig_passwordprotectedroom": "1"} {
		if v := form.Strings(k); len(v) != 1 || v[0] != want {
			t.Errorf("%s after restart = %v, want %s", k, v, want)
		}
	}
	info := bob.MustDo(t, map[string]any{"cmd": "disco_info", "jid": mucRoom})
	for _, f := range []string{"muc_persistent", "muc_passwordprotected"} {
		if !slices.Contains(info.Strings("features"), f) {
			t.Errorf("room features %v lack %s", info.Strings("features"), f)
		}
	}

	// Destroy: occupants learn the alternate venue; the room is gone.
	alice.MustDo(t, map[string]any{"cmd": "muc_destroy", "room": mucRoom, "reason": "moving", "altroom": "new@" + mucService})
	ev := bob.Expect(t, mucPresence(mucRoom+"/Bob", "unavailable"), mucWait)
	if mi := parseMUC(ev.Str("xml")); mi.Destroy != "new@"+mucService {
		t.Errorf("destroy presence %v", ev)
	}
	got = mucJoin(t, bob, "Bob", nil)
	if self := occupantsSelf(t, got); !self.has("201") {
		t.Errorf("join after destroy: %+v, want a new room (201)", self)
	}
}

// TestMUCMultiSession: one user joins under one nick from two resources
// (XEP-0045 §7.2.9): no conflict for the same user, conflict for another;
// messages and private messages reach both sessions; IQs go to the most
// recently active one; one session leaving is seen by that session only;
// a kick removes both.
func TestMUCMultiSession(t *testing.T) {
	cs := startCore(t, "")
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "desk")
	bobPhone := mucLogin(t, cs, "Bob", "phone")
	dave := mucLogin(t, cs, "dave", "e2e")

	mucJoin(t, alice, "Alice", nil)
	configure(t, alice, map[string]any{"muc#roomconfig_whois": "anyone"})
	mucJoin(t, bob, "Bob", nil)
	alice.Expect(t, mucPresence(mucRoom+"/Bob", ""), mucWait)
	got := mucJoin(t, bobPhone, "Bob", nil)
	if self := occupantsSelf(t, got); !self.has("110", "100") || self.JID != bobPhone.JID {
		t.Errorf("second session's self-presence %+v, want 110 100 and its own JID %s", self, bobPhone.JID)
	}
	if occ, _ := got["occupants"].([]any); len(occ) != 1 || Event(occ[0].(map[string]any)).Str("nick") != "Alice" {
		t.Errorf("second session's occupants %v, want Alice only", got["occupants"])
	}
	// For the others Bob is still one occupant, now with the phone's presence.
	ev := alice.Expect(t, mucPresence(mucRoom+"/Bob", ""), mucWait)
	if mi := parseMUC(ev.Str("xml")); mi.JID != bobPhone.JID {
		t.Errorf("alice sees Bob as %+v, want the most recent session %s", mi, bobPhone.JID)
	}
	if cond := mucJoinError(t, dave, "Bob", nil); cond != "conflict" {
		t.Errorf("another user taking Bob: %s, want conflict", cond)
	}

	// In-room and private messages reach both sessions.
	alice.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": "to all"})
	alice.MustDo(t, map[string]any{"cmd": "send", "to": mucRoom + "/Bob", "body": "to bob", "type": "chat"})
	for _, s := range []*Slix{bob, bobPhone} {
		s.Expect(t, Is("message", "from", mucRoom+"/Alice", "type", "groupchat", "body", "to all"), mucWait)
		s.Expect(t, Is("message", "from", mucRoom+"/Alice", "type", "chat", "body", "to bob"), mucWait)
	}
	// Either session speaks as Bob.
	bob.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": "from the desk"})
	alice.Expect(t, Is("message", "from", mucRoom+"/Bob", "body", "from the desk"), mucWait)
	bobPhone.Expect(t, Is("message", "from", mucRoom+"/Bob", "body", "from the desk"), mucWait)

	// An IQ to room/Bob goes to one session: the most recently active.
	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": mucRoom + "/Bob"})
	bobPhone.Expect(t, Is("iq", "type", "get", "from", mucRoom+"/Alice"), mucWait)
	bob.Never(t, Is("iq", "type", "get", "from", mucRoom+"/Alice"), time.Second)
	bob.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<presence to='" + mucRoom + "/Bob'><show>away</show></presence>"})
	alice.Expect(t, func(e Event) bool { return mucPresence(mucRoom+"/Bob", "")(e) && e.Str("show") == "away" }, mucWait)
	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": mucRoom + "/Bob"})
	bob.Expect(t, Is("iq", "type", "get", "from", mucRoom+"/Alice"), mucWait)
	bobPhone.Never(t, Is("iq", "type", "get", "from", mucRoom+"/Alice"), time.Second)

	// The phone leaves: only it hears so; Bob stays in the room.
	bobPhone.MustDo(t, map[string]any{"cmd": "muc_leave", "room": mucRoom, "nick": "Bob"})
	bobPhone.Expect(t, mucPresence(mucRoom+"/Bob", "unavailable", "110"), mucWait)
	alice.Never(t, mucPresence(mucRoom+"/Bob", "unavailable"), time.Second)
	alice.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": "still there?"})
	bob.Expect(t, Is("message", "from", mucRoom+"/Alice", "body", "still there?"), mucWait)
	bobPhone.Never(t, Is("message", "body", "still there?"), time.Second)

	// Back with both sessions; a kick removes both.
	mucJoin(t, bobPhone, "Bob", nil)
	alice.MustDo(t, map[string]any{"cmd": "muc_role", "room": mucRoom, "nick": "Bob", "role": "none", "reason": "bye"})
	for _, s := range []*Slix{bob, bobPhone} {
		s.Expect(t, mucPresence(mucRoom+"/Bob", "unavailable", "307", "110"), mucWait)
	}
	alice.Expect(t, mucPresence(mucRoom+"/Bob", "unavailable", "307"), mucWait)
}

// TestMUCOccupantIQ: IQs between occupants through the room in a
// semi-anonymous room (XEP-0045 business rules, IQ, rule 3): a ping to room/Bob
// is answered by Bob's client, a vCard request by the server for Bob's
// account (XEP-0054 vCards live at the bare JID), and the requester gets
// each answer from room/Bob without learning Bob's real JID (slixmpp
// accepts an answer only from the JID it asked). Bob sees the request
// from room/Alice, not from Alice's real JID.
func TestMUCOccupantIQ(t *testing.T) {
	cs := startCore(t, "")
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "e2e")
	bob.MustDo(t, map[string]any{"cmd": "vcard_set", "fields": map[string]any{"FN": "Bob Brenner", "NICKNAME": "bobby"}})

	mucJoin(t, alice, "Alice", nil)
	configure(t, alice, nil)
	mucJoin(t, bob, "Bob", nil)

	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": mucRoom + "/Bob"})
	ev := bob.Expect(t, Is("iq", "type", "get", "from", mucRoom+"/Alice"), mucWait)
	if strings.Contains(ev.Str("xml"), alice.JID) {
		t.Errorf("forwarded ping reveals alice's JID: %s", ev.Str("xml"))
	}
	// Bob asks back.
	bob.MustDo(t, map[string]any{"cmd": "ping", "jid": mucRoom + "/Alice"})
	alice.Expect(t, Is("iq", "type", "get", "from", mucRoom+"/Bob"), mucWait)

	v := alice.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": mucRoom + "/Bob"})
	if f := v.Map("fields"); f.Str("FN") != "Bob Brenner" || f.Str("NICKNAME") != "bobby" {
		t.Errorf("vCard through the room: %v", v)
	}
	if strings.Contains(v.Str("xml"), "bob@"+domain) {
		t.Errorf("vCard answer reveals bob's JID: %s", v.Str("xml"))
	}
	// An unknown nick: item-not-found from the room.
	if _, err := alice.Do(map[string]any{"cmd": "ping", "jid": mucRoom + "/Nobody"}); err == nil || !strings.Contains(err.Error(), "item-not-found") {
		t.Errorf("ping to an unknown nick: %v, want item-not-found", err)
	}
}
