package muc

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// fakeDir is a directory of groups, written by hand (the e2e tests use the
// real ones).
type fakeDir struct {
	mu     sync.Mutex
	groups map[string][]string // group -> bare JIDs
	nicks  map[string]string
}

func (d *fakeDir) GroupMembers(g string) ([]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ms, ok := d.groups[g]
	return slices.Clone(ms), ok
}

func (d *fakeDir) Groups() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for g := range d.groups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (d *fakeDir) Nick(bare string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nicks[bare]
}

func (d *fakeDir) set(g string, ms ...string) {
	d.mu.Lock()
	d.groups[g] = ms
	d.mu.Unlock()
}

const legal = "legal@" + svcJID

func newBoundEnv(t *testing.T, st *store.Store, d *fakeDir) *env {
	return newEnv(t, st, func(c *Config) { c.Directory = d })
}

// bookmarks returns the room JIDs in user's XEP-0048 bookmarks.
func bookmarks(t *testing.T, st *store.Store, user string) []string {
	t.Helper()
	doc, err := st.Private(user, bookmarkKey)
	if err != nil {
		t.Fatal(err)
	}
	if doc == nil {
		return nil
	}
	el, err := parseStored(doc)
	if err != nil {
		t.Fatalf("stored bookmarks %q: %v", doc, err)
	}
	var out []string
	for _, n := range el.Nodes {
		if n.El != nil && n.El.Local == "conference" {
			out = append(out, n.El.Attr("jid")+"/"+n.El.Attr("autojoin"))
		}
	}
	return out
}

func TestBoundRoomFollowsGroups(t *testing.T) {
	st := openStore(t)
	d := &fakeDir{groups: map[string][]string{"Legal": {"alice@example.com", "bob@example.com"}, "Sales": {"carol@example.com"}}}
	e := newBoundEnv(t, st, d)
	// Bob keeps another bookmark of his own: it must survive.
	other := []byte("<storage xmlns='storage:bookmarks'><conference jid='mine@conference.example.com' autojoin='false'/></storage>")
	if err := st.SetPrivate("bob", bookmarkKey, other); err != nil {
		t.Fatal(err)
	}
	err := e.s.EnsureRooms([]RoomTemplate{{Name: "Legal", Title: "Legal team", Groups: []string{"Legal"},
		Persistent: true, MembersOnly: true, Owners: []string{"boss@example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.s.WaitBookmarks()
	if got := bookmarks(t, st, "alice"); !slices.Equal(got, []string{legal + "/true"}) {
		t.Errorf("alice's bookmarks %v", got)
	}
	if got := bookmarks(t, st, "bob"); !slices.Equal(got, []string{"mine@conference.example.com/false", legal + "/true"}) {
		t.Errorf("bob's bookmarks %v", got)
	}
	// Bob is in; carol (not a member) may not enter the members-only room.
	e.send(bob, "<presence to='"+legal+"/Bob'><x xmlns='"+nsMUC+"'/></presence>")
	if got := e.f.take(bob); len(got) < 1 || item(got[0]) == nil || item(got[0]).Attr("affiliation") != "member" {
		t.Fatalf("bob's join: %v", got)
	}
	e.send(carol, "<presence to='"+legal+"/Carol'><x xmlns='"+nsMUC+"'/></presence>")
	if got := e.f.take(carol); len(got) != 1 || errCond(got[0]) != "registration-required" {
		t.Fatalf("carol's join before the sync: %v", got)
	}

	// The directory moves bob out and carol in.
	d.set("Legal", "alice@example.com", "carol@example.com")
	if err := e.s.SyncBoundRooms(); err != nil {
		t.Fatal(err)
	}
	e.s.WaitBookmarks()
	got := e.f.take(bob)
	if len(got) != 1 || got[0].Attr("type") != "unavailable" || !hasCodes(got[0], "321", "110") {
		t.Fatalf("bob after leaving the group: %v", got)
	}
	if got := bookmarks(t, st, "bob"); !slices.Equal(got, []string{"mine@conference.example.com/false"}) {
		t.Errorf("bob's bookmarks after leaving: %v", got)
	}
	if got := bookmarks(t, st, "carol"); !slices.Equal(got, []string{legal + "/true"}) {
		t.Errorf("carol's bookmarks after joining: %v", got)
	}
	e.send(carol, "<presence to='"+legal+"/Carol'><x xmlns='"+nsMUC+"'/></presence>")
	if got := e.f.take(carol); len(got) < 1 || errCond(got[0]) != "" {
		t.Fatalf("carol's join after the sync: %v", got)
	}
	// The owner from the template is owner; the list has alice and carol.
	e.send("boss@example.com/x", "<iq to='"+legal+"' type='get' id='l'><query xmlns='"+nsAdmin+"'><item affiliation='member'/></query></iq>")
	list := e.f.take("boss@example.com/x")
	if len(list) != 1 || list[0].Attr("type") != "result" {
		t.Fatalf("member list: %v", list)
	}
	var members []string
	for _, n := range list[0].FirstChild().Nodes {
		members = append(members, n.El.Attr("jid"))
	}
	if !slices.Equal(members, []string{"alice@example.com", "carol@example.com"}) {
		t.Errorf("members %v", members)
	}

	// After a restart the binding is still known: a sync finds the room
	// through the index without loading any other room.
	e2 := newBoundEnv(t, st, d)
	d.set("Legal", "alice@example.com")
	if err := e2.s.SyncBoundRooms(); err != nil {
		t.Fatal(err)
	}
	e2.s.WaitBookmarks()
	if got := bookmarks(t, st, "carol"); len(got) != 0 {
		t.Errorf("carol's bookmarks after the restart and leaving: %v", got)
	}
	e2.s.mu.Lock()
	loaded := len(e2.s.rooms)
	e2.s.mu.Unlock()
	if loaded != 0 {
		t.Errorf("%d rooms stay loaded after a sync", loaded)
	}
}

func TestBindFromConfigForm(t *testing.T) {
	st := openStore(t)
	d := &fakeDir{groups: map[string][]string{"Legal": {"bob@example.com"}}}
	e := newBoundEnv(t, st, d)
	e.createRoom(field1("persistentroom", "1") + field1("membersonly", "1"))
	form := e.iq(alice, room1, "get", "<query xmlns='"+nsOwner+"'/>", "result")
	var f *wire.Element
	for _, n := range form.FirstChild().FirstChild().Nodes {
		if n.El != nil && n.El.Attr("var") == fieldGroups {
			f = n.El
		}
	}
	if f == nil || f.Attr("type") != "list-multi" || f.Child(nsData, "option") == nil {
		t.Fatalf("no groups field with options in %s", form)
	}
	groups := func(gs ...string) string {
		s := "<field var='" + fieldGroups + "'>"
		for _, g := range gs {
			s += "<value>" + g + "</value>"
		}
		return s + "</field>"
	}
	submit := func(fields string) string {
		return "<query xmlns='" + nsOwner + "'><x xmlns='jabber:x:data' type='submit'>" + fields + "</x></query>"
	}
	r := e.iq(alice, room1, "set", submit(groups("Nope")), "error")
	if !strings.Contains(r.String(), "no directory group Nope") {
		t.Errorf("unknown group: %s", r)
	}
	e.iq(alice, room1, "set", submit(groups("Legal")+field1("persistentroom", "0")), "error")
	e.iq(alice, room1, "set", submit(groups("Legal")), "result")
	e.s.WaitBookmarks()
	if got := bookmarks(t, st, "bob"); !slices.Equal(got, []string{room1 + "/true"}) {
		t.Errorf("bob's bookmarks %v", got)
	}
	if v, _ := st.Get(boundBucket, room1); string(v) != "Legal" {
		t.Errorf("index %q", v)
	}
	// Unbinding forgets the index entry; members stay as they are.
	e.iq(alice, room1, "set", submit(groups()), "result")
	if v, _ := st.Get(boundBucket, room1); v != nil {
		t.Errorf("index after unbinding %q", v)
	}

	// Binding an open room makes it members-only, unless the same form
	// says otherwise: leaving the group then means leaving the room.
	e.iq(alice, room1, "set", submit(field1("membersonly", "0")), "result")
	e.iq(alice, room1, "set", submit(groups("Legal")), "result")
	if !e.s.rooms[room1].cfg.MembersOnly {
		t.Error("an open room bound to a group stayed open")
	}
	e.iq(alice, room1, "set", submit(groups()), "result")
	e.iq(alice, room1, "set", submit(field1("membersonly", "0")), "result")
	e.iq(alice, room1, "set", submit(groups("Legal")+field1("membersonly", "0")), "result")
	if e.s.rooms[room1].cfg.MembersOnly {
		t.Error("membersonly = 0 in the binding form was overridden")
	}
}

func TestCreatePolicyText(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.MayCreate = func(string) bool { return false } })
	got := e.join(bob, "Bob")
	if len(got) != 1 || errCond(got[0]) != "not-allowed" || !strings.Contains(got[0].String(), "You may not create rooms") {
		t.Fatalf("refused creation: %v", got)
	}
}

func TestReservedNicks(t *testing.T) {
	d := &fakeDir{groups: map[string][]string{}, nicks: map[string]string{"bob@example.com": "Bob Builder", "carol@example.com": "carol"}}
	e := newEnv(t, nil, func(c *Config) { c.Directory = d })
	e.createRoom("")
	e.iq(alice, room1, "set", "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='bob@example.com'/></query>", "result")
	// §7.12: bob asks for his reserved nick.
	r := e.iq(bob, room1, "get", "<query xmlns='"+nsDiscoInfo+"' node='x-roomuser-item'/>", "result")
	if id := r.FirstChild().Child(nsDiscoInfo, "identity"); id == nil || id.Attr("name") != "Bob Builder" {
		t.Errorf("reserved nick: %s", r)
	}
	r = e.iq(carol, room1, "get", "<query xmlns='"+nsDiscoInfo+"' node='x-roomuser-item'/>", "result")
	if r.FirstChild().Child(nsDiscoInfo, "identity") != nil {
		t.Errorf("a non-member has a reserved nick: %s", r)
	}
	// Carol may not take bob's nick; bob may.
	if got := e.join(carol, "Bob Builder"); len(got) != 1 || errCond(got[0]) != "conflict" {
		t.Fatalf("carol as Bob Builder: %v", got)
	}
	if got := e.join(bob, "Bob Builder"); len(got) < 1 || errCond(got[0]) != "" {
		t.Fatalf("bob as Bob Builder: %v", got)
	}
}

func TestOccupantIQForwarding(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.createRoom("")
	e.join(alice, "Alice")
	e.join(bob, "Bob")
	e.f.reset()
	e.send(alice, "<iq to='"+room1+"/Bob' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	got := e.f.take(bob)
	if len(got) != 1 || got[0].Attr("from") != room1+"/Alice" || got[0].Attr("id") == "p1" || got[0].Child(nsPing, "ping") == nil {
		t.Fatalf("forwarded ping: %v", got)
	}
	// A stranger cannot answer in bob's place.
	e.send(carol, "<iq to='"+room1+"/Alice' type='result' id='"+got[0].Attr("id")+"'/>")
	if a := e.f.take(alice); len(a) != 0 {
		t.Fatalf("answer from a stranger reached alice: %v", a)
	}
	e.send(bob, "<iq to='"+room1+"/Alice' type='result' id='"+got[0].Attr("id")+"'/>")
	a := e.f.take(alice)
	if len(a) != 1 || a[0].Attr("id") != "p1" || a[0].Attr("from") != room1+"/Bob" || a[0].Attr("type") != "result" {
		t.Fatalf("answer: %v", a)
	}
	// A vCard request goes to the occupant's bare JID (the server answers).
	e.send(alice, "<iq to='"+room1+"/Bob' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>")
	v := e.f.take("bob@example.com")
	if len(v) != 1 || v[0].Child(nsVCard, "vCard") == nil {
		t.Fatalf("vCard request: %v", v)
	}
	e.send("bob@example.com", "<iq to='"+room1+"/Alice' type='result' id='"+v[0].Attr("id")+"'><vCard xmlns='vcard-temp'><FN>Bob</FN></vCard></iq>")
	if a := e.f.take(alice); len(a) != 1 || a[0].Attr("id") != "v1" || a[0].Child(nsVCard, "vCard") == nil {
		t.Fatalf("vCard answer: %v", a)
	}
	// Self-ping is answered by the room (XEP-0410); a non-occupant gets
	// not-acceptable; an unknown nick item-not-found.
	e.iq(alice, room1+"/Alice", "get", "<ping xmlns='urn:xmpp:ping'/>", "result")
	e.iq(carol, room1+"/Bob", "get", "<ping xmlns='urn:xmpp:ping'/>", "error")
	if r := e.iq(alice, room1+"/Nobody", "get", "<ping xmlns='urn:xmpp:ping'/>", "error"); errCond(r) != "item-not-found" {
		t.Errorf("unknown nick: %s", r)
	}
}
