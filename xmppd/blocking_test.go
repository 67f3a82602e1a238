package xmppd

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// Helpers of the feature tests (blocking, private, vcard, last, caps).

func featChat(to, body string) string {
	return `<message to='` + to + `' type='chat' id='m-` + body + `'><body>` + body + `</body></message>`
}

// requireResult fails unless el is an IQ result.
func requireResult(t *testing.T, what string, el *wire.Element) *wire.Element {
	t.Helper()
	if el.Attr("type") != "result" {
		t.Fatalf("%s: got %s", what, el)
	}
	return el
}

// requireError fails unless el is an error with condition cond.
func requireError(t *testing.T, what string, el *wire.Element, cond string) {
	t.Helper()
	if el.Attr("type") != "error" || stanzaErrorCondition(el) != cond {
		t.Fatalf("%s: got %s, want error %s", what, el, cond)
	}
}

// fromUser matches any stanza from user (bare or full JID).
func fromUser(user string) pred {
	return func(el *wire.Element) bool {
		f := el.Attr("from")
		return f == user+"@"+testDomain || strings.HasPrefix(f, user+"@"+testDomain+"/")
	}
}

// blockJIDs returns the item JIDs of el's child op (blocklist, block,
// unblock), or nil when there is no such child.
func blockJIDs(el *wire.Element, op string) []string {
	q := el.Child(nsBlocking, op)
	if q == nil {
		return nil
	}
	out := []string{}
	for _, n := range q.Nodes {
		if n.El != nil && n.El.Local == "item" {
			out = append(out, n.El.Attr("jid"))
		}
	}
	return out
}

func featDump(els []*wire.Element) string {
	var b strings.Builder
	for _, el := range els {
		b.WriteString("\n\t")
		b.WriteString(el.String())
	}
	return b.String()
}

func isBlockPush(op string) pred {
	return is("iq", "type", "set").and(hasChild(nsBlocking, op))
}

func block(t *testing.T, c *client, jids ...string) {
	t.Helper()
	items := ""
	for _, j := range jids {
		items += `<item jid='` + j + `'/>`
	}
	requireResult(t, "block "+strings.Join(jids, ","), c.iq("set", "", `<block xmlns='urn:xmpp:blocking'>`+items+`</block>`))
}

func unblock(t *testing.T, c *client, jids ...string) {
	t.Helper()
	items := ""
	for _, j := range jids {
		items += `<item jid='` + j + `'/>`
	}
	requireResult(t, "unblock "+strings.Join(jids, ","), c.iq("set", "", `<unblock xmlns='urn:xmpp:blocking'>`+items+`</unblock>`))
}

const blocklistGet = `<blocklist xmlns='urn:xmpp:blocking'/>`

// TestBlockCommand covers the block list IQs and pushes (XEP-0191 §3.2-§3.5).
func TestBlockCommand(t *testing.T) {
	ts := newTestServer(t)
	a1 := ts.login(t, "alice", "a1")
	a2 := ts.login(t, "alice", "a2")
	a3 := ts.login(t, "alice", "a3") // never asks for the list: no pushes
	for _, c := range []*client{a1, a2} {
		el := requireResult(t, "blocklist", c.iq("get", "", blocklistGet))
		if got := blockJIDs(el, "blocklist"); got == nil || len(got) != 0 {
			t.Fatalf("empty block list: %s", el)
		}
	}

	// Normalized on the way in (RFC 7622): the pushes and the list carry
	// the normalized JIDs.
	block(t, a1, "Bob@Example.COM", "carol@example.com/phone")
	want := []string{"bob@example.com", "carol@example.com/phone"}
	for _, c := range []*client{a1, a2} {
		p := c.waitFor("block push", isBlockPush("block"))
		if got := blockJIDs(p, "block"); !slices.Equal(got, want) || p.Attr("to") != c.jid {
			t.Errorf("%s: push %s, want items %v to %s", c.name, p, want, c.jid)
		}
	}
	a3.quiet("block push to a session that did not request the list", hasChild(nsBlocking, "block"))
	if got := blockJIDs(a3.iq("get", "", blocklistGet), "blocklist"); !slices.Equal(got, want) {
		t.Errorf("block list %v, want %v", got, want)
	}
	if got, err := ts.Store.BlockList("alice"); err != nil || !slices.Equal(got, want) {
		t.Errorf("stored block list %v %v, want %v", got, err, want)
	}
	// Blocking twice is harmless.
	block(t, a2, "bob@example.com")
	a1.waitFor("second push", isBlockPush("block"))

	unblock(t, a2, "bob@example.com")
	for _, c := range []*client{a1, a2, a3} {
		p := c.waitFor("unblock push", isBlockPush("unblock"))
		if got := blockJIDs(p, "unblock"); !slices.Equal(got, []string{"bob@example.com"}) {
			t.Errorf("%s: unblock push %s", c.name, p)
		}
	}
	if got := blockJIDs(a1.iq("get", "", blocklistGet), "blocklist"); !slices.Equal(got, []string{"carol@example.com/phone"}) {
		t.Errorf("block list after unblock: %v", got)
	}

	// An empty unblock unblocks everyone (§3.5) and is pushed as such.
	block(t, a1, "dave@example.com")
	unblock(t, a1)
	p := a2.waitFor("unblock-all push", isBlockPush("unblock").and(func(el *wire.Element) bool {
		return len(blockJIDs(el, "unblock")) == 0
	}))
	_ = p
	if got := blockJIDs(a1.iq("get", "", blocklistGet), "blocklist"); len(got) != 0 {
		t.Errorf("block list after unblock all: %v", got)
	}
	if got, _ := ts.Store.BlockList("alice"); len(got) != 0 {
		t.Errorf("stored block list after unblock all: %v", got)
	}

	for _, tt := range []struct{ typ, payload, cond string }{
		{"set", `<block xmlns='urn:xmpp:blocking'/>`, "bad-request"}, // §3.3
		{"set", `<block xmlns='urn:xmpp:blocking'><item jid='@example.com'/></block>`, "jid-malformed"},
		{"set", `<block xmlns='urn:xmpp:blocking'><item/></block>`, "jid-malformed"},
		{"get", `<block xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></block>`, "bad-request"},
		{"set", blocklistGet, "bad-request"},
		{"get", `<blocked xmlns='urn:xmpp:blocking'/>`, "bad-request"},
	} {
		requireError(t, tt.typ+" "+tt.payload, a1.iq(tt.typ, "", tt.payload), tt.cond)
	}
	if got, _ := ts.Store.BlockList("alice"); len(got) != 0 {
		t.Errorf("failed requests changed the block list: %v", got)
	}
}

// TestBlockListLimit: the list is bounded per user.
func TestBlockListLimit(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxBlockedJIDs = 2 })
	alice := ts.login(t, "alice", "a")
	block(t, alice, "x1@example.org", "x2@example.org")
	requireError(t, "third JID", alice.iq("set", "", `<block xmlns='urn:xmpp:blocking'><item jid='x3@example.org'/></block>`), "not-acceptable")
	requireError(t, "too many in one request", alice.iq("set", "", `<block xmlns='urn:xmpp:blocking'><item jid='y1@example.org'/><item jid='y2@example.org'/><item jid='y3@example.org'/></block>`), "not-acceptable")
	block(t, alice, "x1@example.org") // already there: still within the bound
	if got, _ := ts.Store.BlockList("alice"); len(got) != 2 {
		t.Errorf("stored %v", got)
	}
}

// TestBlockedStanzas covers XEP-0191 §3.3 for messages, IQs and presence
// in both directions.
func TestBlockedStanzas(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	dave := ts.online(t, "dave", "d", 0)
	block(t, alice, "dave@example.com")

	t.Run("inbound", func(t *testing.T) {
		// Messages bounce as for an absent user: no hint of the block.
		for _, to := range []string{"alice@example.com", alice.jid} {
			dave.send(featChat(to, "hello"))
			el := dave.waitFor("bounce", isStanzaError("message", "service-unavailable"))
			if el.Attr("from") != to || el.Child(nsClient, "error").Child(nsBlockingErrors, "blocked") != nil {
				t.Errorf("bounce %s", el)
			}
		}
		requireError(t, "iq to a full JID", dave.iq("get", alice.jid, `<ping xmlns='urn:xmpp:ping'/>`), "service-unavailable")
		requireError(t, "vCard of the blocking user", dave.iq("get", "alice@example.com", `<vCard xmlns='vcard-temp'/>`), "service-unavailable")
		requireError(t, "disco of the blocking user", dave.iq("get", "alice@example.com", `<query xmlns='`+nsDiscoInfo+`'/>`), "service-unavailable")
		// Presence of any kind and IQ results are dropped without answer.
		dave.send(`<presence to='alice@example.com'/>`)
		dave.send(`<presence to='alice@example.com' type='subscribe'/>`)
		dave.send(`<presence to='alice@example.com' type='probe'/>`)
		dave.send(`<iq type='result' id='r1' to='` + alice.jid + `'/>`)
		dave.send(`<message to='alice@example.com' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`)
		if got := dave.drain(); len(got) != 0 {
			t.Errorf("answers to dropped stanzas:%s", featDump(got))
		}
		alice.quiet("stanza from a blocked user", fromUser("dave"))
		if it, found, _ := ts.Store.RosterItem("alice", "dave@example.com"); found && it.PendingIn {
			t.Error("a blocked user's subscription request was stored")
		}
	})

	t.Run("outbound", func(t *testing.T) {
		blocked := func(el *wire.Element) bool {
			e := el.Child(nsClient, "error")
			return el.Attr("type") == "error" && stanzaErrorCondition(el) == "not-acceptable" &&
				e.Child(nsBlockingErrors, "blocked") != nil
		}
		alice.send(featChat("dave@example.com", "psst"))
		el := alice.waitFor("message error", is("message").and(blocked))
		if el.Attr("from") != "dave@example.com" || el.Attr("to") != alice.jid || el.Attr("id") != "m-psst" {
			t.Errorf("error %s", el)
		}
		alice.send(featChat(dave.jid, "psst2"))
		alice.waitFor("message error (full JID)", is("message", "id", "m-psst2").and(blocked))
		if el := alice.iq("get", dave.jid, `<ping xmlns='urn:xmpp:ping'/>`); !blocked(el) {
			t.Errorf("iq to a blocked JID: %s", el)
		}
		alice.send(`<presence to='dave@example.com'/>`)
		alice.waitFor("presence error", is("presence").and(blocked))
		alice.send(`<iq type='result' id='r2' to='` + dave.jid + `'/>`) // dropped, not answered
		alice.quiet("error for an IQ result", is("iq", "id", "r2"))
		dave.quiet("stanza from the blocking user", fromUser("alice"))
		// The user's own account and the server are never blocked.
		requireResult(t, "ping server", alice.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`))
	})

	t.Run("offline", func(t *testing.T) {
		alice.send(`<presence type='unavailable'/>`)
		alice.drain()
		dave.send(featChat("alice@example.com", "stored?"))
		dave.waitFor("bounce", isStanzaError("message", "service-unavailable"))
		if n, _ := ts.Store.OfflineCount("alice"); n != 0 {
			t.Errorf("a blocked user's message went to offline storage (%d)", n)
		}
		alice.presence(0)
	})

	t.Run("unblocked", func(t *testing.T) {
		unblock(t, alice, "dave@example.com")
		dave.send(featChat("alice@example.com", "again"))
		alice.waitFor("message after unblock", hasBody("again"))
		alice.send(featChat(dave.jid, "welcome"))
		dave.waitFor("message after unblock", hasBody("welcome"))
	})
}

// TestBlockJIDShapes: a full JID blocks one resource, a domain blocks
// every address of it; the user's own resources and the server still
// reach the user when their domain is blocked.
func TestBlockJIDShapes(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	alice2 := ts.online(t, "alice", "a2", 0)
	phone := ts.online(t, "dave", "phone", 0)
	laptop := ts.online(t, "dave", "laptop", 0)

	block(t, alice, "dave@example.com/phone")
	phone.send(featChat(alice.jid, "from-phone"))
	phone.waitFor("bounce", isStanzaError("message", "service-unavailable"))
	laptop.send(featChat(alice.jid, "from-laptop"))
	alice.waitFor("message from the other resource", hasBody("from-laptop"))

	block(t, alice, "example.com")
	laptop.send(featChat(alice.jid, "domain"))
	laptop.waitFor("bounce", isStanzaError("message", "service-unavailable"))
	alice2.send(featChat(alice.jid, "own"))
	alice.waitFor("message from an own resource", hasBody("own"))
	requireResult(t, "roster", alice.iq("get", "", `<query xmlns='jabber:iq:roster'/>`))
	requireResult(t, "ping", alice.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`))
}

// TestBlockPresence: blocking cuts presence both ways at once (XEP-0191
// §3.3), including probes of new sessions; unblocking restores it (§3.4).
func TestBlockPresence(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0) // alice and bob are colleagues: both
	bob := ts.online(t, "bob", "b", 0)
	alice.waitFor("bob's presence", is("presence", "from", bob.jid, "type", ""))
	alice.drain()
	bob.drain()

	block(t, alice, "bob@example.com")
	bob.waitFor("alice unavailable", is("presence", "from", alice.jid, "type", "unavailable"))
	alice.waitFor("bob unavailable", is("presence", "from", bob.jid, "type", "unavailable"))

	bob.send(`<presence><show>away</show></presence>`)
	bob.drain()
	alice.quiet("presence from bob", fromUser("bob"))
	alice.send(`<presence><show>dnd</show></presence>`)
	alice.drain()
	bob.quiet("presence from alice", fromUser("alice"))

	// A new session of bob gets no probe answer from alice and alice no
	// broadcast from it.
	bob2 := ts.online(t, "bob", "b2", 0)
	bob2.quiet("alice's presence", fromUser("alice"))
	alice.quiet("bob2's presence", fromUser("bob"))

	unblock(t, alice, "bob@example.com")
	for _, c := range []*client{bob, bob2} {
		el := c.waitFor("alice's current presence", is("presence", "from", alice.jid, "type", ""))
		if s := el.Child(nsClient, "show"); s == nil || s.Text() != "dnd" {
			t.Errorf("%s got %s, want show dnd", c.name, el)
		}
	}
	alice.waitFor("bob's presence", is("presence", "from", bob.jid, "type", ""))
	alice.waitFor("bob2's presence", is("presence", "from", bob2.jid, "type", ""))

	// Being blocked works the same from the other side.
	block(t, bob, "alice@example.com")
	alice.waitFor("bob unavailable", is("presence", "from", bob.jid, "type", "unavailable"))
	bob.waitFor("alice unavailable", is("presence", "from", alice.jid, "type", "unavailable"))
	alice.send(`<presence/>`)
	alice.drain()
	bob.quiet("alice's presence", fromUser("alice"))
}

// TestBlockDirectedPresence: a contact that saw the user only through
// directed presence also gets unavailable on block.
func TestBlockDirectedPresence(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	dave := ts.online(t, "dave", "d", 0)
	alice.send(`<presence to='dave@example.com'/>`)
	dave.waitFor("directed presence", is("presence", "from", alice.jid, "type", ""))
	block(t, alice, "dave@example.com")
	dave.waitFor("unavailable on block", is("presence", "from", alice.jid, "type", "unavailable"))
}

// TestBlockPendingSubscription: a subscription request stored while the
// user was offline is not delivered once its sender is blocked.
func TestBlockPendingSubscription(t *testing.T) {
	ts := newTestServer(t)
	dave := ts.online(t, "dave", "d", 0)
	dave.send(`<presence type='subscribe' to='alice@example.com'/>`)
	dave.drain()
	alice := ts.login(t, "alice", "a")
	block(t, alice, "dave@example.com")
	alice.rosterGet("")
	alice.presence(0)
	alice.quiet("the blocked user's stored subscription request", is("presence", "type", "subscribe"))

	unblock(t, alice, "dave@example.com")
	alice.send(`<presence type='unavailable'/>`)
	alice.presence(0)
	alice.waitFor("the request after unblocking", is("presence", "type", "subscribe", "from", "dave@example.com"))
}

func TestBlockSetMatches(t *testing.T) {
	tests := []struct {
		list []string
		addr string
		want bool
	}{
		{nil, "bob@example.com", false},
		{[]string{"bob@example.com"}, "bob@example.com", true},
		{[]string{"bob@example.com"}, "bob@example.com/phone", true},
		{[]string{"bob@example.com"}, "bob@example.com/a/b@c", true},
		{[]string{"bob@example.com"}, "bobby@example.com/phone", false},
		{[]string{"bob@example.com"}, "example.com", false},
		{[]string{"bob@example.com/phone"}, "bob@example.com/phone", true},
		{[]string{"bob@example.com/phone"}, "bob@example.com/laptop", false},
		{[]string{"bob@example.com/phone"}, "bob@example.com", false},
		{[]string{"example.com/phone"}, "bob@example.com/phone", true},
		{[]string{"example.com/phone"}, "example.com/phone", true},
		{[]string{"example.com/phone"}, "bob@example.com/laptop", false},
		{[]string{"example.com"}, "example.com", true},
		{[]string{"example.com"}, "bob@example.com/x", true},
		{[]string{"example.com"}, "conference.example.com", true},
		{[]string{"example.com"}, "room@conference.example.com/nick", true},
		{[]string{"example.com"}, "notexample.com", false},
		{[]string{"example.com"}, "example.org", false},
		{[]string{"conference.example.com"}, "example.com", false},
		{[]string{"conference.example.com"}, "bob@example.com/conference.example.com", false},
	}
	for _, tt := range tests {
		if got := newBlockSet(tt.list).matches(tt.addr); got != tt.want {
			t.Errorf("%v matches %q = %v, want %v", tt.list, tt.addr, got, tt.want)
		}
	}
}

// TestBlockCache: the routing path reads block lists from memory, loaded
// once per user; entries of offline users go when the cache grows; unknown
// accounts are never cached.
func TestBlockCache(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	if err := ts.Store.Block("bob", "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	if !ts.blockSetOf("bob").matches("carol@example.com/x") {
		t.Fatal("block list not loaded from the store")
	}
	// Loaded once: a change behind the server's back is not seen, so no
	// stanza reads the store again.
	if err := ts.Store.Block("bob", "dave@example.com"); err != nil {
		t.Fatal(err)
	}
	if ts.blockSetOf("bob").matches("dave@example.com") {
		t.Fatal("the block list was read from the store again")
	}
	ts.blockSetOf("nobody")
	if ts.feat.blocks.lookup("nobody") != nil {
		t.Error("an unknown account was cached")
	}
	alice.send(featChat("dave@example.com", "x"))
	alice.drain()
	for _, u := range []string{"alice", "bob", "dave"} {
		if ts.feat.blocks.lookup(u) == nil {
			t.Errorf("%s not cached", u)
		}
	}
	// The next load sweeps: offline users go, online ones stay.
	ts.dir.mu.Lock()
	ts.dir.users["erin"] = fakeUser{"erin-pw", "Erin", nil}
	ts.dir.mu.Unlock()
	ts.feat.blocks.mu.Lock()
	ts.feat.blocks.sweepAt = len(ts.feat.blocks.users)
	ts.feat.blocks.mu.Unlock()
	ts.blockSetOf("erin")
	for u, want := range map[string]bool{"alice": true, "erin": true, "bob": false, "dave": false} {
		if got := ts.feat.blocks.lookup(u) != nil; got != want {
			t.Errorf("after the sweep %s cached = %v, want %v", u, got, want)
		}
	}
	// Reloaded from the store when needed again.
	if !ts.blockSetOf("bob").matches("dave@example.com") {
		t.Error("evicted list not reloaded")
	}
}

func BenchmarkBlockSetMatches(b *testing.B) {
	list := make([]string, 100)
	for i := range list {
		list[i] = fmt.Sprintf("user%d@example.org", i)
	}
	set := newBlockSet(list)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if set.matches("bob@example.com/phone") {
			b.Fatal("matched")
		}
	}
}

// BenchmarkBlockedStanza is the cost the blocking check adds to routing a
// stanza: both users' lists come from the cache; no match. "empty" is the
// common case, "100" a recipient who blocks 100 JIDs.
func BenchmarkBlockedStanza(b *testing.B) {
	for _, n := range []int{0, 100} {
		name := "empty"
		if n > 0 {
			name = fmt.Sprint(n)
		}
		b.Run(name, func(b *testing.B) {
			s, alice, bob := benchServer(b)
			list := make([]string, n)
			for i := range list {
				list[i] = fmt.Sprintf("user%d@example.org", i)
			}
			// benchServer has no store: put the lists straight into the cache.
			be, ae := &blockEntry{}, &blockEntry{}
			be.set.Store(newBlockSet(list))
			ae.set.Store(emptyBlockSet)
			s.feat.blocks.users = map[string]*blockEntry{"bob": be, "alice": ae}
			el := &wire.Element{Space: nsClient, Local: "message", Attrs: []wire.Attr{{Name: "to", Value: bob.fullJID}}}
			a, _, _ := s.resolve(bob.fullJID)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if alice.blockedStanza(el, a) {
					b.Fatal("blocked")
				}
			}
		})
	}
}
