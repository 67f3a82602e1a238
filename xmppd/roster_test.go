package xmppd

import (
	"strings"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

func isPresenceFrom(jid string) pred    { return is("presence", "from", jid, "type", "") }
func isUnavailableFrom(jid string) pred { return is("presence", "from", jid, "type", "unavailable") }

// TestSharedRoster: colleagues from directory groups appear without any
// request, mutually subscribed, with their display names.
func TestSharedRoster(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	res := alice.rosterGet("")
	items := rosterItems(t, res)
	if len(items) != 1 {
		t.Fatalf("alice's roster has %d items, want only bob: %s", len(items), res)
	}
	bob := items["bob@example.com"]
	if bob == nil || bob.Attr("subscription") != "both" || bob.Attr("name") != "Bob Brown" || bob.HasAttr("ask") {
		t.Fatalf("bob's item: %s", res)
	}
	if g := groupsOf(bob); len(g) != 1 || g[0] != "Engineering" {
		t.Fatalf("groups %v, want [Engineering]", g)
	}
	if ver := res.Child(nsRoster, "query").Attr("ver"); ver == "" {
		t.Fatalf("no roster version (RFC 6121 §2.6): %s", res)
	}
	dave := ts.login(t, "dave", "d")
	if items := rosterItems(t, dave.rosterGet("")); len(items) != 0 {
		t.Fatalf("dave (no group) has a roster: %v", items)
	}
}

// TestPresenceBroadcast covers RFC 6121 §4.2-§4.5 between colleagues.
func TestPresenceBroadcast(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	dave := ts.online(t, "dave", "d", 0)
	bob := ts.online(t, "bob", "b", 0)
	// bob's initial presence probes alice (§4.3) and reaches alice (§4.2.2).
	bob.waitFor("alice's presence", isPresenceFrom("alice@example.com/a"))
	alice.waitFor("bob's presence", isPresenceFrom("bob@example.com/b"))
	// A presence update reaches the contact, with to set to its bare JID.
	alice.send(`<presence><show>away</show><status>lunch</status></presence>`)
	el := bob.waitFor("alice's update", isPresenceFrom("alice@example.com/a").and(hasChild(nsClient, "show")))
	if el.Attr("to") != "bob@example.com" || el.Child(nsClient, "status").Text() != "lunch" {
		t.Fatalf("update: %s", el)
	}
	alice.drain()
	// dave shares no group and has no subscription: he sees nothing.
	dave.quiet("presence of a non-contact", is("presence"))
	// A second resource of alice sees the first one (§4.2.2) and vice versa.
	a2 := ts.online(t, "alice", "a2", 0)
	a2.waitFor("own other resource", isPresenceFrom("alice@example.com/a"))
	a2.waitFor("contact", isPresenceFrom("bob@example.com/b"))
	alice.waitFor("second resource", isPresenceFrom("alice@example.com/a2"))
	// Explicit unavailable (§4.5.1) and connection loss (§4.5.2).
	a2.send(`<presence type='unavailable'><status>bye</status></presence>`)
	el = bob.waitFor("a2 unavailable", isUnavailableFrom("alice@example.com/a2"))
	if el.Child(nsClient, "status") == nil {
		t.Errorf("status of the unavailable presence lost: %s", el)
	}
	alice.nc.Close()
	bob.waitFor("alice unavailable on disconnect", isUnavailableFrom("alice@example.com/a"))
	dave.quiet("presence of a non-contact", is("presence"))
}

// TestPresenceBeforeInitial: a session that has not sent initial presence
// receives no presence broadcasts (RFC 6121 §4.2.2: only available
// resources).
func TestPresenceBeforeInitial(t *testing.T) {
	ts := newTestServer(t)
	bob := ts.login(t, "bob", "b")
	alice := ts.online(t, "alice", "a", 0)
	alice.send(`<presence><show>dnd</show></presence>`)
	alice.drain()
	bob.quiet("presence before initial presence", is("presence"))
}

// TestRosterVersioning covers RFC 6121 §2.6 and pushes (§2.1.6).
func TestRosterVersioning(t *testing.T) {
	ts := newTestServer(t)
	a1 := ts.login(t, "alice", "a1")
	a2 := ts.login(t, "alice", "a2")
	a3 := ts.login(t, "alice", "a3") // never asks for the roster: no pushes
	res := a1.rosterGet("")
	ver := res.Child(nsRoster, "query").Attr("ver")
	a2.rosterGet("")

	res = a1.rosterGet(ver)
	if len(res.Nodes) != 0 {
		t.Fatalf("roster with the current version is not empty: %s", res)
	}
	// A roster set: result to the setter, a push to every interested
	// resource, a new version.
	el := a1.iq("set", "", `<query xmlns='jabber:iq:roster'><item jid='carol@example.com' name='Carol'><group>Friends</group></item></query>`)
	if el.Attr("type") != "result" {
		t.Fatalf("roster set: %s", el)
	}
	var pushVer string
	for _, c := range []*client{a1, a2} {
		p := c.waitFor("roster push", isRosterPush("carol@example.com", "none", ""))
		it := p.Child(nsRoster, "query").Child(nsRoster, "item")
		if it.Attr("name") != "Carol" || strings.Join(groupsOf(it), ",") != "Friends" {
			t.Errorf("push to %s: %s", c.name, p)
		}
		pushVer = p.Child(nsRoster, "query").Attr("ver")
		// The client acknowledges the push (§2.1.6).
		c.send(`<iq type='result' id='` + p.Attr("id") + `'/>`)
	}
	if pushVer == "" || pushVer == ver {
		t.Fatalf("push version %q, old %q: must change", pushVer, ver)
	}
	a3.quiet("roster push to an uninterested resource", is("iq", "type", "set"))
	res = a1.rosterGet(ver)
	items := rosterItems(t, res)
	if len(items) != 2 || items["carol@example.com"] == nil {
		t.Fatalf("roster after set with the old version: %s", res)
	}
	if v := res.Child(nsRoster, "query").Attr("ver"); v != pushVer {
		t.Errorf("roster version %q, push version %q", v, pushVer)
	}
	if res = a1.rosterGet(pushVer); len(res.Nodes) != 0 {
		t.Fatalf("roster with the pushed version is not empty: %s", res)
	}
	// Renaming a shared contact keeps it shared.
	a1.iq("set", "", `<query xmlns='jabber:iq:roster'><item jid='bob@example.com' name='Bobby'/></query>`)
	p := a1.waitFor("push", isRosterPush("bob@example.com", "both", ""))
	it := p.Child(nsRoster, "query").Child(nsRoster, "item")
	if it.Attr("name") != "Bobby" || strings.Join(groupsOf(it), ",") != "Engineering" {
		t.Errorf("renamed shared contact: %s", p)
	}
	// Removing a personal contact.
	a1.iq("set", "", `<query xmlns='jabber:iq:roster'><item jid='carol@example.com' subscription='remove'/></query>`)
	a1.waitFor("remove push", isRosterPush("carol@example.com", "remove", ""))
	a2.waitFor("remove push", isRosterPush("carol@example.com", "remove", ""))
	if items := rosterItems(t, a1.rosterGet("")); items["carol@example.com"] != nil {
		t.Fatal("carol still in the roster")
	}
}

// TestRosterSetErrors covers RFC 6121 §2.3.3 and §2.5.3.
func TestRosterSetErrors(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	alice.rosterGet("")
	tests := []struct {
		name, query, cond string
	}{
		{"two items", `<item jid='carol@example.com'/><item jid='dave@example.com'/>`, "bad-request"},
		{"no item", ``, "bad-request"},
		{"self", `<item jid='alice@example.com'/>`, "not-allowed"},
		{"full JID", `<item jid='carol@example.com/r'/>`, "jid-malformed"},
		{"malformed JID", `<item jid='a@@b'/>`, "jid-malformed"},
		{"duplicate group", `<item jid='carol@example.com'><group>x</group><group>x</group></item>`, "bad-request"},
		{"empty group", `<item jid='carol@example.com'><group/></item>`, "not-acceptable"},
		{"remove shared contact", `<item jid='bob@example.com' subscription='remove'/>`, "not-allowed"},
		{"remove unknown contact", `<item jid='nobody@example.com' subscription='remove'/>`, "item-not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el := alice.iq("set", "", `<query xmlns='jabber:iq:roster'>`+tt.query+`</query>`)
			if !isStanzaError("iq", tt.cond)(el) {
				t.Fatalf("got %s, want %s", el, tt.cond)
			}
		})
	}
	alice.quiet("roster push after a refused set", is("iq", "type", "set"))
	if items := rosterItems(t, alice.rosterGet("")); len(items) != 1 {
		t.Fatalf("roster changed by refused sets: %v", items)
	}
}

// checkRoster asserts the subscription (and ask) of contact in c's roster.
func checkRoster(t *testing.T, c *client, contact, sub, ask string) {
	t.Helper()
	items := rosterItems(t, c.rosterGet(""))
	it := items[contact]
	if sub == "" {
		if it != nil {
			t.Fatalf("%s: %s still in the roster: %s", c.name, contact, it)
		}
		return
	}
	if it == nil {
		t.Fatalf("%s: %s not in the roster", c.name, contact)
	}
	if it.Attr("subscription") != sub || it.Attr("ask") != ask {
		t.Fatalf("%s: item %s, want subscription=%s ask=%q", c.name, it, sub, ask)
	}
}

// TestSubscriptionFlow covers RFC 6121 §3 between alice and dave, who
// share no group.
func TestSubscriptionFlow(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)

	// §3.1.2: the request; dave is offline and gets it at login (§3.1.3).
	alice.send(`<presence to='dave@example.com' type='subscribe' id='sub1'><status>hi, it is alice</status></presence>`)
	alice.waitFor("push ask", isRosterPush("dave@example.com", "none", "subscribe"))
	alice.drain()
	dave := ts.online(t, "dave", "d", 0)
	req := dave.waitFor("subscription request", is("presence", "type", "subscribe", "from", "alice@example.com"))
	if req.Child(nsClient, "status") == nil {
		t.Errorf("request lost its status: %s", req)
	}
	// Still pending: redelivered at the next login, not shown in the roster.
	checkRoster(t, dave, "alice@example.com", "", "")
	dave.nc.Close()
	dave = ts.online(t, "dave", "d", 0)
	dave.waitFor("redelivered request", is("presence", "type", "subscribe", "from", "alice@example.com"))

	// §3.1.5: approval.
	dave.send(`<presence to='alice@example.com' type='subscribed'/>`)
	dave.waitFor("push from", isRosterPush("alice@example.com", "from", ""))
	alice.waitFor("push to", isRosterPush("dave@example.com", "to", ""))
	alice.waitFor("subscribed", is("presence", "type", "subscribed", "from", "dave@example.com"))
	alice.waitFor("dave's presence", isPresenceFrom("dave@example.com/d"))
	checkRoster(t, alice, "dave@example.com", "to", "")
	checkRoster(t, dave, "alice@example.com", "from", "")
	// A new resource of alice probes dave at its initial presence (§4.3)
	// and learns when he leaves (§4.5.2); dave's new resource does not see
	// alice.
	a2 := ts.online(t, "alice", "a2", 0)
	a2.waitFor("dave's presence", isPresenceFrom("dave@example.com/d"))
	d2 := ts.online(t, "dave", "d2", 0)
	a2.waitFor("dave's second resource", isPresenceFrom("dave@example.com/d2"))
	d2.quiet("alice's presence without subscription", is("presence", "from", "alice@example.com/a"))
	d2.nc.Close()
	a2.waitFor("dave's second resource leaving", isUnavailableFrom("dave@example.com/d2"))
	alice.waitFor("dave's second resource leaving", isUnavailableFrom("dave@example.com/d2"))
	a2.nc.Close()
	dave.quiet("alice's second resource", is("presence", "from", "alice@example.com/a2"))

	// Presence flows dave -> alice only.
	dave.send(`<presence><show>chat</show></presence>`)
	alice.waitFor("dave's update", isPresenceFrom("dave@example.com/d").and(hasChild(nsClient, "show")))
	alice.send(`<presence><show>xa</show></presence>`)
	alice.drain()
	dave.quiet("alice's presence without subscription", is("presence", "from", "alice@example.com/a"))
	// A probe answers only when subscribed (§4.3.2).
	alice.send(`<presence to='dave@example.com' type='probe'/>`)
	alice.waitFor("probe answer", isPresenceFrom("dave@example.com/d"))
	dave.send(`<presence to='alice@example.com' type='probe'/>`)
	dave.quiet("probe answer without subscription", is("presence", "from", "alice@example.com/a"))

	// Mutual (§3.1 the other way).
	dave.send(`<presence to='alice@example.com' type='subscribe'/>`)
	dave.waitFor("push ask", isRosterPush("alice@example.com", "from", "subscribe"))
	alice.waitFor("request", is("presence", "type", "subscribe", "from", "dave@example.com"))
	alice.send(`<presence to='dave@example.com' type='subscribed'/>`)
	alice.waitFor("push both", isRosterPush("dave@example.com", "both", ""))
	dave.waitFor("push both", isRosterPush("alice@example.com", "both", ""))
	dave.waitFor("alice's presence", isPresenceFrom("alice@example.com/a"))
	alice.send(`<presence><show>away</show></presence>`)
	dave.waitFor("alice's update", isPresenceFrom("alice@example.com/a").and(hasChild(nsClient, "show")))

	// §3.3: alice unsubscribes from dave's presence.
	alice.drain()
	dave.drain()
	alice.send(`<presence to='dave@example.com' type='unsubscribe'/>`)
	alice.waitFor("push from", isRosterPush("dave@example.com", "from", ""))
	alice.waitFor("dave gone", isUnavailableFrom("dave@example.com/d"))
	dave.waitFor("push to", isRosterPush("alice@example.com", "to", ""))
	dave.waitFor("unsubscribe", is("presence", "type", "unsubscribe", "from", "alice@example.com"))
	dave.send(`<presence><show>dnd</show></presence>`)
	dave.drain()
	alice.quiet("dave's presence after unsubscribe", is("presence", "from", "dave@example.com/d"))

	// §3.2: alice cancels dave's subscription to her.
	alice.send(`<presence to='dave@example.com' type='unsubscribed'/>`)
	alice.waitFor("push none", isRosterPush("dave@example.com", "none", ""))
	dave.waitFor("push none", isRosterPush("alice@example.com", "none", ""))
	dave.waitFor("unsubscribed", is("presence", "type", "unsubscribed", "from", "alice@example.com"))
	dave.waitFor("alice gone", isUnavailableFrom("alice@example.com/a"))
	alice.send(`<presence><show>chat</show></presence>`)
	alice.drain()
	dave.quiet("alice's presence after unsubscribed", is("presence", "from", "alice@example.com/a"))
	checkRoster(t, alice, "dave@example.com", "none", "")
	checkRoster(t, dave, "alice@example.com", "none", "")
}

// TestSubscriptionDeny: unsubscribed in answer to a request denies it
// (§3.2.1); the requester's ask is cleared.
func TestSubscriptionDeny(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	dave := ts.online(t, "dave", "d", 0)
	alice.send(`<presence to='dave@example.com' type='subscribe'/>`)
	dave.waitFor("request", is("presence", "type", "subscribe", "from", "alice@example.com"))
	dave.send(`<presence to='alice@example.com' type='unsubscribed'/>`)
	alice.waitFor("denied", is("presence", "type", "unsubscribed", "from", "dave@example.com"))
	alice.waitFor("push none", isRosterPush("dave@example.com", "none", ""))
	checkRoster(t, alice, "dave@example.com", "none", "")
	checkRoster(t, dave, "alice@example.com", "", "")
	// Not redelivered at the next login.
	dave.nc.Close()
	dave = ts.online(t, "dave", "d", 0)
	dave.quiet("denied request", is("presence", "type", "subscribe"))
}

// TestPreApproval covers RFC 6121 §3.4.
func TestPreApproval(t *testing.T) {
	ts := newTestServer(t)
	dave := ts.online(t, "dave", "d", 0)
	carol := ts.online(t, "carol", "c", 0)
	dave.send(`<presence to='carol@example.com' type='subscribed'/>`)
	dave.drain()
	carol.quiet("anything about a pre-approval", func(el *wire.Element) bool { return el.Local == "presence" && el.Attr("type") != "" })
	carol.send(`<presence to='dave@example.com' type='subscribe'/>`)
	carol.waitFor("push to", isRosterPush("dave@example.com", "to", ""))
	carol.waitFor("subscribed", is("presence", "type", "subscribed", "from", "dave@example.com"))
	carol.waitFor("dave's presence", isPresenceFrom("dave@example.com/d"))
	dave.waitFor("push from", isRosterPush("carol@example.com", "from", ""))
	dave.quiet("a request that was pre-approved", is("presence", "type", "subscribe"))
	checkRoster(t, dave, "carol@example.com", "from", "")
}

// TestSubscribeToColleague: colleagues are subscribed already; a client
// that asks anyway gets an immediate approval and the presence.
func TestSubscribeToColleague(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	bob.drain()
	alice.send(`<presence to='bob@example.com' type='subscribe'/>`)
	alice.waitFor("subscribed", is("presence", "type", "subscribed", "from", "bob@example.com"))
	alice.waitFor("bob's presence", isPresenceFrom("bob@example.com/b"))
	bob.quiet("request from a colleague", is("presence", "type", "subscribe"))
}

// TestRosterRemoveCancels covers RFC 6121 §2.5.2: removing a contact
// cancels both subscription directions.
func TestRosterRemoveCancels(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	dave := ts.online(t, "dave", "d", 0)
	// Mutual subscription.
	alice.send(`<presence to='dave@example.com' type='subscribe'/>`)
	dave.waitFor("request", is("presence", "type", "subscribe", "from", "alice@example.com"))
	dave.send(`<presence to='alice@example.com' type='subscribed'/>`)
	dave.send(`<presence to='alice@example.com' type='subscribe'/>`)
	alice.waitFor("request", is("presence", "type", "subscribe", "from", "dave@example.com"))
	alice.send(`<presence to='dave@example.com' type='subscribed'/>`)
	alice.waitFor("push both", isRosterPush("dave@example.com", "both", ""))
	dave.waitFor("push both", isRosterPush("alice@example.com", "both", ""))
	alice.drain()
	dave.drain()

	el := alice.iq("set", "", `<query xmlns='jabber:iq:roster'><item jid='dave@example.com' subscription='remove'/></query>`)
	if el.Attr("type") != "result" {
		t.Fatalf("remove: %s", el)
	}
	alice.waitFor("remove push", isRosterPush("dave@example.com", "remove", ""))
	alice.waitFor("dave gone", isUnavailableFrom("dave@example.com/d"))
	dave.waitFor("unsubscribe", is("presence", "type", "unsubscribe", "from", "alice@example.com"))
	dave.waitFor("unsubscribed", is("presence", "type", "unsubscribed", "from", "alice@example.com"))
	dave.waitFor("alice gone", isUnavailableFrom("alice@example.com/a"))
	checkRoster(t, alice, "dave@example.com", "", "")
	checkRoster(t, dave, "alice@example.com", "none", "")
	dave.send(`<presence><show>away</show></presence>`)
	alice.send(`<presence><show>away</show></presence>`)
	dave.drain()
	alice.drain()
	dave.quiet("presence after remove", is("presence", "from", "alice@example.com/a"))
	alice.quiet("presence after remove", is("presence", "from", "dave@example.com/d"))
}

// TestDirectedPresence covers RFC 6121 §4.6: a non-contact that received
// directed presence learns when the sender goes offline.
func TestDirectedPresence(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	carol := ts.online(t, "carol", "c", 0)
	dave := ts.online(t, "dave", "d", 0)
	alice.send(`<presence to='carol@example.com/c'><status>to carol</status></presence>`)
	alice.send(`<presence to='dave@example.com'><status>to dave</status></presence>`)
	carol.waitFor("directed presence", isPresenceFrom("alice@example.com/a"))
	dave.waitFor("directed presence", isPresenceFrom("alice@example.com/a"))
	// Broadcasts do not go to directed-presence recipients.
	alice.send(`<presence><show>away</show></presence>`)
	alice.drain()
	carol.quiet("broadcast to a non-contact", is("presence", "from", "alice@example.com/a"))
	alice.nc.Close()
	carol.waitFor("unavailable on disconnect", isUnavailableFrom("alice@example.com/a"))
	dave.waitFor("unavailable on disconnect", isUnavailableFrom("alice@example.com/a"))
}

// TestDirectedUnavailable: a directed unavailable removes the recipient from
// the list, so it gets no second unavailable at disconnect.
func TestDirectedUnavailable(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	carol := ts.online(t, "carol", "c", 0)
	alice.send(`<presence to='carol@example.com/c'/>`)
	carol.waitFor("directed presence", isPresenceFrom("alice@example.com/a"))
	alice.send(`<presence to='carol@example.com/c' type='unavailable'/>`)
	carol.waitFor("directed unavailable", isUnavailableFrom("alice@example.com/a"))
	alice.send(`<presence type='unavailable'/>`)
	alice.drain()
	carol.quiet("second unavailable", isUnavailableFrom("alice@example.com/a"))
}

// TestSubscribeNonexistent: a request to an account that does not exist is
// answered with unsubscribed (RFC 6121 §3.1.3 for a nonexistent contact).
func TestSubscribeNonexistent(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	alice.send(`<presence to='zed@example.com' type='subscribe'/>`)
	alice.waitFor("unsubscribed", is("presence", "type", "unsubscribed", "from", "zed@example.com"))
	alice.drain() // roster pushes: ask, then cleared
	items := rosterItems(t, alice.rosterGet(""))
	if it := items["zed@example.com"]; it != nil && (it.Attr("ask") != "" || it.Attr("subscription") != "none") {
		t.Fatalf("item for a nonexistent contact: %s", it)
	}
	// Subscription stanzas to oneself or to a remote domain.
	alice.send(`<presence to='alice@example.com' type='subscribe'/>`)
	alice.silent()
	alice.send(`<presence to='x@elsewhere.org' type='subscribe'/>`)
	alice.waitFor("error", isStanzaError("presence", "remote-server-not-found"))
}

// TestAvatarHashFromDirectory: the directory's photo hash is announced in
// presence (XEP-0153), replacing what the client claimed.
func TestAvatarHashFromDirectory(t *testing.T) {
	ts := newTestServer(t)
	ts.dir.mu.Lock()
	ts.dir.photos = map[string]string{"alice": "9c2b7a3e4f1d0a5b6c7d8e9f0a1b2c3d4e5f6a7b"}
	ts.dir.mu.Unlock()
	bob := ts.online(t, "bob", "b", 0)
	alice := ts.login(t, "alice", "a")
	alice.rosterGet("")
	alice.send(`<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
	p := bob.waitFor("alice's presence", is("presence", "from", alice.jid, "type", ""))
	x := p.Child("vcard-temp:x:update", "x")
	if x == nil || x.Child("vcard-temp:x:update", "photo") == nil ||
		x.Child("vcard-temp:x:update", "photo").Text() != "9c2b7a3e4f1d0a5b6c7d8e9f0a1b2c3d4e5f6a7b" {
		t.Fatalf("bob got %s, want the directory's photo hash", p)
	}
	// A user without a directory photo keeps what the client sent.
	bob.send(`<presence><x xmlns='vcard-temp:x:update'><photo>abc</photo></x></presence>`)
	p = alice.waitFor("bob's presence", func(el *wire.Element) bool {
		return el.Local == "presence" && el.Attr("from") == bob.jid && el.Child("vcard-temp:x:update", "x") != nil
	})
	if got := p.Child("vcard-temp:x:update", "x").Child("vcard-temp:x:update", "photo").Text(); got != "abc" {
		t.Fatalf("bob's own hash became %q", got)
	}
}
