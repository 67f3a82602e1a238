package xmppd

import (
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

func chatTo(to, body string) string {
	return `<message to='` + to + `' type='chat' id='m-` + body + `'><body>` + body + `</body></message>`
}

func offlineCount(t *testing.T, ts *testServer, user string) int {
	t.Helper()
	n, err := ts.Store.OfflineCount(user)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMessageRouting covers RFC 6121 §8.5 for messages between local users.
func TestMessageRouting(t *testing.T) {
	t.Run("full JID", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		alice.send(chatTo("bob@example.com/b", "hi"))
		el := bob.waitFor("message", is("message", "from", "alice@example.com/a", "to", "bob@example.com/b", "type", "chat", "id", "m-hi"))
		if bodyText(el) != "hi" {
			t.Fatalf("body lost: %s", el)
		}
	})
	t.Run("full JID of an unavailable session", func(t *testing.T) {
		// §8.5.3.1: a full JID match is delivered even without presence.
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.login(t, "bob", "b")
		alice.send(chatTo("bob@example.com/b", "direct"))
		bob.waitFor("message", hasBody("direct"))
	})
	t.Run("bare JID highest priority", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		hi := ts.online(t, "bob", "hi", 5)
		lo := ts.online(t, "bob", "lo", 1)
		alice.send(chatTo("bob@example.com", "prio"))
		alice.drain()
		hi.waitFor("message", is("message", "to", "bob@example.com").and(hasBody("prio")))
		lo.quiet("message for the higher priority", is("message"))
		// Equal highest priorities: both get it (§8.5.2.1.1 allows either;
		// we deliver to all).
		lo.presence(5)
		hi.drain()
		alice.send(chatTo("bob@example.com", "both"))
		alice.drain()
		hi.waitFor("message", hasBody("both"))
		lo.waitFor("message", hasBody("both"))
	})
	t.Run("bare JID with an unavailable session", func(t *testing.T) {
		// A session without initial presence does not receive bare-JID
		// messages; they go offline.
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.login(t, "bob", "b")
		alice.send(chatTo("bob@example.com", "stored"))
		alice.drain()
		bob.quiet("message", is("message"))
		if n := offlineCount(t, ts, "bob"); n != 1 {
			t.Fatalf("offline count %d, want 1", n)
		}
	})
	t.Run("negative priority only", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "neg", -1)
		alice.send(chatTo("bob@example.com", "later"))
		alice.drain()
		bob.quiet("message to a negative-priority resource", is("message"))
		if n := offlineCount(t, ts, "bob"); n != 1 {
			t.Fatalf("offline count %d, want 1", n)
		}
		// Full JID still works for the negative resource.
		alice.send(chatTo("bob@example.com/neg", "full"))
		bob.waitFor("message", hasBody("full"))
		// Later a non-negative resource gets the stored message.
		bob2 := ts.online(t, "bob", "pos", 0)
		bob2.waitFor("offline message", hasBody("later").and(hasChild(nsDelay, "delay")))
	})
	t.Run("nonexistent user", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		for _, to := range []string{"zed@example.com", "zed@example.com/r"} {
			alice.send(chatTo(to, "void"))
			el := alice.waitFor("error", isStanzaError("message", "service-unavailable"))
			if el.Attr("from") != "zed@example.com" && el.Attr("from") != to || el.Attr("to") != "alice@example.com/a" || el.Attr("id") != "m-void" {
				t.Errorf("error addressing: %s", el)
			}
		}
		if n := offlineCount(t, ts, "zed"); n != 0 {
			t.Errorf("stored %d messages for a nonexistent user", n)
		}
	})
	t.Run("gone resource", func(t *testing.T) {
		// §8.5.3.2.1: treated as if sent to the bare JID.
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		alice.send(chatTo("bob@example.com/gone", "redirected"))
		bob.waitFor("message", is("message", "from", "alice@example.com/a").and(hasBody("redirected")))
		alice.quiet("error", is("message", "type", "error"))
	})
	t.Run("normalized JID", func(t *testing.T) {
		// RFC 7622: localpart and domain are case-folded; the slow path
		// still finds the session.
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		alice.send(chatTo("BOB@Example.COM/b", "loud"))
		bob.waitFor("message", is("message", "from", "alice@example.com/a").and(hasBody("loud")))
		alice.send(chatTo("Bob@EXAMPLE.com", "bare"))
		bob.waitFor("message", hasBody("bare"))
	})
	t.Run("to the server", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		alice.send(chatTo(testDomain, "hello server"))
		alice.waitFor("error", isStanzaError("message", "service-unavailable"))
		// Without a body nothing expects an answer.
		alice.send(`<message to='example.com'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		alice.silent()
	})
	t.Run("groupchat to a user", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		ts.online(t, "bob", "b", 0)
		alice.send(`<message to='bob@example.com' type='groupchat' id='gc'><body>x</body></message>`)
		alice.waitFor("error", isStanzaError("message", "service-unavailable"))
	})
	t.Run("jid-malformed", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		alice.send(chatTo("bad@@example.com", "x"))
		alice.waitFor("error", isStanzaError("message", "jid-malformed"))
	})
	t.Run("remote domain", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		alice.send(chatTo("someone@elsewhere.org", "far"))
		el := alice.waitFor("error", isStanzaError("message", "remote-server-not-found"))
		if el.Attr("from") != "someone@elsewhere.org" {
			t.Errorf("error from %q", el.Attr("from"))
		}
	})
	t.Run("errors are never answered", func(t *testing.T) {
		// RFC 6120 §8.3.1: no error about an error.
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		for _, to := range []string{"zed@example.com", "someone@elsewhere.org", "bob@example.com/gone", "dave@example.com"} {
			alice.send(`<message to='` + to + `' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`)
			alice.send(`<iq to='` + to + `' type='error' id='e2'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
			alice.send(`<presence to='` + to + `' type='error' id='e3'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`)
		}
		alice.silent()
		if n := offlineCount(t, ts, "dave"); n != 0 {
			t.Errorf("error stored offline: %d", n)
		}
	})
	t.Run("no to means own bare JID", func(t *testing.T) {
		ts := newTestServer(t)
		a1 := ts.online(t, "alice", "a1", 1)
		a1.send(`<message type='chat'><body>note to self</body></message>`)
		a1.waitFor("own message", is("message", "from", "alice@example.com/a1").and(hasBody("note to self")))
	})
	t.Run("faithful forwarding", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		alice.send(`<message to='bob@example.com/b' type='chat' xml:lang='de'><body>x &amp; &lt;y&gt;</body><foo:bar xmlns:foo='urn:example:foo' foo:attr='v'><foo:baz>t</foo:baz></foo:bar><thing xmlns='urn:example:thing' a="it's"/></message>`)
		el := bob.waitFor("message", is("message", "from", "alice@example.com/a"))
		if el.Attr("xml:lang") != "de" || bodyText(el) != "x & <y>" {
			t.Errorf("lang or body changed: %s", el)
		}
		fb := el.Child("urn:example:foo", "bar")
		if fb == nil || fb.Prefix != "foo" || fb.Attr("foo:attr") != "v" || fb.Attr("xmlns:foo") != "urn:example:foo" {
			t.Fatalf("prefixed element changed: %s", el)
		}
		if bz := fb.Child("urn:example:foo", "baz"); bz == nil || bz.Prefix != "foo" || bz.Text() != "t" {
			t.Fatalf("prefixed child changed: %s", el)
		}
		if th := el.Child("urn:example:thing", "thing"); th == nil || th.Prefix != "" || th.Attr("a") != "it's" {
			t.Fatalf("default-namespace child changed: %s", el)
		}
	})
	t.Run("from spoofing", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		alice.send(`<message from='bob@example.com/b' to='bob@example.com/b' type='chat'><body>it is me, bob</body></message>`)
		alice.expectStreamError("invalid-from")
		bob.quiet("spoofed message", is("message"))
	})
	t.Run("own from is accepted", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		alice.send(`<message from='alice@example.com' to='bob@example.com/b'><body>bare</body></message>`)
		alice.send(`<message from='alice@example.com/a' to='bob@example.com/b'><body>full</body></message>`)
		bob.waitFor("bare-from message", is("message", "from", "alice@example.com/a").and(hasBody("bare")))
		bob.waitFor("full-from message", is("message", "from", "alice@example.com/a").and(hasBody("full")))
		alice.send(`<message from='alice@example.com/other' to='bob@example.com/b'><body>other resource</body></message>`)
		alice.expectStreamError("invalid-from")
	})
}

// TestOffline covers XEP-0160 storage and delivery.
func TestOffline(t *testing.T) {
	t.Run("stored and delivered once", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		alice.send(chatTo("dave@example.com", "one"))
		alice.send(chatTo("dave@example.com/whatever", "two"))
		alice.silent()
		if n := offlineCount(t, ts, "dave"); n != 2 {
			t.Fatalf("offline count %d, want 2", n)
		}
		dave := ts.login(t, "dave", "d")
		// Nothing before initial presence (XEP-0160 §4).
		dave.quiet("offline message before presence", is("message"))
		dave.presence(0)
		for _, body := range []string{"one", "two"} {
			el := dave.waitFor("offline message "+body, is("message", "from", "alice@example.com/a", "type", "chat").and(hasBody(body)))
			d := el.Child(nsDelay, "delay")
			if d == nil || d.Attr("from") != testDomain || d.Attr("stamp") == "" {
				t.Fatalf("no XEP-0203 delay: %s", el)
			}
		}
		dave.drain()
		if n := offlineCount(t, ts, "dave"); n != 0 {
			t.Fatalf("offline count %d after delivery", n)
		}
		dave.nc.Close()
		dave = ts.online(t, "dave", "d", 0)
		dave.quiet("redelivered offline message", is("message"))
	})
	t.Run("negative initial priority does not take offline messages", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		alice.send(chatTo("dave@example.com", "kept"))
		alice.drain()
		dave := ts.online(t, "dave", "neg", -5)
		dave.quiet("offline message", is("message"))
		if n := offlineCount(t, ts, "dave"); n != 1 {
			t.Fatalf("offline count %d", n)
		}
	})
	t.Run("chat states and receipts are not stored", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		alice.send(`<message to='dave@example.com' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		alice.send(`<message to='dave@example.com' type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>`)
		alice.send(`<message to='dave@example.com' type='chat'><body>hint</body><no-store xmlns='urn:xmpp:hints'/></message>`)
		alice.send(`<message to='dave@example.com' type='headline'><body>news</body></message>`)
		alice.silent()
		if n := offlineCount(t, ts, "dave"); n != 0 {
			t.Fatalf("stored %d messages that are not worth storing", n)
		}
		alice.send(`<message to='dave@example.com' type='chat'><store xmlns='urn:xmpp:hints'/><received xmlns='urn:xmpp:receipts' id='x'/></message>`)
		alice.silent()
		if n := offlineCount(t, ts, "dave"); n != 1 {
			t.Fatalf("store hint ignored: %d stored", n)
		}
	})
	t.Run("queue bound", func(t *testing.T) {
		ts := newTestServer(t, func(s *Server) { s.MaxOfflineMessages = 3 })
		alice := ts.online(t, "alice", "a", 0)
		for _, b := range []string{"1", "2", "3"} {
			alice.send(chatTo("dave@example.com", b))
		}
		alice.silent()
		alice.send(chatTo("dave@example.com", "4"))
		el := alice.waitFor("error", isStanzaError("message", "service-unavailable"))
		if el.Attr("id") != "m-4" {
			t.Errorf("error for %q, want m-4", el.Attr("id"))
		}
		if n := offlineCount(t, ts, "dave"); n != 3 {
			t.Fatalf("offline count %d, want 3", n)
		}
	})
}

// TestIQRouting covers RFC 6120 §8.2.3 and RFC 6121 §8.5 for IQs.
func TestIQRouting(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)

	t.Run("forwarded to a full JID and answered", func(t *testing.T) {
		alice.send(`<iq type='get' id='v1' to='bob@example.com/b'><query xmlns='jabber:iq:version'/></iq>`)
		req := bob.waitFor("forwarded iq", is("iq", "id", "v1", "type", "get", "from", "alice@example.com/a"))
		if req.Child("jabber:iq:version", "query") == nil {
			t.Fatalf("payload lost: %s", req)
		}
		bob.send(`<iq type='result' id='v1' to='alice@example.com/a'><query xmlns='jabber:iq:version'><name>bobclient</name></query></iq>`)
		res := alice.waitFor("result", is("iq", "id", "v1", "from", "bob@example.com/b"))
		if res.Attr("type") != "result" {
			t.Fatalf("got %s", res)
		}
		alice.quiet("spurious error", is("iq", "type", "error"))
		bob.quiet("spurious error", is("iq", "type", "error"))
	})
	t.Run("nonexistent resource", func(t *testing.T) {
		el := alice.iq("get", "bob@example.com/nope", `<query xmlns='jabber:iq:version'/>`)
		if !isStanzaError("iq", "service-unavailable")(el) || el.Attr("from") != "bob@example.com/nope" {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("result to a gone resource is dropped", func(t *testing.T) {
		bob.send(`<iq type='result' id='old' to='alice@example.com/gone'/>`)
		bob.silent()
	})
	t.Run("two payloads", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:version'/>`)
		if !isStanzaError("iq", "bad-request")(el) {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("no payload", func(t *testing.T) {
		el := alice.iq("get", "bob@example.com/b", ``)
		if !isStanzaError("iq", "bad-request")(el) {
			t.Fatalf("got %s", el)
		}
		bob.quiet("empty iq", is("iq", "from", "alice@example.com/a"))
	})
	t.Run("no id", func(t *testing.T) {
		alice.send(`<iq type='get' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`)
		el := alice.waitFor("error", is("iq", "type", "error"))
		if stanzaErrorCondition(el) != "bad-request" {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("bad type", func(t *testing.T) {
		el := alice.iq("fetch", testDomain, `<ping xmlns='urn:xmpp:ping'/>`)
		if !isStanzaError("iq", "bad-request")(el) {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("unknown namespace to the server", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<query xmlns='urn:example:unknown'/>`)
		if !isStanzaError("iq", "service-unavailable")(el) || el.Attr("from") != testDomain {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("remote domain", func(t *testing.T) {
		el := alice.iq("get", "elsewhere.org", `<ping xmlns='urn:xmpp:ping'/>`)
		if !isStanzaError("iq", "remote-server-not-found")(el) {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("bare JID of a nonexistent user", func(t *testing.T) {
		el := alice.iq("get", "zed@example.com", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if !isStanzaError("iq", "service-unavailable")(el) {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("bare JID of a contact, unknown namespace", func(t *testing.T) {
		// §8.5.2.1.3: the server answers for the account; it is not
		// forwarded to a resource.
		el := alice.iq("get", "bob@example.com", `<query xmlns='jabber:iq:version'/>`)
		if !isStanzaError("iq", "service-unavailable")(el) || el.Attr("from") != "bob@example.com" {
			t.Fatalf("got %s", el)
		}
		bob.quiet("iq to the bare JID", is("iq", "from", "alice@example.com/a"))
	})
	t.Run("ping own account", func(t *testing.T) {
		el := alice.iq("get", "", `<ping xmlns='urn:xmpp:ping'/>`)
		if el.Attr("type") != "result" {
			t.Fatalf("got %s", el)
		}
	})
}

// TestComponentRouting: stanzas for a registered subdomain reach it with
// from stamped.
func TestComponentRouting(t *testing.T) {
	comp := &recordingComponent{got: make(chan *wire.Element, 10)}
	ts := newTestServer(t, func(s *Server) { s.AddComponent("conference.example.com", "Chat rooms", comp) })
	alice := ts.online(t, "alice", "a", 0)
	alice.send(`<message to='room@conference.example.com' type='groupchat'><body>hello room</body></message>`)
	alice.send(`<presence to='room@conference.example.com/Alice'/>`)
	alice.send(`<iq type='get' id='ci' to='conference.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	alice.silent()
	for _, want := range []string{"message", "presence", "iq"} {
		el := <-comp.got
		if el.Local != want || el.Attr("from") != "alice@example.com/a" {
			t.Errorf("component got %s, want %s from alice", el, want)
		}
	}
	el := alice.iq("get", testDomain, `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
	items := el.Child(nsDiscoItems, "query")
	if items == nil || items.Child(nsDiscoItems, "item") == nil || items.Child(nsDiscoItems, "item").Attr("jid") != "conference.example.com" {
		t.Errorf("component not in disco#items: %s", el)
	}
}

type recordingComponent struct{ got chan *wire.Element }

func (r *recordingComponent) RouteStanza(el *wire.Element) { r.got <- el.Copy() }
