package muc

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

const (
	svcJID = "conference.example.com"
	room1  = "team@" + svcJID
	alice  = "alice@example.com/a"
	bob    = "bob@example.com/b"
	carol  = "carol@example.com/c"
)

const streamHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

func parse(t testing.TB, b []byte) *wire.Element {
	t.Helper()
	p := wire.NewParser(io.MultiReader(strings.NewReader(streamHeader), bytes.NewReader(b)), wire.Limits{})
	if k, _, err := p.Next(); err != nil || k != wire.StreamStart {
		t.Fatalf("header: %v %v", k, err)
	}
	k, el, err := p.Next()
	if err != nil || k != wire.Stanza {
		t.Fatalf("parse %q: %v %v", b, k, err)
	}
	return el
}

// fakeRouter records what the service sends, parsed back into elements so
// that the tests also prove the bytes are well-formed XML.
type fakeRouter struct {
	t      testing.TB
	mu     sync.Mutex
	online map[string]bool // nil: every full JID is online
	got    map[string][]*wire.Element
}

func newFake(t testing.TB) *fakeRouter {
	return &fakeRouter{t: t, got: make(map[string][]*wire.Element)}
}

func (f *fakeRouter) DeliverFull(full string, parts ...[]byte) bool {
	if f.online != nil && !f.online[full] {
		return false
	}
	el := parse(f.t, bytes.Join(parts, nil))
	if el.Attr("to") != full {
		f.t.Errorf("delivered to %s with to=%q", full, el.Attr("to"))
	}
	f.mu.Lock()
	f.got[full] = append(f.got[full], el)
	f.mu.Unlock()
	return true
}

func (f *fakeRouter) RouteElement(el *wire.Element) {
	c := parse(f.t, el.AppendXML(nil, nsClient))
	f.mu.Lock()
	f.got[el.Attr("to")] = append(f.got[el.Attr("to")], c)
	f.mu.Unlock()
}

// take returns and forgets what full received.
func (f *fakeRouter) take(full string) []*wire.Element {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.got[full]
	delete(f.got, full)
	return g
}

func (f *fakeRouter) reset() {
	f.mu.Lock()
	f.got = make(map[string][]*wire.Element)
	f.mu.Unlock()
}

type env struct {
	t   *testing.T
	s   *Service
	f   *fakeRouter
	st  *store.Store
	now time.Time
}

func newEnv(t *testing.T, st *store.Store, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, f: newFake(t), st: st, now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := Config{Domain: svcJID, Now: func() time.Time { return e.now }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, st, e.f, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e
}

func openStore(t *testing.T) *store.Store {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// send routes a stanza written as XML with from stamped.
func (e *env) send(from, xml string) {
	e.t.Helper()
	el := parse(e.t, []byte(xml))
	el.SetAttr("from", from)
	e.s.RouteStanza(el)
}

func (e *env) join(from, nick string, extra ...string) []*wire.Element {
	e.t.Helper()
	e.send(from, fmt.Sprintf("<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>", room1, nick, nsMUC, strings.Join(extra, "")))
	return e.f.take(from)
}

// createRoom makes alice the owner of an unlocked instant room.
func (e *env) createRoom(form string) {
	e.t.Helper()
	e.join(alice, "Alice")
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+form+"</x></query>", "result")
	e.f.reset()
}

// iq sends an IQ and checks the reply type; it returns the reply.
func (e *env) iq(from, to, typ, payload, want string) *wire.Element {
	e.t.Helper()
	e.send(from, fmt.Sprintf("<iq to='%s' type='%s' id='q1'>%s</iq>", to, typ, payload))
	var reply *wire.Element
	for _, el := range e.f.take(from) {
		if el.Local == "iq" {
			reply = el
		}
	}
	if reply == nil {
		e.t.Fatalf("no IQ reply to %s", payload)
	}
	if reply.Attr("type") != want {
		e.t.Fatalf("IQ %s: got %s, want %s", payload, reply, want)
	}
	return reply
}

func codes(el *wire.Element) []string {
	var out []string
	if x := el.Child(nsUser, "x"); x != nil {
		for _, n := range x.Nodes {
			if n.El != nil && n.El.Local == "status" {
				out = append(out, n.El.Attr("code"))
			}
		}
	}
	return out
}

func item(el *wire.Element) *wire.Element {
	if x := el.Child(nsUser, "x"); x != nil {
		return x.Child(nsUser, "item")
	}
	return nil
}

func errCond(el *wire.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	if e := el.Child(nsClient, "error"); e != nil {
		if c := e.FirstChild(); c != nil {
			return c.Local
		}
	}
	return "?"
}

func hasCodes(el *wire.Element, want ...string) bool {
	got := codes(el)
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestCreateInstantRoom(t *testing.T) {
	e := newEnv(t, openStore(t), nil)
	got := e.join(alice, "Alice")
	if len(got) != 2 {
		t.Fatalf("creator got %d stanzas, want self-presence and subject: %v", len(got), got)
	}
	self := got[0]
	if self.Attr("from") != room1+"/Alice" || !hasCodes(self, "110", "201") {
		t.Errorf("self-presence %s, want 110 and 201", self)
	}
	if it := item(self); it.Attr("affiliation") != "owner" || it.Attr("role") != "moderator" || it.Attr("jid") != alice {
		t.Errorf("creator item %s", it)
	}
	if got[1].Local != "message" || got[1].Child(nsClient, "subject") == nil {
		t.Errorf("want an empty subject last (§7.2.15), got %s", got[1])
	}
	// §10.1.1: locked until configured.
	if got := e.join(bob, "Bob"); len(got) != 1 || errCond(got[0]) != "item-not-found" {
		t.Fatalf("join of a locked room: %v", got)
	}
	e.iq(bob, room1, "get", "<query xmlns='"+nsDiscoInfo+"'/>", "error")
	// Instant room: an empty submit accepts the defaults.
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'/></query>", "result")
	got = e.join(bob, "Bob")
	if len(got) != 3 {
		t.Fatalf("bob got %v, want alice's presence, self, subject", got)
	}
	if got[0].Attr("from") != room1+"/Alice" || item(got[0]).Attr("jid") != "" {
		t.Errorf("semi-anonymous room showed alice's JID to a participant: %s", got[0])
	}
	if c := codes(got[1]); len(c) != 1 || c[0] != "110" {
		t.Errorf("bob's self-presence codes %v, want [110]", c)
	}
	if it := item(got[1]); it.Attr("role") != "participant" || it.Attr("affiliation") != "none" {
		t.Errorf("bob's item %s", it)
	}
	a := e.f.take(alice)
	if len(a) != 1 || item(a[0]).Attr("jid") != bob || len(codes(a[0])) != 0 {
		t.Errorf("alice (moderator) got %v, want bob's presence with his JID", a)
	}
}

func TestCreationPolicy(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.MayCreate = func(b string) bool { return b == "alice@example.com" } })
	if got := e.join(bob, "Bob"); len(got) != 1 || errCond(got[0]) != "not-allowed" {
		t.Fatalf("bob creating: %v", got)
	}
	if got := e.join(alice, "Alice"); !hasCodes(got[0], "201") {
		t.Fatalf("alice creating: %v", got)
	}
}

func TestJoinErrors(t *testing.T) {
	tests := []struct {
		name, form string
		prep       func(e *env)
		extra      string
		want       string
	}{
		{name: "conflict", want: "conflict", prep: func(e *env) { e.join(carol, "Bob") }},
		{name: "members-only", form: field1("membersonly", "1"), want: "registration-required"},
		{name: "password missing", form: field1("passwordprotectedroom", "1") + field1("roomsecret", "s3"), want: "not-authorized"},
		{name: "password wrong", form: field1("passwordprotectedroom", "1") + field1("roomsecret", "s3"), extra: "<password>x</password>", want: "not-authorized"},
		{name: "password right", form: field1("passwordprotectedroom", "1") + field1("roomsecret", "s3"), extra: "<password>s3</password>"},
		{name: "banned", want: "forbidden", prep: func(e *env) {
			e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='outcast' jid='bob@example.com'/></query>", "result")
		}},
		{name: "full", form: field1("maxusers", "1"), want: "service-unavailable"},
		{name: "member of members-only", form: field1("membersonly", "1"), prep: func(e *env) {
			e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='bob@example.com'/></query>", "result")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			e.createRoom(tt.form)
			if tt.prep != nil {
				tt.prep(e)
				e.f.reset()
			}
			got := e.join(bob, "Bob", tt.extra)
			if tt.want == "" {
				if len(got) == 0 || errCond(got[0]) != "" {
					t.Fatalf("join failed: %v", got)
				}
				return
			}
			if len(got) != 1 || errCond(got[0]) != tt.want || got[0].Child(nsMUC, "x") == nil {
				t.Fatalf("got %v, want one %s error presence with the muc x", got, tt.want)
			}
			if e.f.take(alice) != nil {
				t.Error("a refused join was broadcast")
			}
		})
	}
}

func field1(name, v string) string {
	return fmt.Sprintf("<field var='muc#roomconfig_%s'><value>%s</value></field>", name, v)
}

func TestGroupchatFanout(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(bob, "Bob")
	e.join(carol, "Carol")
	e.f.reset()
	e.send(bob, "<message to='"+room1+"' type='groupchat' id='m1'><body>hi &amp; bye</body><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='"+room1+"'/></message>")
	var ids []string
	for _, who := range []string{alice, bob, carol} {
		got := e.f.take(who)
		if len(got) != 1 {
			t.Fatalf("%s got %v", who, got)
		}
		m := got[0]
		if m.Attr("from") != room1+"/Bob" || m.Attr("id") != "m1" || m.Attr("type") != "groupchat" || m.Child(nsClient, "body").Text() != "hi & bye" {
			t.Errorf("%s got %s", who, m)
		}
		n := 0
		for _, c := range m.Nodes {
			if c.El != nil && c.El.Local == "stanza-id" {
				n++
				if c.El.Attr("id") == "forged" || c.El.Attr("by") != room1 {
					t.Errorf("stanza-id %s", c.El)
				}
				ids = append(ids, c.El.Attr("id"))
			}
		}
		if n != 1 {
			t.Errorf("%d stanza-ids, want 1", n)
		}
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("stanza-ids differ: %v", ids)
	}
	// Not an occupant: not-acceptable.
	e.send("dave@example.com/d", "<message to='"+room1+"' type='groupchat'><body>x</body></message>")
	if got := e.f.take("dave@example.com/d"); len(got) != 1 || errCond(got[0]) != "not-acceptable" {
		t.Errorf("outsider: %v", got)
	}
}

func TestNickChangeAndLeave(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(bob, "Bob")
	e.f.reset()
	e.send(bob, "<presence to='"+room1+"/Alice'/>")
	if got := e.f.take(bob); len(got) != 1 || errCond(got[0]) != "conflict" {
		t.Fatalf("nick change to a taken nick: %v", got)
	}
	e.send(bob, "<presence to='"+room1+"/Robert'/>")
	a := e.f.take(alice)
	if len(a) != 2 || a[0].Attr("type") != "unavailable" || !hasCodes(a[0], "303") || item(a[0]).Attr("nick") != "Robert" ||
		a[1].Attr("from") != room1+"/Robert" || a[1].Attr("type") != "" {
		t.Fatalf("alice saw %v, want unavailable 303 nick=Robert then available", a)
	}
	b := e.f.take(bob)
	if len(b) != 2 || !hasCodes(b[0], "303", "110") || !hasCodes(b[1], "110") {
		t.Fatalf("bob saw %v", b)
	}
	e.send(bob, "<presence to='"+room1+"/Robert' type='unavailable'><status>bye</status></presence>")
	a = e.f.take(alice)
	if len(a) != 1 || a[0].Attr("type") != "unavailable" || a[0].Child(nsClient, "status").Text() != "bye" || item(a[0]).Attr("role") != "none" {
		t.Fatalf("leave: alice saw %v", a)
	}
	if b := e.f.take(bob); len(b) != 1 || !hasCodes(b[0], "110") {
		t.Fatalf("leave: bob saw %v", b)
	}
	// Temporary room: destroyed when the last occupant leaves.
	e.send(alice, "<presence to='"+room1+"/Alice' type='unavailable'/>")
	e.f.reset()
	if got := e.join(bob, "Bob"); !hasCodes(got[0], "201") {
		t.Fatalf("rejoin of an emptied temporary room did not create it: %v", got)
	}
}

func TestNickNormalized(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	got := e.join(bob, "Rene\u0301") // RFC 7622 §3.4: NFC makes it René
	if len(got) < 2 || got[1].Attr("from") != room1+"/Ren\u00e9" || !hasCodes(got[1], "110", "210") {
		t.Fatalf("got %v, want self-presence as Bob with 210", got)
	}
}

func TestHistory(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HistorySize = 3 })
	e.createRoom("")
	for i := 1; i <= 5; i++ {
		e.now = e.now.Add(time.Minute)
		e.send(alice, fmt.Sprintf("<message to='%s' type='groupchat'><body>m%d</body></message>", room1, i))
	}
	e.now = e.now.Add(30 * time.Second)
	e.f.reset()
	tests := []struct {
		name, hist string
		want       []string
	}{
		{"default", "", []string{"m3", "m4", "m5"}},
		{"maxstanzas", "<history maxstanzas='2'/>", []string{"m4", "m5"}},
		{"maxstanzas 0", "<history maxstanzas='0'/>", nil},
		{"maxchars 0", "<history maxchars='0'/>", nil},
		{"maxchars one", "<history maxchars='400'/>", []string{"m5"}},
		{"seconds", "<history seconds='100'/>", []string{"m4", "m5"}},
		{"since", "<history since='2025-03-01T12:04:00Z'/>", []string{"m4", "m5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.join(bob, "Bob", tt.hist)
			var bodies []string
			for _, el := range got {
				if b := el.Child(nsClient, "body"); b != nil {
					d := el.Child(nsDelay, "delay")
					if d == nil || d.Attr("from") != room1 || d.Attr("stamp") == "" {
						t.Errorf("history without delay: %s", el)
					}
					bodies = append(bodies, b.Text())
				}
			}
			if fmt.Sprint(bodies) != fmt.Sprint(tt.want) {
				t.Errorf("history %v, want %v", bodies, tt.want)
			}
			if last := got[len(got)-1]; last.Child(nsClient, "subject") == nil {
				t.Errorf("subject not last: %s", last)
			}
			e.send(bob, "<presence to='"+room1+"/Bob' type='unavailable'/>")
			e.f.reset()
		})
	}
}

func TestSubject(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(bob, "Bob")
	e.f.reset()
	e.send(bob, "<message to='"+room1+"' type='groupchat'><subject>mine</subject></message>")
	if got := e.f.take(bob); len(got) != 1 || errCond(got[0]) != "forbidden" {
		t.Fatalf("participant changed the subject: %v", got)
	}
	e.send(alice, "<message to='"+room1+"' type='groupchat'><subject>Plans</subject></message>")
	if got := e.f.take(bob); len(got) != 1 || got[0].Child(nsClient, "subject").Text() != "Plans" || got[0].Attr("from") != room1+"/Alice" {
		t.Fatalf("subject broadcast: %v", got)
	}
	got := e.join(carol, "Carol")
	last := got[len(got)-1]
	if last.Child(nsClient, "subject").Text() != "Plans" || last.Attr("from") != room1+"/Alice" {
		t.Fatalf("subject on join: %s", last)
	}
}

func TestPrivateMessages(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(bob, "Bob")
	e.f.reset()
	e.send(bob, "<message to='"+room1+"/Alice' type='chat' id='p1'><body>psst</body></message>")
	got := e.f.take(alice)
	if len(got) != 1 || got[0].Attr("from") != room1+"/Bob" || got[0].Child(nsUser, "x") == nil || got[0].Child(nsClient, "body").Text() != "psst" {
		t.Fatalf("PM: %v", got)
	}
	tests := []struct{ from, to, typ, want string }{
		{bob, room1 + "/Nobody", "chat", "item-not-found"},
		{carol, room1 + "/Alice", "chat", "not-acceptable"},
		{bob, room1 + "/Alice", "groupchat", "bad-request"},
	}
	for _, tt := range tests {
		e.send(tt.from, fmt.Sprintf("<message to='%s' type='%s'><body>x</body></message>", tt.to, tt.typ))
		if got := e.f.take(tt.from); len(got) != 1 || errCond(got[0]) != tt.want {
			t.Errorf("%s -> %s (%s): %v, want %s", tt.from, tt.to, tt.typ, got, tt.want)
		}
	}
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+field1("allowpm", "moderators")+"</x></query>", "result")
	e.f.reset()
	e.send(bob, "<message to='"+room1+"/Alice' type='chat'><body>x</body></message>")
	if got := e.f.take(bob); len(got) != 1 || errCond(got[0]) != "not-allowed" {
		t.Errorf("allowpm=moderators: %v", got)
	}
}

func TestConfigFormRoundTrip(t *testing.T) {
	st := openStore(t)
	e := newEnv(t, st, nil)
	e.join(alice, "Alice")
	reply := e.iq(alice, room1, "get", "<query xmlns='"+nsOwner+"'/>", "result")
	x := reply.Child(nsOwner, "query").Child(nsData, "x")
	vals := formValues(x)
	for _, v := range []string{"FORM_TYPE", "muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
		"muc#roomconfig_publicroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom", "muc#roomconfig_passwordprotectedroom",
		"muc#roomconfig_roomsecret", "muc#roomconfig_whois", "muc#roomconfig_maxusers", "muc#roomconfig_changesubject",
		"muc#roomconfig_allowinvites", "muc#roomconfig_allowpm", "muc#roomconfig_enablelogging",
		"muc#maxhistoryfetch", "muc#roomconfig_getmemberlist", "muc#roomconfig_lang", "muc#roomconfig_pubsub",
		"muc#roomconfig_presencebroadcast", "muc#roomconfig_roomadmins", "muc#roomconfig_roomowners"} {
		if _, ok := vals[v]; !ok {
			t.Errorf("form lacks %s", v)
		}
	}
	form := "<field var='FORM_TYPE'><value>" + formConfig + "</value></field>" +
		field1("roomname", "Team Room") + field1("roomdesc", "Our room") + field1("persistentroom", "1") +
		field1("publicroom", "0") + field1("whois", "anyone") + field1("maxusers", "50") + field1("changesubject", "true") +
		field1("enablelogging", "0")
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+form+"</x></query>", "result")
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+field1("whois", "everybody")+"</x></query>", "error")
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='bob@example.com'/></query>", "result")
	e.send(alice, "<message to='"+room1+"' type='groupchat'><subject>Kept</subject></message>")
	e.f.reset()
	e.iq(bob, room1, "get", "<query xmlns='"+nsOwner+"'/>", "error")

	// A second service on the same store: the room comes back on first use.
	e2 := newEnv(t, st, nil)
	if len(e2.s.rooms) != 0 {
		t.Fatal("rooms loaded at start")
	}
	got := e2.join(bob, "Bob")
	if len(got) != 2 || !hasCodes(got[0], "110", "100") || hasCodes(got[0], "201") || item(got[0]).Attr("affiliation") != "member" {
		t.Fatalf("rejoin after restart: %v", got)
	}
	if got[1].Child(nsClient, "subject").Text() != "Kept" {
		t.Errorf("subject lost: %s", got[1])
	}
	reply = e2.iq(alice, room1, "get", "<query xmlns='"+nsOwner+"'/>", "result")
	vals = formValues(reply.Child(nsOwner, "query").Child(nsData, "x"))
	for k, want := range map[string]string{"muc#roomconfig_roomname": "Team Room", "muc#roomconfig_persistentroom": "1",
		"muc#roomconfig_publicroom": "0", "muc#roomconfig_whois": "anyone", "muc#roomconfig_maxusers": "50",
		"muc#roomconfig_changesubject": "1", "muc#roomconfig_roomdesc": "Our room"} {
		if fmt.Sprint(vals[k]) != "["+want+"]" {
			t.Errorf("%s = %v, want %s", k, vals[k], want)
		}
	}
	// Leaving unloads it; making it temporary deletes it from the store.
	e2.send(bob, "<presence to='"+room1+"/Bob' type='unavailable'/>")
	if len(e2.s.rooms) != 0 {
		t.Error("empty persistent room stays loaded")
	}
	e2.join(alice, "Alice")
	e2.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+field1("persistentroom", "0")+"</x></query>", "result")
	if v, _ := st.Get(bucket, room1); v != nil {
		t.Error("temporary room still stored")
	}
}

func TestConfigChangeNotices(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(bob, "Bob")
	e.join(carol, "Carol")
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='bob@example.com'/></query>", "result")
	e.f.reset()
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+field1("membersonly", "1")+field1("whois", "anyone")+"</x></query>", "result")
	c := e.f.take(carol)
	if len(c) != 1 || c[0].Attr("type") != "unavailable" || !hasCodes(c[0], "322", "110") {
		t.Fatalf("carol (no member) got %v, want removal with 322", c)
	}
	b := e.f.take(bob)
	var sawLeave, saw104 bool
	for _, el := range b {
		sawLeave = sawLeave || el.Local == "presence" && hasCodes(el, "322")
		saw104 = saw104 || el.Local == "message" && hasCodes(el, "104", "172")
	}
	if !sawLeave || !saw104 {
		t.Fatalf("bob got %v, want carol's 322 and a 104+172 notice", b)
	}
}

func TestModeration(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom(field1("moderatedroom", "1"))
	got := e.join(bob, "Bob")
	if item(got[0]).Attr("role") != "participant" && item(got[1]).Attr("role") != "visitor" {
		t.Fatalf("bob's role in a moderated room: %v", got)
	}
	e.f.reset()
	e.send(bob, "<message to='"+room1+"' type='groupchat'><body>x</body></message>")
	if got := e.f.take(bob); len(got) != 1 || errCond(got[0]) != "forbidden" {
		t.Fatalf("visitor spoke: %v", got)
	}
	e.iq(bob, room1, "set", "<query xmlns='"+nsAdmin+"'><item nick='Alice' role='none'/></query>", "error")
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item nick='Bob' role='participant'/></query>", "result")
	if got := e.f.take(bob); len(got) != 1 || item(got[0]).Attr("role") != "participant" {
		t.Fatalf("voice: %v", got)
	}
	e.send(bob, "<message to='"+room1+"' type='groupchat'><body>now</body></message>")
	if got := e.f.take(alice); len(got) != 1 || got[0].Child(nsClient, "body") == nil {
		t.Fatalf("voiced participant: %v", got)
	}
	list := e.iq(alice, room1, "get", "<query xmlns='"+nsAdmin+"'><item role='participant'/></query>", "result")
	if it := list.Child(nsAdmin, "query").Child(nsAdmin, "item"); it == nil || it.Attr("nick") != "Bob" {
		t.Errorf("participant list %s", list)
	}
}

func TestKickBan(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(bob, "Bob")
	e.join(carol, "Carol")
	e.f.reset()
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item nick='Bob' role='none'><reason>noise</reason></item></query>", "result")
	b := e.f.take(bob)
	if len(b) != 1 || b[0].Attr("type") != "unavailable" || !hasCodes(b[0], "307", "110") || item(b[0]).Child(nsUser, "reason").Text() != "noise" ||
		item(b[0]).Child(nsUser, "actor").Attr("nick") != "Alice" {
		t.Fatalf("kicked bob got %v", b)
	}
	if c := e.f.take(carol); len(c) != 1 || !hasCodes(c[0], "307") || hasCodes(c[0], "110") {
		t.Fatalf("carol saw %v", c)
	}
	e.iq(carol, room1, "set", "<query xmlns='"+nsAdmin+"'><item nick='Alice' role='none'/></query>", "error")
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='outcast' jid='carol@example.com'><reason>out</reason></item></query>", "result")
	if c := e.f.take(carol); len(c) != 1 || !hasCodes(c[0], "301", "110") {
		t.Fatalf("banned carol got %v", c)
	}
	if got := e.join(carol, "Carol"); errCond(got[0]) != "forbidden" {
		t.Fatalf("banned rejoin: %v", got)
	}
	list := e.iq(alice, room1, "get", "<query xmlns='"+nsAdmin+"'><item affiliation='outcast'/></query>", "result")
	if it := list.Child(nsAdmin, "query").Child(nsAdmin, "item"); it == nil || it.Attr("jid") != "carol@example.com" {
		t.Errorf("outcast list %s", list)
	}
	// §10.6: the last owner cannot step down.
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='alice@example.com'/></query>", "error")
	// Members-only: losing membership removes with 321.
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='bob@example.com'/></query>", "result")
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+field1("membersonly", "1")+"</x></query>", "result")
	e.join(bob, "Bob")
	e.f.reset()
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='none' jid='bob@example.com'/></query>", "result")
	if b := e.f.take(bob); len(b) != 1 || !hasCodes(b[0], "321") {
		t.Fatalf("bob after losing membership: %v", b)
	}
}

func TestDiscoAndPing(t *testing.T) {
	st := openStore(t)
	e := newEnv(t, st, nil)
	e.createRoom(field1("roomname", "Team") + field1("persistentroom", "1"))
	r := e.iq(bob, svcJID, "get", "<query xmlns='"+nsDiscoInfo+"'/>", "result").String()
	for _, want := range []string{"category='conference'", "var='" + nsMUC + "'"} {
		if !strings.Contains(r, want) {
			t.Errorf("service disco#info lacks %s: %s", want, r)
		}
	}
	r = e.iq(bob, room1, "get", "<query xmlns='"+nsDiscoInfo+"'/>", "result").String()
	for _, want := range []string{"name='Team'", "muc_persistent", "muc_public", "muc_open", "muc_unmoderated", "muc_semianonymous", "muc_unsecured", formInfo, "muc#roominfo_occupants"} {
		if !strings.Contains(r, want) {
			t.Errorf("room disco#info lacks %s: %s", want, r)
		}
	}
	// The persistent room is listed even when not loaded.
	e.send(alice, "<presence to='"+room1+"/Alice' type='unavailable'/>")
	e.f.reset()
	e.send(bob, "<presence to='hidden@"+svcJID+"/Bob'/>") // locked: not listed
	r = e.iq(carol, svcJID, "get", "<query xmlns='"+nsDiscoItems+"'/>", "result").String()
	if !strings.Contains(r, "jid='"+room1+"'") || strings.Contains(r, "hidden@") {
		t.Errorf("disco#items %s", r)
	}
	e.iq(carol, svcJID, "get", "<ping xmlns='urn:xmpp:ping'/>", "result")
	// XEP-0410 self-ping.
	e.f.reset()
	e.join(alice, "Alice")
	e.iq(alice, room1+"/Alice", "get", "<ping xmlns='urn:xmpp:ping'/>", "result")
	reply := e.iq(carol, room1+"/Alice", "get", "<ping xmlns='urn:xmpp:ping'/>", "error")
	if errCond(reply) != "not-acceptable" {
		t.Errorf("self-ping of a non-occupant: %s", reply)
	}
}

func TestUserGoneAndShutdown(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(bob, "Bob")
	e.f.reset()
	e.s.UserGone(bob)
	e.s.waitGone()
	if a := e.f.take(alice); len(a) != 1 || a[0].Attr("type") != "unavailable" || a[0].Attr("from") != room1+"/Bob" {
		t.Fatalf("alice after bob's session ended: %v", a)
	}
	e.f.take(bob)
	e.s.UserGone("nobody@example.com/x") // not in a room: nothing
	e.s.Shutdown()
	if a := e.f.take(alice); len(a) != 1 || !hasCodes(a[0], "332") {
		t.Fatalf("shutdown: %v", a)
	}
	if got := e.join(bob, "Bob"); len(got) != 1 || errCond(got[0]) != "service-unavailable" {
		t.Fatalf("join after shutdown: %v", got)
	}
}

func TestDestroy(t *testing.T) {
	st := openStore(t)
	e := newEnv(t, st, nil)
	e.createRoom(field1("persistentroom", "1"))
	e.join(bob, "Bob")
	e.f.reset()
	e.iq(bob, room1, "set", "<query xmlns='"+nsOwner+"'><destroy/></query>", "error")
	e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><destroy jid='new@"+svcJID+"'><reason>moved</reason></destroy></query>", "result")
	b := e.f.take(bob)
	if len(b) != 1 || b[0].Attr("type") != "unavailable" {
		t.Fatalf("bob got %v", b)
	}
	d := b[0].Child(nsUser, "x").Child(nsUser, "destroy")
	if d == nil || d.Attr("jid") != "new@"+svcJID || d.Child(nsUser, "reason").Text() != "moved" {
		t.Fatalf("destroy element %s", b[0])
	}
	if v, _ := st.Get(bucket, room1); v != nil {
		t.Error("destroyed room still stored")
	}
	if got := e.join(bob, "Bob"); !hasCodes(got[0], "201") {
		t.Errorf("join after destroy: %v", got)
	}
}

func TestInvites(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom(field1("membersonly", "1") + field1("passwordprotectedroom", "1") + field1("roomsecret", "pw"))
	e.send(alice, "<message to='"+room1+"' id='i1'><x xmlns='"+nsUser+"'><invite to='bob@example.com'><reason>join us</reason></invite></x></message>")
	got := e.f.take("bob@example.com")
	if len(got) != 1 {
		t.Fatalf("invite: %v", got)
	}
	inv := got[0].Child(nsUser, "x").Child(nsUser, "invite")
	if got[0].Attr("from") != room1 || inv.Attr("from") != alice || inv.Child(nsUser, "reason").Text() != "join us" ||
		got[0].Child(nsUser, "x").Child(nsUser, "password").Text() != "pw" {
		t.Fatalf("invite %s", got[0])
	}
	// The invitee became a member of the members-only room.
	if j := e.join(bob, "Bob", "<password>pw</password>"); errCond(j[0]) != "" {
		t.Fatalf("invited bob could not join: %v", j)
	}
	e.send(carol, "<message to='"+room1+"'><x xmlns='"+nsUser+"'><decline to='alice@example.com'><reason>busy</reason></decline></x></message>")
	if got := e.f.take("alice@example.com"); len(got) != 1 || got[0].Child(nsUser, "x").Child(nsUser, "decline").Attr("from") != "carol@example.com" {
		t.Fatalf("decline: %v", got)
	}
	// A participant of a members-only room without allowinvites may not.
	e.f.reset()
	e.send(bob, "<message to='"+room1+"'><x xmlns='"+nsUser+"'><invite to='carol@example.com'/></x></message>")
	if got := e.f.take(bob); len(got) != 1 || errCond(got[0]) != "forbidden" {
		t.Fatalf("participant invite: %v", got)
	}
}

func TestSetMembers(t *testing.T) {
	st := openStore(t)
	e := newEnv(t, st, nil)
	e.createRoom(field1("membersonly", "1") + field1("persistentroom", "1"))
	if err := e.s.SetMembers(room1, []string{"bob@example.com", "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	e.join(bob, "Bob")
	e.f.reset()
	if err := e.s.SetMembers(room1, []string{"carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	if b := e.f.take(bob); len(b) != 1 || !hasCodes(b[0], "321") {
		t.Fatalf("bob dropped from the group: %v", b)
	}
	if err := e.s.SetMembers("nothere@"+svcJID, nil); err == nil {
		t.Error("SetMembers on a missing room succeeded")
	}
}

func TestEncodeDecode(t *testing.T) {
	s, _ := New(Config{Domain: svcJID}, nil, newFake(t), nil)
	r := newRoom(s, room1)
	r.cfg = RoomConfig{Name: "N", Description: "D\nx", Persistent: true, MembersOnly: true, Moderated: true, PasswordProt: true,
		Password: "p", NonAnonymous: true, MaxUsers: 30, ChangeSubject: true, AllowInvites: true, AllowPM: "moderators", Logging: true,
		Groups: []string{"Legal", "Sales"}, Lang: "de", PubSub: "xmpp:pubsub.example.com?;node=team", MaxHistoryFetch: -1,
		MemberListRoles: 1<<Participant | 1<<Moderator, PresenceHidden: 1 << Visitor}
	r.subject, r.subjectFrom = "S", room1+"/A"
	r.affs = map[string]Affiliation{"a@x": Owner, "b@x": Admin, "c@x": Member, "d@x": Outcast}
	b := r.encode()
	r2 := newRoom(s, room1)
	if err := r2.decode(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r2.cfg, r.cfg) || r2.subject != r.subject || r2.subjectFrom != r.subjectFrom || fmt.Sprint(r2.affs) != fmt.Sprint(r.affs) {
		t.Fatalf("round trip: %+v %+v", r2.cfg, r2.affs)
	}
	for i := 0; i < len(b); i++ {
		if err := newRoom(s, room1).decode(b[:i]); err == nil {
			t.Errorf("truncated at %d decoded", i)
		}
	}
}

func FuzzDecode(f *testing.F) {
	s, _ := New(Config{Domain: svcJID}, nil, newFake(f), nil)
	r := newRoom(s, room1)
	r.affs["a@x"] = Owner
	f.Add(r.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newRoom(s, room1)
		if r.decode(b) == nil {
			if err := newRoom(s, room1).decode(r.encode()); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
		}
	})
}

// TestConfigRegistryFields: the XEP-0045 §15.5.3 fields beyond the basic
// ones do what they say: the history cap, who may read the member list,
// whose presence is broadcast, language and pubsub node in disco, and the
// owner and admin lists as full lists.
func TestConfigRegistryFields(t *testing.T) {
	submit := func(e *env, form string, want string) {
		t.Helper()
		e.iq(alice, room1, "set", "<query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+form+"</x></query>", want)
	}
	multi := func(v string, vals ...string) string {
		f := "<field var='" + v + "'>"
		for _, x := range vals {
			f += "<value>" + x + "</value>"
		}
		return f + "</field>"
	}

	t.Run("maxhistoryfetch", func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.HistorySize = 5 })
		e.createRoom("<field var='muc#maxhistoryfetch'><value>2</value></field>")
		for i := 1; i <= 4; i++ {
			e.send(alice, fmt.Sprintf("<message to='%s' type='groupchat'><body>m%d</body></message>", room1, i))
		}
		bodies := func(els []*wire.Element) (n int) {
			for _, el := range els {
				if el.Child(nsClient, "body") != nil {
					n++
				}
			}
			return n
		}
		if n := bodies(e.join(bob, "Bob", "<history maxstanzas='10'/>")); n != 2 {
			t.Errorf("history of %d messages, want the room's cap 2", n)
		}
		submit(e, "<field var='muc#maxhistoryfetch'><value>0</value></field>", "result")
		if n := bodies(e.join(carol, "Carol")); n != 0 {
			t.Errorf("history of %d messages with maxhistoryfetch 0", n)
		}
		x := e.iq(alice, room1, "get", "<query xmlns='"+nsOwner+"'/>", "result").Child(nsOwner, "query").Child(nsData, "x")
		if v := formValues(x)["muc#maxhistoryfetch"]; fmt.Sprint(v) != "[0]" {
			t.Errorf("form shows %v", v)
		}
		submit(e, "<field var='muc#maxhistoryfetch'><value>-3</value></field>", "error")
	})

	t.Run("getmemberlist", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.createRoom("")
		e.join(bob, "Bob")
		get := "<query xmlns='" + nsAdmin + "'><item affiliation='member'/></query>"
		e.iq(bob, room1, "get", get, "error")
		submit(e, multi("muc#roomconfig_getmemberlist", "moderator", "participant"), "result")
		e.iq(bob, room1, "get", get, "result")
		e.iq(bob, room1, "get", "<query xmlns='"+nsAdmin+"'><item affiliation='outcast'/></query>", "error")
		submit(e, multi("muc#roomconfig_getmemberlist", "janitor"), "error")
	})

	t.Run("presencebroadcast", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.createRoom(field1("moderatedroom", "1") + multi("muc#roomconfig_presencebroadcast", "moderator", "participant"))
		e.join(bob, "Bob") // a visitor in a moderated room
		e.join(carol, "Carol")
		e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item nick='Carol' role='participant'/></query>", "result")
		e.f.reset()
		e.send(bob, "<presence to='"+room1+"/Bob'><show>away</show></presence>")
		if got := e.f.take(carol); len(got) != 0 {
			t.Errorf("participant got a visitor's presence: %v", got)
		}
		if got := e.f.take(alice); len(got) != 1 {
			t.Errorf("moderator got %d presences of the visitor, want 1", len(got))
		}
		if got := e.f.take(bob); len(got) != 1 || !hasCodes(got[0], "110") {
			t.Errorf("visitor's self-presence: %v", got)
		}
		// A joiner that is not a moderator is not told about the visitor.
		got := e.join("dave@example.com/d", "Dave")
		for _, el := range got {
			if el.Local == "presence" && strings.HasSuffix(el.Attr("from"), "/Bob") {
				t.Errorf("joiner got the visitor's presence: %s", el)
			}
		}
	})

	t.Run("lang and pubsub", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.createRoom(field1("lang", "de") + field1("pubsub", "xmpp:pubsub.example.com?;node=team"))
		info := e.iq(bob, room1, "get", "<query xmlns='"+nsDiscoInfo+"'/>", "result")
		vals := formValues(info.Child(nsDiscoInfo, "query").Child(nsData, "x"))
		if fmt.Sprint(vals["muc#roominfo_lang"]) != "[de]" || fmt.Sprint(vals["muc#roominfo_pubsub"]) != "[xmpp:pubsub.example.com?;node=team]" {
			t.Errorf("room info %v", vals)
		}
	})

	t.Run("owner and admin lists", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.createRoom(field1("membersonly", "1"))
		e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='bob@example.com'/></query>", "result")
		e.join(bob, "Bob")
		x := e.iq(alice, room1, "get", "<query xmlns='"+nsOwner+"'/>", "result").Child(nsOwner, "query").Child(nsData, "x")
		if v := formValues(x)["muc#roomconfig_roomowners"]; fmt.Sprint(v) != "[alice@example.com]" {
			t.Fatalf("owners in the form: %v", v)
		}
		// The form sent back unchanged changes nothing.
		submit(e, multi("muc#roomconfig_roomowners", "alice@example.com")+multi("muc#roomconfig_roomadmins"), "result")
		if a := e.s.rooms[room1].affOf("bob@example.com"); a != Member {
			t.Fatalf("bob is %v after an unchanged form", a)
		}
		e.f.reset()
		submit(e, multi("muc#roomconfig_roomowners", "alice@example.com", "carol@example.com")+multi("muc#roomconfig_roomadmins", "Bob@Example.com"), "result")
		r := e.s.rooms[room1]
		if r.affOf("carol@example.com") != Owner || r.affOf("bob@example.com") != Admin {
			t.Fatalf("after the lists: carol %v, bob %v", r.affOf("carol@example.com"), r.affOf("bob@example.com"))
		}
		if got := e.f.take(bob); len(got) == 0 || item(got[len(got)-1]).Attr("affiliation") != "admin" {
			t.Errorf("bob not told of his admin affiliation: %v", got)
		}
		// Leaving bob out of the admins takes the affiliation away: in a
		// members-only room he leaves with 321.
		submit(e, multi("muc#roomconfig_roomadmins"), "result")
		if got := e.f.take(bob); len(got) == 0 || !hasCodes(got[len(got)-1], "321") {
			t.Errorf("bob removed without 321: %v", got)
		}
		submit(e, multi("muc#roomconfig_roomowners"), "error") // §10.6: never without an owner
		submit(e, multi("muc#roomconfig_roomowners", "not a jid@"), "error")
		if r.affOf("alice@example.com") != Owner {
			t.Error("alice lost ownership on a refused form")
		}
	})
}
