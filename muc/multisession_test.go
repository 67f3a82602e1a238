package muc

import (
	"strings"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// A second resource of bob, and a third.
const (
	bob2 = "bob@example.com/b2"
	bob3 = "bob@example.com/b3"
)

// multiEnv is a room with Alice (owner), Carol, and Bob joined from two
// resources under one nick; bob2 joined last.
func multiEnv(t *testing.T, form string) *env {
	t.Helper()
	e := newEnv(t, nil, nil)
	e.createRoom(form)
	e.join(carol, "Carol")
	e.join(bob, "Bob")
	if got := e.join(bob2, "Bob"); len(got) == 0 || errCond(got[0]) != "" {
		t.Fatalf("second session join: %v", got)
	}
	e.f.reset()
	return e
}

// occupants returns the number of occupants of room1 (not sessions).
func (e *env) occupants() int {
	e.s.mu.Lock()
	r := e.s.rooms[room1]
	e.s.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.list)
}

func presFrom(els []*wire.Element, from string) []*wire.Element {
	var out []*wire.Element
	for _, el := range els {
		if el.Local == "presence" && el.Attr("from") == from {
			out = append(out, el)
		}
	}
	return out
}

func TestMultiSessionJoin(t *testing.T) {
	tests := []struct {
		name     string
		form     string
		from     string
		nick     string
		wantCond string // "" : joins as another session of Bob
	}{
		{"same user same nick", "", bob3, "Bob", ""},
		{"same user, room full", field1("maxusers", "3"), bob3, "Bob", ""},
		{"other user same nick", "", "dave@example.com/d", "Bob", "conflict"},
		{"same user, wrong password", field1("passwordprotectedroom", "1") + field1("roomsecret", "pw"), bob3, "Bob", "not-authorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			e.createRoom(tt.form)
			e.send(alice, "<message to='"+room1+"' type='groupchat'><body>before</body></message>")
			e.join(carol, "Carol", "<password>pw</password>")
			e.join(bob, "Bob", "<password>pw</password>")
			e.f.reset()
			got := e.join(tt.from, tt.nick)
			if tt.wantCond != "" {
				if len(got) != 1 || errCond(got[0]) != tt.wantCond {
					t.Fatalf("got %v, want %s", got, tt.wantCond)
				}
				if n := e.occupants(); n != 3 {
					t.Errorf("%d occupants, want 3", n)
				}
				return
			}
			// §7.2.3 for the joining session alone: the others'
			// presence, its self-presence, history, subject.
			if len(got) != 5 || len(presFrom(got, room1+"/Alice")) != 1 || len(presFrom(got, room1+"/Carol")) != 1 {
				t.Fatalf("joining session got %v", got)
			}
			if self := got[2]; self.Attr("from") != room1+"/Bob" || !hasCodes(self, "110") || hasCodes(self, "201") || item(self).Attr("jid") != tt.from {
				t.Errorf("self-presence %s", self)
			}
			if h := got[3]; h.Child(nsClient, "body").Text() != "before" || h.Child(nsDelay, "delay") == nil {
				t.Errorf("history %s", h)
			}
			if s := got[4]; s.Child(nsClient, "subject") == nil {
				t.Errorf("subject %s", s)
			}
			// The first session: its own presence again, no history, no subject.
			if b := e.f.take(bob); len(b) != 1 || b[0].Local != "presence" || !hasCodes(b[0], "110") || hasCodes(b[0], "201") {
				t.Errorf("first session got %v", b)
			}
			// Others: one presence update of Bob, not a new occupant leaving or joining.
			for _, who := range []string{alice, carol} {
				if g := e.f.take(who); len(g) != 1 || g[0].Attr("from") != room1+"/Bob" || g[0].Attr("type") != "" || hasCodes(g[0], "110") {
					t.Errorf("%s got %v", who, g)
				}
			}
			if n := e.occupants(); n != 3 {
				t.Errorf("%d occupants, want 3", n)
			}
		})
	}
}

func TestMultiSessionLeave(t *testing.T) {
	tests := []struct {
		name    string
		leave   func(e *env)
		left    string // the session that left
		stays   string // the session that stays
		primary bool   // the leaving session was the primary one
	}{
		{"older session leaves", func(e *env) { e.send(bob, "<presence to='"+room1+"/Bob' type='unavailable'/>") }, bob, bob2, false},
		{"primary session leaves", func(e *env) { e.send(bob2, "<presence to='"+room1+"/Bob' type='unavailable'/>") }, bob2, bob, true},
		{"older session ends", func(e *env) { e.s.UserGone(bob); e.s.waitGone() }, bob, bob2, false},
		{"primary session ends", func(e *env) { e.s.UserGone(bob2); e.s.waitGone() }, bob2, bob, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := multiEnv(t, field1("whois", "anyone"))
			tt.leave(e)
			if g := e.f.take(tt.left); len(g) != 1 || g[0].Attr("type") != "unavailable" || !hasCodes(g[0], "110") {
				t.Fatalf("leaving session got %v", g)
			}
			a := e.f.take(alice)
			s := e.f.take(tt.stays)
			if tt.primary {
				// The occupant stays available; its presence (and real
				// JID in a non-anonymous room) is now the other session's.
				if len(a) != 1 || a[0].Attr("type") != "" || item(a[0]).Attr("jid") != tt.stays {
					t.Errorf("alice got %v", a)
				}
				if len(s) != 1 || s[0].Attr("type") != "" || !hasCodes(s[0], "110") {
					t.Errorf("remaining session got %v", s)
				}
			} else if len(a) != 0 || len(s) != 0 {
				t.Errorf("alice got %v, remaining session got %v; want nothing", a, s)
			}
			// Messages now reach only the remaining session.
			e.send(alice, "<message to='"+room1+"' type='groupchat'><body>x</body></message>")
			if g := e.f.take(tt.left); len(g) != 0 {
				t.Errorf("left session still gets %v", g)
			}
			if g := e.f.take(tt.stays); len(g) != 1 {
				t.Errorf("remaining session got %v", g)
			}
			e.f.take(alice)
			// The last session leaving is the occupant leaving.
			e.send(tt.stays, "<presence to='"+room1+"/Bob' type='unavailable'/>")
			if a := e.f.take(alice); len(a) != 1 || a[0].Attr("type") != "unavailable" || a[0].Attr("from") != room1+"/Bob" {
				t.Errorf("alice after the last session left: %v", a)
			}
			if n := e.occupants(); n != 2 {
				t.Errorf("%d occupants, want 2", n)
			}
		})
	}
}

func TestMultiSessionMessages(t *testing.T) {
	e := multiEnv(t, "")
	e.send(bob, "<message to='"+room1+"' type='groupchat' id='g1'><body>from b</body></message>")
	for _, who := range []string{alice, carol, bob, bob2} {
		if g := e.f.take(who); len(g) != 1 || g[0].Attr("from") != room1+"/Bob" || g[0].Attr("id") != "g1" {
			t.Errorf("%s got %v", who, g)
		}
	}
	e.send(alice, "<message to='"+room1+"/Bob' type='chat' id='p1'><body>psst</body></message>")
	for _, who := range []string{bob, bob2} {
		g := e.f.take(who)
		if len(g) != 1 || g[0].Attr("from") != room1+"/Alice" || g[0].Attr("to") != who || g[0].Child(nsClient, "body").Text() != "psst" {
			t.Errorf("PM at %s: %v", who, g)
		}
	}
	// Either session may send a private message as Bob.
	e.send(bob2, "<message to='"+room1+"/Carol' type='chat'><body>hi</body></message>")
	if g := e.f.take(carol); len(g) != 1 || g[0].Attr("from") != room1+"/Bob" {
		t.Errorf("carol got %v", g)
	}
}

func TestMultiSessionPresenceFollowsLatest(t *testing.T) {
	e := multiEnv(t, field1("whois", "anyone"))
	show := func(el *wire.Element) string {
		if s := el.Child(nsClient, "show"); s != nil {
			return s.Text()
		}
		return ""
	}
	for _, step := range []struct{ from, show string }{{bob, "away"}, {bob2, "dnd"}, {bob, "xa"}} {
		e.send(step.from, "<presence to='"+room1+"/Bob'><show>"+step.show+"</show></presence>")
		a := e.f.take(alice)
		if len(a) != 1 || show(a[0]) != step.show || item(a[0]).Attr("jid") != step.from {
			t.Fatalf("after %s's %s alice saw %v", step.from, step.show, a)
		}
		// Each session sees the occupant's presence with its own JID.
		for _, who := range []string{bob, bob2} {
			g := e.f.take(who)
			if len(g) != 1 || show(g[0]) != step.show || !hasCodes(g[0], "110") || item(g[0]).Attr("jid") != who {
				t.Errorf("%s saw %v", who, g)
			}
		}
	}
	// A joiner sees one Bob, the most recently active session's.
	got := e.join("dave@example.com/d", "Dave")
	b := presFrom(got, room1+"/Bob")
	if len(b) != 1 || show(b[0]) != "xa" || item(b[0]).Attr("jid") != bob {
		t.Errorf("joiner saw Bob as %v", b)
	}
	// The moderator's role list names the primary session's full JID.
	list := e.iq(alice, room1, "get", "<query xmlns='"+nsAdmin+"'><item role='participant'/></query>", "result")
	if !strings.Contains(list.String(), "jid='"+bob+"'") {
		t.Errorf("role list %s", list)
	}
}

func TestMultiSessionModeration(t *testing.T) {
	tests := []struct {
		name     string
		item     string
		wantType string
		wantCode string
		wantRole string
	}{
		{"kick", "<item nick='Bob' role='none'/>", "unavailable", "307", "none"},
		{"ban", "<item jid='bob@example.com' affiliation='outcast'/>", "unavailable", "301", "none"},
		{"voice off", "<item nick='Bob' role='visitor'/>", "", "", "visitor"},
		{"moderator", "<item nick='Bob' role='moderator'/>", "", "", "moderator"},
		{"admin", "<item jid='bob@example.com' affiliation='admin'/>", "", "", "moderator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := multiEnv(t, "")
			e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'>"+tt.item+"</query>", "result")
			for _, who := range []string{bob, bob2} {
				g := e.f.take(who)
				if len(g) != 1 || g[0].Attr("type") != tt.wantType || !hasCodes(g[0], "110") || item(g[0]).Attr("role") != tt.wantRole ||
					tt.wantCode != "" && !hasCodes(g[0], tt.wantCode) {
					t.Errorf("%s got %v", who, g)
				}
			}
			if c := e.f.take(carol); len(c) != 1 || c[0].Attr("type") != tt.wantType || item(c[0]).Attr("role") != tt.wantRole {
				t.Errorf("carol got %v", c)
			}
			wantOcc := 3
			if tt.wantType == "unavailable" {
				wantOcc = 2
			}
			if n := e.occupants(); n != wantOcc {
				t.Errorf("%d occupants, want %d", n, wantOcc)
			}
		})
	}
}

func TestMultiSessionNickChange(t *testing.T) {
	e := multiEnv(t, "")
	e.send(bob, "<presence to='"+room1+"/Robert'/>")
	a := e.f.take(alice)
	if len(a) != 2 || !hasCodes(a[0], "303") || item(a[0]).Attr("nick") != "Robert" || a[1].Attr("from") != room1+"/Robert" {
		t.Fatalf("alice saw %v", a)
	}
	for _, who := range []string{bob, bob2} {
		g := e.f.take(who)
		if len(g) != 2 || !hasCodes(g[0], "303", "110") || g[1].Attr("from") != room1+"/Robert" || !hasCodes(g[1], "110") {
			t.Errorf("%s saw %v", who, g)
		}
	}
	e.send(carol, "<message to='"+room1+"/Robert' type='chat'><body>x</body></message>")
	if len(e.f.take(bob)) != 1 || len(e.f.take(bob2)) != 1 {
		t.Error("a PM to the new nick did not reach both sessions")
	}
	// Bob is free now; another occupant of the same user keeps its nick.
	if got := e.join(bob3, "Bob"); errCond(got[0]) != "" {
		t.Fatalf("bob3 as Bob: %v", got)
	}
	e.send(bob3, "<presence to='"+room1+"/Robert'/>")
	if g := e.f.take(bob3); len(g) != 1 || errCond(g[0]) != "conflict" {
		t.Errorf("nick change onto another occupant of the same user: %v", g)
	}
}

func TestMultiSessionIQGoesToPrimary(t *testing.T) {
	e := multiEnv(t, "")
	ping := func(wantAt, notAt string) {
		t.Helper()
		e.send(alice, "<iq to='"+room1+"/Bob' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
		if g := e.f.take(notAt); len(g) != 0 {
			t.Fatalf("IQ also at %s: %v", notAt, g)
		}
		g := e.f.take(wantAt)
		if len(g) != 1 || g[0].Local != "iq" {
			t.Fatalf("IQ at %s: %v", wantAt, g)
		}
		// Only the session asked may answer.
		e.send(notAt, "<iq to='"+room1+"/Alice' type='result' id='"+g[0].Attr("id")+"'/>")
		if a := e.f.take(alice); len(a) != 0 {
			t.Fatalf("answer from the other session reached alice: %v", a)
		}
		e.send(wantAt, "<iq to='"+room1+"/Alice' type='result' id='"+g[0].Attr("id")+"'/>")
		if a := e.f.take(alice); len(a) != 1 || a[0].Attr("id") != "p1" || a[0].Attr("from") != room1+"/Bob" {
			t.Fatalf("answer: %v", a)
		}
	}
	ping(bob2, bob) // joined last
	e.send(bob, "<presence to='"+room1+"/Bob'><show>away</show></presence>")
	e.f.reset()
	ping(bob, bob2) // spoke last
	// Self-ping from either session: the room answers.
	e.iq(bob2, room1+"/Bob", "get", "<ping xmlns='urn:xmpp:ping'/>", "result")
}

func TestOccupantVCardFromService(t *testing.T) {
	vcards := map[string]string{"bob@example.com": "<vCard xmlns='vcard-temp'><FN>Bob B.</FN></vCard>"}
	e := newEnv(t, nil, func(c *Config) {
		c.VCard = func(bare string) (*wire.Element, error) {
			if v, ok := vcards[bare]; ok {
				return parse(t, []byte(v)), nil
			}
			return nil, nil
		}
	})
	e.createRoom("")
	e.join(bob, "Bob")
	e.join(carol, "Carol")
	e.f.reset()
	tests := []struct{ nick, wantType, wantFN string }{
		{"Bob", "result", "Bob B."},
		{"Carol", "error", ""}, // no vCard: service-unavailable, as the server answers
	}
	for _, tt := range tests {
		r := e.iq(alice, room1+"/"+tt.nick, "get", "<vCard xmlns='vcard-temp'/>", tt.wantType)
		if r.Attr("from") != room1+"/"+tt.nick || strings.Contains(r.String(), "bob@") || strings.Contains(r.String(), "carol@") {
			t.Errorf("%s: answer %s", tt.nick, r)
		}
		if tt.wantFN != "" {
			if v := r.Child(nsVCard, "vCard"); v == nil || v.Child(nsVCard, "FN").Text() != tt.wantFN {
				t.Errorf("%s: vCard %s", tt.nick, r)
			}
		} else if errCond(r) != "service-unavailable" {
			t.Errorf("%s: %s", tt.nick, r)
		}
	}
	// Nobody's client was asked.
	if g := e.f.take(bob); len(g) != 0 {
		t.Errorf("bob got %v", g)
	}
}
