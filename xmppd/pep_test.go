package xmppd

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

const (
	nodeTune    = "http://jabber.org/protocol/tune"
	nodeNick    = "http://jabber.org/protocol/nick"
	nodeDevices = "eu.siacs.conversations.axolotl.devicelist"
)

// capsInfo is the disco#info a test client answers with: one identity
// (named after the client so that its ver is its own unless shared) and
// NODE+notify for each node.
func capsInfo(name string, nodes []string) (string, string) {
	ids := []discoIdentity{{Category: "client", Type: "pc", Name: name}}
	feats := []string{nsDiscoInfo, nsCaps}
	for _, n := range nodes {
		feats = append(feats, n+"+notify")
	}
	var b strings.Builder
	b.WriteString(`<identity category='client' type='pc' name='` + name + `'/>`)
	for _, f := range feats {
		b.WriteString(`<feature var='` + f + `'/>`)
	}
	return capsVer(ids, feats), b.String()
}

// capsPresence sends available presence with XEP-0115 caps for a client
// called name that wants notifications of nodes, answers the server's
// disco#info query when one comes (asked reports whether it did), and
// returns what arrived besides, the last items among it.
func (c *client) capsPresence(name string, nodes []string, wantQuery bool) []*wire.Element {
	c.tb.Helper()
	ver, info := capsInfo(name, nodes)
	c.send(`<presence><c xmlns='` + nsCaps + `' hash='sha-1' node='urn:test:client' ver='` + ver + `'/></presence>`)
	c.waitFor("own presence", is("presence", "from", c.jid, "type", ""))
	if wantQuery {
		q := c.waitFor("caps disco#info query", is("iq", "type", "get", "from", testDomain).and(hasChild(nsDiscoInfo, "query")))
		if got := q.Child(nsDiscoInfo, "query").Attr("node"); got != "urn:test:client#"+ver {
			c.tb.Fatalf("%s: caps query for node %q", c.name, got)
		}
		c.send(`<iq type='result' id='` + q.Attr("id") + `' to='` + testDomain + `'><query xmlns='` + nsDiscoInfo + `' node='urn:test:client#` + ver + `'>` + info + `</query></iq>`)
	}
	out := c.drain()
	for _, el := range out {
		if el.Local == "iq" && el.Attr("type") == "get" && el.Child(nsDiscoInfo, "query") != nil {
			c.tb.Fatalf("%s: unexpected caps query %s", c.name, el)
		}
	}
	return out
}

// pepOnline logs user in with caps for nodes; the roster is requested so
// that the session behaves like a client's.
func (ts *testServer) pepOnline(tb testing.TB, user, resource string, nodes ...string) (*client, []*wire.Element) {
	tb.Helper()
	c := ts.login(tb, user, resource)
	c.rosterGet("")
	got := c.capsPresence(user+"/"+resource, nodes, true)
	return c, got
}

func publishXML(node, id, payload, options string) string {
	idAttr := ""
	if id != "" {
		idAttr = ` id='` + id + `'`
	}
	po := ""
	if options != "" {
		po = `<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>` + nsPubSubOptions + `</value></field>` + options + `</x></publish-options>`
	}
	return `<pubsub xmlns='` + nsPubSub + `'><publish node='` + node + `'><item` + idAttr + `>` + payload + `</item></publish>` + po + `</pubsub>`
}

func optField(name, value string) string {
	return `<field var='` + name + `'><value>` + value + `</value></field>`
}

const tunePayload = `<tune xmlns='http://jabber.org/protocol/tune'><artist>Yes</artist></tune>`

// isEvent matches a PEP notification about node from owner.
func isEvent(owner, node string) pred {
	return func(el *wire.Element) bool {
		if el.Local != "message" || el.Attr("type") != "headline" || el.Attr("from") != owner {
			return false
		}
		ev := el.Child(nsPubSubEvent, "event")
		if ev == nil {
			return false
		}
		for _, n := range ev.Nodes {
			if n.El != nil && n.El.Attr("node") == node {
				return true
			}
		}
		return false
	}
}

// eventItemIDs lists the item (or retract) ids of a notification or an
// items result.
func eventItemIDs(el *wire.Element) []string {
	var items *wire.Element
	if ev := el.Child(nsPubSubEvent, "event"); ev != nil {
		items = ev.Child(nsPubSubEvent, "items")
	} else if ps := el.Child(nsPubSub, "pubsub"); ps != nil {
		items = ps.Child(nsPubSub, "items")
	}
	if items == nil {
		return nil
	}
	var ids []string
	for _, n := range items.Nodes {
		if n.El != nil {
			ids = append(ids, n.El.Local+":"+n.El.Attr("id"))
		}
	}
	return ids
}

func requirePubSubError(t *testing.T, what string, el *wire.Element, cond, app string) {
	t.Helper()
	requireError(t, what, el, cond)
	if app == "" {
		return
	}
	if el.Child(nsClient, "error").Child(nsPubSubErrors, app) == nil {
		t.Fatalf("%s: no pubsub#errors %s in %s", what, app, el)
	}
}

func TestPEPDisco(t *testing.T) {
	ts := newTestServer(t)
	a := ts.login(t, "alice", "r")
	q := requireResult(t, "account disco#info", a.iq("get", "alice@"+testDomain, `<query xmlns='`+nsDiscoInfo+`'/>`)).Child(nsDiscoInfo, "query")
	hasPEP := false
	var feats []string
	for _, n := range q.Nodes {
		if n.El == nil {
			continue
		}
		if n.El.Local == "identity" && n.El.Attr("category") == "pubsub" && n.El.Attr("type") == "pep" {
			hasPEP = true
		}
		if n.El.Local == "feature" {
			feats = append(feats, n.El.Attr("var"))
		}
	}
	if !hasPEP {
		t.Errorf("no pubsub/pep identity: %s", q)
	}
	for _, f := range []string{"publish", "publish-options", "auto-create", "access-presence", "access-open", "access-whitelist",
		"retrieve-items", "retract-items", "delete-nodes", "config-node", "persistent-items", "last-published", "presence-notifications"} {
		if !slices.Contains(feats, nsPubSub+"#"+f) {
			t.Errorf("feature %s missing", f)
		}
	}
}

// TestPEPNotifications: XEP-0163 §4.3 — the owner's sessions and presence
// subscribers get the event only with NODE+notify; others get nothing.
func TestPEPNotifications(t *testing.T) {
	ts := newTestServer(t)
	alice, _ := ts.pepOnline(t, "alice", "tune", nodeTune)
	alice2, _ := ts.pepOnline(t, "alice", "quiet", nodeNick)
	bob, _ := ts.pepOnline(t, "bob", "r", nodeTune)        // colleague: subscription both
	carol, _ := ts.pepOnline(t, "carol", "r", nodeTune)    // no subscription
	bobNo, _ := ts.pepOnline(t, "bob", "nocaps", nodeNick) // subscribed, no +notify
	for _, c := range []*client{alice2, bob, carol, bobNo} {
		c.drain() // presences of each other
	}

	r := requireResult(t, "publish", alice.iq("set", "", publishXML(nodeTune, "", tunePayload, "")))
	pub := r.Child(nsPubSub, "pubsub").Child(nsPubSub, "publish")
	id := pub.Child(nsPubSub, "item").Attr("id")
	if pub.Attr("node") != nodeTune || id == "" {
		t.Fatalf("publish result without generated id: %s", r)
	}
	ev := alice.waitFor("own event", isEvent("alice@"+testDomain, nodeTune))
	if got := eventItemIDs(ev); !slices.Equal(got, []string{"item:" + id}) {
		t.Errorf("own event items %v", got)
	}
	ev = bob.waitFor("contact event", isEvent("alice@"+testDomain, nodeTune))
	it := ev.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "item")
	if tune := it.Child(nodeTune, "tune"); tune == nil || tune.Child(nodeTune, "artist").Text() != "Yes" {
		t.Errorf("payload lost: %s", ev)
	}
	if ev.Attr("to") != bob.jid {
		t.Errorf("event to %q, want %q", ev.Attr("to"), bob.jid)
	}
	for _, c := range []*client{alice2, carol, bobNo} {
		c.quiet("event without +notify or subscription", isEvent("alice@"+testDomain, nodeTune))
	}
}

// TestPEPLastItem: XEP-0163 §4.3.3 — a session that becomes available
// gets the last item of each node it wants, with a delay stamp.
func TestPEPLastItem(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "r")
	requireResult(t, "publish 1", alice.iq("set", "", publishXML(nodeTune, "t1", tunePayload, "")))
	requireResult(t, "publish 2", alice.iq("set", "", publishXML(nodeTune, "t2", tunePayload, "")))
	requireResult(t, "publish nick", alice.iq("set", "", publishXML(nodeNick, "n1", `<nick xmlns='`+nodeNick+`'>Al</nick>`, "")))
	requireResult(t, "publish never", alice.iq("set", "", publishXML("urn:test:never", "x", `<x xmlns='urn:test'/>`,
		optField("pubsub#send_last_published_item", "never"))))
	requireResult(t, "carol publish", ts.login(t, "carol", "r").iq("set", "", publishXML(nodeTune, "c1", tunePayload, "")))

	_, got := ts.pepOnline(t, "bob", "r", nodeTune, "urn:test:never")
	var events []string
	for _, el := range got {
		if isEvent("alice@"+testDomain, nodeTune)(el) {
			events = append(events, strings.Join(eventItemIDs(el), ","))
			if d := el.Child(nsDelay, "delay"); d == nil || d.Attr("stamp") == "" {
				t.Errorf("last item without delay: %s", el)
			}
		}
		if el.Local == "message" && el.Child(nsPubSubEvent, "event") != nil && !isEvent("alice@"+testDomain, nodeTune)(el) {
			t.Errorf("unexpected event: %s", el)
		}
	}
	if !slices.Equal(events, []string{"item:t2"}) {
		t.Errorf("last items %v, want [item:t2]", events)
	}

	// The owner's own new session gets its last items too.
	_, got = ts.pepOnline(t, "alice", "second", nodeNick)
	n := 0
	for _, el := range got {
		if isEvent("alice@"+testDomain, nodeNick)(el) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("own last nick events: %d in %v", n, got)
	}
}

// TestPEPAccessModels: items retrieval (XEP-0060 §6.5) and notification
// audience under each access model (§4.5). bob is alice's colleague
// (roster group Engineering, subscription both); carol has no subscription.
func TestPEPAccessModels(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "r")
	bob, _ := ts.pepOnline(t, "bob", "r", "urn:test:open", "urn:test:presence", "urn:test:whitelist", "urn:test:roster-ok", "urn:test:roster-no")
	carol := ts.login(t, "carol", "r")
	groups := func(g string) string {
		return `<field var='pubsub#roster_groups_allowed'><value>` + g + `</value></field>`
	}
	tests := []struct {
		node, options    string
		bob, carol       string // "" allowed, else the error condition
		bobApp, carolApp string
		bobNotified      bool
	}{
		{"urn:test:open", optField("pubsub#access_model", "open"), "", "", "", "", true},
		{"urn:test:presence", "", "", "not-authorized", "", "presence-subscription-required", true},
		{"urn:test:whitelist", optField("pubsub#access_model", "whitelist"), "not-allowed", "not-allowed", "closed-node", "closed-node", false},
		{"urn:test:roster-ok", optField("pubsub#access_model", "roster") + groups("Engineering"), "", "not-authorized", "", "not-in-roster-group", true},
		{"urn:test:roster-no", optField("pubsub#access_model", "roster") + groups("Sales"), "not-authorized", "not-authorized", "not-in-roster-group", "not-in-roster-group", false},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			requireResult(t, "publish", alice.iq("set", "", publishXML(tt.node, "i1", `<x xmlns='urn:test'/>`, tt.options)))
			if tt.bobNotified {
				bob.waitFor("event", isEvent("alice@"+testDomain, tt.node))
			} else {
				bob.quiet("event", isEvent("alice@"+testDomain, tt.node))
			}
			get := `<pubsub xmlns='` + nsPubSub + `'><items node='` + tt.node + `'/></pubsub>`
			for _, who := range []struct {
				c         *client
				cond, app string
			}{{bob, tt.bob, tt.bobApp}, {carol, tt.carol, tt.carolApp}} {
				r := who.c.iq("get", "alice@"+testDomain, get)
				if who.cond == "" {
					requireResult(t, who.c.name+" items", r)
					if r.Attr("from") != "alice@"+testDomain || !slices.Equal(eventItemIDs(r), []string{"item:i1"}) {
						t.Errorf("%s: items result %s", who.c.name, r)
					}
				} else {
					requirePubSubError(t, who.c.name+" items", r, who.cond, who.app)
				}
			}
			// The owner always may.
			if r := requireResult(t, "own items", alice.iq("get", "", get)); !slices.Equal(eventItemIDs(r), []string{"item:i1"}) {
				t.Errorf("own items %s", r)
			}
		})
	}
}

// TestPEPPublishOptions: XEP-0060 §7.1.5 preconditions and the
// configuration they create.
func TestPEPPublishOptions(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "r")
	open := optField("pubsub#access_model", "open")
	requireResult(t, "create with options", alice.iq("set", "", publishXML(nodeDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'/>`, open)))
	requireResult(t, "same options", alice.iq("set", "", publishXML(nodeDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'/>`, open)))
	requireResult(t, "no options", alice.iq("set", "", publishXML(nodeDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'/>`, "")))
	requireResult(t, "unknown field ignored", alice.iq("set", "", publishXML(nodeDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'/>`, optField("pubsub#deliver_payloads", "1"))))

	tests := []struct{ name, options string }{
		{"other access model", optField("pubsub#access_model", "presence")},
		{"other max_items", optField("pubsub#max_items", "5")},
		{"unsupported access model", optField("pubsub#access_model", "authorize")},
		{"max_items too big", optField("pubsub#max_items", "100000")},
		{"persist not boolean", optField("pubsub#persist_items", "maybe")},
	}
	for _, tt := range tests {
		r := alice.iq("set", "", publishXML(nodeDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'/>`, tt.options))
		requirePubSubError(t, tt.name, r, "conflict", "precondition-not-met")
	}

	conf := requireResult(t, "configure get", alice.iq("get", "", `<pubsub xmlns='`+nsPubSubOwner+`'><configure node='`+nodeDevices+`'/></pubsub>`))
	x := conf.Child(nsPubSubOwner, "pubsub").Child(nsPubSubOwner, "configure").Child(nsPEPForm, "x")
	if f := formFields(x); formValue(f["pubsub#access_model"]) != "open" || formValue(f["pubsub#max_items"]) != "1" || formValue(f["pubsub#persist_items"]) != "1" {
		t.Errorf("configuration %v", f)
	}

	// Bookmarks 2 (XEP-0402 §3): whitelist, max, never.
	bm := optField("pubsub#access_model", "whitelist") + optField("pubsub#max_items", "max") +
		optField("pubsub#persist_items", "true") + optField("pubsub#send_last_published_item", "never")
	for i := range 3 {
		requireResult(t, "bookmark", alice.iq("set", "", publishXML(nsBookmarks2, fmt.Sprintf("room%d@conference.%s", i, testDomain), `<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>`, bm)))
	}
	r := requireResult(t, "bookmarks", alice.iq("get", "", `<pubsub xmlns='`+nsPubSub+`'><items node='`+nsBookmarks2+`'/></pubsub>`))
	if len(eventItemIDs(r)) != 3 {
		t.Errorf("bookmarks kept: %v", eventItemIDs(r))
	}
	r = requireResult(t, "newest 2", alice.iq("get", "", `<pubsub xmlns='`+nsPubSub+`'><items node='`+nsBookmarks2+`' max_items='2'/></pubsub>`))
	if got := eventItemIDs(r); len(got) != 2 || got[1] != "item:room2@conference."+testDomain {
		t.Errorf("newest 2: %v", got)
	}
}

// TestPEPRetractConfigureDelete: XEP-0060 §7.2, §8.2, §8.4 with the
// notifications a subscriber gets.
func TestPEPRetractConfigureDelete(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "r")
	bob, _ := ts.pepOnline(t, "bob", "r", "urn:test:n")
	opts := optField("pubsub#max_items", "3")
	for _, id := range []string{"a", "b", "c"} {
		requireResult(t, "publish "+id, alice.iq("set", "", publishXML("urn:test:n", id, `<x xmlns='urn:test'/>`, opts)))
		bob.waitFor("event "+id, isEvent("alice@"+testDomain, "urn:test:n"))
	}
	requireResult(t, "retract b", alice.iq("set", "", `<pubsub xmlns='`+nsPubSub+`'><retract node='urn:test:n' notify='true'><item id='b'/></retract></pubsub>`))
	ev := bob.waitFor("retract event", isEvent("alice@"+testDomain, "urn:test:n"))
	if got := eventItemIDs(ev); !slices.Equal(got, []string{"retract:b"}) {
		t.Errorf("retract event %v", got)
	}
	requireResult(t, "retract a silently", alice.iq("set", "", `<pubsub xmlns='`+nsPubSub+`'><retract node='urn:test:n'><item id='a'/></retract></pubsub>`))
	bob.quiet("retract without notify", isEvent("alice@"+testDomain, "urn:test:n"))
	requireError(t, "retract missing", alice.iq("set", "", `<pubsub xmlns='`+nsPubSub+`'><retract node='urn:test:n'><item id='zz'/></retract></pubsub>`), "item-not-found")

	requireResult(t, "publish d", alice.iq("set", "", publishXML("urn:test:n", "d", `<x xmlns='urn:test'/>`, "")))
	bob.waitFor("event d", isEvent("alice@"+testDomain, "urn:test:n"))
	requireResult(t, "configure", alice.iq("set", "", `<pubsub xmlns='`+nsPubSubOwner+`'><configure node='urn:test:n'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE' type='hidden'><value>`+nsPubSubConfig+`</value></field>`+optField("pubsub#max_items", "1")+optField("pubsub#access_model", "whitelist")+`</x></configure></pubsub>`))
	r := requireResult(t, "items", alice.iq("get", "", `<pubsub xmlns='`+nsPubSub+`'><items node='urn:test:n'/></pubsub>`))
	if got := eventItemIDs(r); !slices.Equal(got, []string{"item:d"}) {
		t.Errorf("after max_items 1: %v", got)
	}
	requireResult(t, "publish e", alice.iq("set", "", publishXML("urn:test:n", "e", `<x xmlns='urn:test'/>`, "")))
	bob.quiet("event of a whitelist node", isEvent("alice@"+testDomain, "urn:test:n"))

	requireResult(t, "configure back", alice.iq("set", "", `<pubsub xmlns='`+nsPubSubOwner+`'><configure node='urn:test:n'><x xmlns='jabber:x:data' type='submit'>`+optField("pubsub#access_model", "presence")+`</x></configure></pubsub>`))
	requireResult(t, "delete", alice.iq("set", "", `<pubsub xmlns='`+nsPubSubOwner+`'><delete node='urn:test:n'/></pubsub>`))
	ev = bob.waitFor("delete event", isEvent("alice@"+testDomain, "urn:test:n"))
	if ev.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "delete") == nil {
		t.Errorf("not a delete event: %s", ev)
	}
	requireError(t, "items of deleted", alice.iq("get", "", `<pubsub xmlns='`+nsPubSubOwner+`'><configure node='urn:test:n'/></pubsub>`), "item-not-found")
	requireError(t, "delete again", alice.iq("set", "", `<pubsub xmlns='`+nsPubSubOwner+`'><delete node='urn:test:n'/></pubsub>`), "item-not-found")
	requireError(t, "configure missing", alice.iq("set", "", `<pubsub xmlns='`+nsPubSubOwner+`'><configure node='nope'><x xmlns='jabber:x:data' type='submit'/></configure></pubsub>`), "item-not-found")
}

func TestPEPRequestErrors(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxPEPNodes = 2 })
	alice := ts.login(t, "alice", "r")
	bob := ts.login(t, "bob", "r")
	ps := func(inner string) string { return `<pubsub xmlns='` + nsPubSub + `'>` + inner + `</pubsub>` }
	tests := []struct {
		name      string
		c         *client
		typ, to   string
		payload   string
		cond, app string
	}{
		{"no node", alice, "set", "", ps(`<publish><item><x xmlns='urn:t'/></item></publish>`), "bad-request", "nodeid-required"},
		{"no item", alice, "set", "", ps(`<publish node='n'/>`), "bad-request", "item-required"},
		{"two items", alice, "set", "", ps(`<publish node='n'><item><x xmlns='urn:t'/></item><item><x xmlns='urn:t'/></item></publish>`), "bad-request", "item-required"},
		{"no payload", alice, "set", "", ps(`<publish node='n'><item/></publish>`), "bad-request", "payload-required"},
		{"two payloads", alice, "set", "", ps(`<publish node='n'><item><x xmlns='urn:t'/><y xmlns='urn:t'/></item></publish>`), "bad-request", "invalid-payload"},
		{"contact publishes", bob, "set", "alice@" + testDomain, ps(`<publish node='n'><item><x xmlns='urn:t'/></item></publish>`), "forbidden", ""},
		{"contact configures", bob, "get", "alice@" + testDomain, `<pubsub xmlns='` + nsPubSubOwner + `'><configure node='n'/></pubsub>`, "forbidden", ""},
		{"subscribe", alice, "set", "", ps(`<subscribe node='n' jid='alice@example.com'/>`), "feature-not-implemented", "unsupported"},
		{"items of no node", bob, "get", "alice@" + testDomain, ps(`<items node='nothing'/>`), "item-not-found", ""},
		{"bad max_items", alice, "get", "", ps(`<items node='n' max_items='x'/>`), "bad-request", ""},
		{"instant node", alice, "set", "", ps(`<create/>`), "not-acceptable", "nodeid-required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requirePubSubError(t, tt.name, tt.c.iq(tt.typ, tt.to, tt.payload), tt.cond, tt.app)
		})
	}
	requireResult(t, "create 1", alice.iq("set", "", ps(`<create node='one'/>`)))
	requireError(t, "create 1 again", alice.iq("set", "", ps(`<create node='one'/>`)), "conflict")
	requireResult(t, "node 2", alice.iq("set", "", publishXML("two", "", `<x xmlns='urn:t'/>`, "")))
	requireError(t, "node 3 over the limit", alice.iq("set", "", publishXML("three", "", `<x xmlns='urn:t'/>`, "")), "not-allowed")
	requireResult(t, "existing node at the limit", alice.iq("set", "", publishXML("one", "", `<x xmlns='urn:t'/>`, "")))
}

// TestCapsResolution: a verified ver is cached and not asked again; a
// wrong hash is used for the session that sent it but not cached
// (XEP-0115 §5.4).
func TestCapsResolution(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "r")
	b1 := ts.login(t, "bob", "one")
	b1.capsPresence("shared-client", []string{nodeTune}, true)
	b2 := ts.login(t, "bob", "two")
	b2.capsPresence("shared-client", []string{nodeTune}, false) // cached: no query
	b1.drain()

	// A client whose disco#info does not match its ver.
	liar := ts.login(t, "bob", "liar")
	ver, _ := capsInfo("liar", []string{nodeTune})
	liar.send(`<presence><c xmlns='` + nsCaps + `' hash='sha-1' node='urn:test:client' ver='` + ver + `'/></presence>`)
	q := liar.waitFor("caps query", is("iq", "type", "get", "from", testDomain).and(hasChild(nsDiscoInfo, "query")))
	_, otherInfo := capsInfo("somebody else", []string{nodeTune})
	liar.send(`<iq type='result' id='` + q.Attr("id") + `' to='` + testDomain + `'><query xmlns='` + nsDiscoInfo + `'>` + otherInfo + `</query></iq>`)
	liar.drain()
	liar2 := ts.login(t, "bob", "liar2")
	liar2.send(`<presence><c xmlns='` + nsCaps + `' hash='sha-1' node='urn:test:client' ver='` + ver + `'/></presence>`)
	liar2.waitFor("caps query again (not cached)", is("iq", "type", "get", "from", testDomain).and(hasChild(nsDiscoInfo, "query")))

	requireResult(t, "publish", alice.iq("set", "", publishXML(nodeTune, "t", tunePayload, "")))
	b1.waitFor("event", isEvent("alice@"+testDomain, nodeTune))
	b2.waitFor("event via cached caps", isEvent("alice@"+testDomain, nodeTune))
	liar.waitFor("event for the unverified session itself", isEvent("alice@"+testDomain, nodeTune))

	// Presence without caps turns notifications off.
	b2.send(`<presence/>`)
	b2.waitFor("own presence", is("presence", "from", b2.jid, "type", ""))
	requireResult(t, "publish again", alice.iq("set", "", publishXML(nodeTune, "t2", tunePayload, "")))
	b1.waitFor("event", isEvent("alice@"+testDomain, nodeTune))
	b2.quiet("event after caps removed", isEvent("alice@"+testDomain, nodeTune))
}

// TestVerifyCapsVer: the complex example of XEP-0115 §5.3, with an
// extended form (XEP-0128), and the §5.4 refusals.
func TestVerifyCapsVer(t *testing.T) {
	const example = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version'><value>ipv4</value><value>ipv6</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>`
	tests := []struct {
		name, xml, want string
	}{
		{"XEP-0115 5.3", example, "q07IKJEyjvHSyhy//CH0CxmKi8w="},
		{"duplicate feature", strings.Replace(example, "disco#items", "disco#info", 1), ""},
		{"two FORM_TYPEs", strings.Replace(example, "<field var='os'>", "<field var='FORM_TYPE'><value>x</value></field><field var='os'>", 1), ""},
	}
	for _, tt := range tests {
		el, err := wire.ParseElement([]byte(tt.xml))
		if err != nil {
			t.Fatal(err)
		}
		if got := verifyCapsVer(el); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestSetRoomBookmark: the directory's room bookmarks reach XEP-0402
// (with a notification to the user's sessions) and XEP-0048 storage,
// keeping what the user added.
func TestSetRoomBookmark(t *testing.T) {
	ts := newTestServer(t)
	alice, _ := ts.pepOnline(t, "alice", "r", nsBookmarks2)
	bob, _ := ts.pepOnline(t, "bob", "r", nsBookmarks2)
	room := "team@conference." + testDomain
	// The user's own XEP-0048 nick for the room survives the server's edit.
	requireResult(t, "private set", alice.iq("set", "", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>`+
		`<conference jid='`+room+`' name='old'><nick>al</nick></conference><conference jid='other@conference.example.com'/></storage></query>`))

	if err := ts.SetRoomBookmark("alice", room, "Team", true, true); err != nil {
		t.Fatal(err)
	}
	ev := alice.waitFor("bookmark event", isEvent("alice@"+testDomain, nsBookmarks2))
	it := ev.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "item")
	conf := it.Child(nsBookmarks2, "conference")
	if it.Attr("id") != room || conf == nil || conf.Attr("name") != "Team" || conf.Attr("autojoin") != "true" {
		t.Fatalf("bookmark event %s", ev)
	}
	bob.quiet("someone else's bookmarks", isEvent("alice@"+testDomain, nsBookmarks2))
	requirePubSubError(t, "bob reads bookmarks", bob.iq("get", "alice@"+testDomain, `<pubsub xmlns='`+nsPubSub+`'><items node='`+nsBookmarks2+`'/></pubsub>`), "not-allowed", "closed-node")

	priv := func() map[string]*wire.Element {
		r := requireResult(t, "private get", alice.iq("get", "", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`))
		out := map[string]*wire.Element{}
		for _, n := range r.Child(nsPrivate, "query").Child(nsBookmarks, "storage").Nodes {
			if n.El != nil {
				out[n.El.Attr("jid")] = n.El
			}
		}
		return out
	}
	p := priv()
	if c := p[room]; c == nil || c.Attr("name") != "Team" || c.Attr("autojoin") != "true" || c.Child(nsBookmarks, "nick") == nil || c.Child(nsBookmarks, "nick").Text() != "al" {
		t.Errorf("private bookmark %v", p[room])
	}
	if p["other@conference.example.com"] == nil || len(p) != 2 {
		t.Errorf("private bookmarks %v", p)
	}

	// A second set keeps the user's XEP-0402 additions.
	requireResult(t, "user adds a nick", alice.iq("set", "", publishXML(nsBookmarks2, room, `<conference xmlns='urn:xmpp:bookmarks:1' name='Team' autojoin='true'><nick>al</nick></conference>`, "")))
	alice.waitFor("own event", isEvent("alice@"+testDomain, nsBookmarks2))
	if err := ts.SetRoomBookmark("alice", room, "Team renamed", false, true); err != nil {
		t.Fatal(err)
	}
	ev = alice.waitFor("rename event", isEvent("alice@"+testDomain, nsBookmarks2))
	conf = ev.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "item").Child(nsBookmarks2, "conference")
	if conf.Attr("name") != "Team renamed" || conf.Attr("autojoin") != "false" || conf.Child(nsBookmarks2, "nick") == nil {
		t.Errorf("renamed bookmark %s", ev)
	}

	if err := ts.SetRoomBookmark("alice", room, "", false, false); err != nil {
		t.Fatal(err)
	}
	ev = alice.waitFor("retract event", isEvent("alice@"+testDomain, nsBookmarks2))
	if got := eventItemIDs(ev); !slices.Equal(got, []string{"retract:" + room}) {
		t.Errorf("retract event %v", got)
	}
	if p := priv(); p[room] != nil || len(p) != 1 {
		t.Errorf("private bookmarks after removal %v", p)
	}
	r := requireResult(t, "items", alice.iq("get", "", `<pubsub xmlns='`+nsPubSub+`'><items node='`+nsBookmarks2+`'/></pubsub>`))
	if got := eventItemIDs(r); len(got) != 0 {
		t.Errorf("bookmarks left: %v", got)
	}
	// Removing what is not there is fine.
	if err := ts.SetRoomBookmark("dave", room, "", false, false); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPEPPublish measures one publish of a tune, acknowledged to the
// owner and notified to one subscriber, over real sockets: the store
// transaction (one fsync) dominates.
func BenchmarkPEPPublish(b *testing.B) {
	ts := newTestServer(b)
	alice := ts.login(b, "alice", "r")
	bob, _ := ts.pepOnline(b, "bob", "r", nodeTune)
	b.ReportAllocs()
	for b.Loop() {
		alice.send(`<iq type='set' id='p'>` + publishXML(nodeTune, "t", tunePayload, "") + `</iq>`)
		alice.waitFor("publish result", is("iq", "id", "p"))
		bob.waitFor("event", isEvent("alice@"+testDomain, nodeTune))
	}
}
