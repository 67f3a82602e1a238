package xmppd

import (
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// carbonOf returns the forwarded message of a carbon copy in direction
// ("received" or "sent") addressed to the session jid, checking the wrapper
// (XEP-0280 §7: from the bare JID, to the resource).
func carbonOf(tb testing.TB, el *wire.Element, direction, bare, to string) *wire.Element {
	tb.Helper()
	cp := el.Child(nsCarbons, direction)
	if el.Local != "message" || cp == nil {
		tb.Fatalf("want a %s carbon, got %s", direction, el)
	}
	if el.Attr("from") != bare || el.Attr("to") != to {
		tb.Fatalf("carbon wrapper from %q to %q, want from %q to %q: %s", el.Attr("from"), el.Attr("to"), bare, to, el)
	}
	fw := cp.Child(nsForward, "forwarded")
	if fw == nil || fw.Child(nsClient, "message") == nil {
		tb.Fatalf("carbon without <forwarded><message xmlns='jabber:client'/>: %s", el)
	}
	return fw.Child(nsClient, "message")
}

func isCarbon(el *wire.Element) bool {
	return el.Child(nsCarbons, "received") != nil || el.Child(nsCarbons, "sent") != nil
}

func (c *client) enableCarbons(enable bool) {
	c.tb.Helper()
	op := "enable"
	if !enable {
		op = "disable"
	}
	if r := c.iq("set", "", `<`+op+` xmlns='urn:xmpp:carbons:2'/>`); r.Attr("type") != "result" {
		c.tb.Fatalf("%s carbons: %s", op, r)
	}
}

// TestCarbons covers XEP-0280: received copies for messages to a full JID
// and to the bare JID, sent copies, the sender's own setting not mattering,
// and the messages that are never copied.
func TestCarbons(t *testing.T) {
	ts := newTestServer(t)
	a := ts.online(t, "alice", "a", 5)
	b := ts.online(t, "alice", "b", 1)
	c := ts.online(t, "alice", "c", 1) // never enables carbons
	bob := ts.online(t, "bob", "b", 0)
	a.enableCarbons(true)
	b.enableCarbons(true)
	b.enableCarbons(true) // §10.1: a repeated enable is no error
	const alice = "alice@example.com"
	for _, cl := range []*client{a, b, c, bob} {
		cl.drain()
	}

	if r := a.iq("get", testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`); !hasFeature(r, nsCarbons) {
		t.Fatalf("disco#info lacks %s: %s", nsCarbons, r)
	}

	t.Run("received, to a full JID", func(t *testing.T) {
		bob.send(`<message type='chat' to='` + a.jid + `' id='r1'><body>to a</body></message>`)
		a.expect("the message", hasBody("to a"))
		m := carbonOf(t, b.stanza(), "received", alice, b.jid)
		if m.Attr("from") != bob.jid || m.Attr("to") != a.jid || bodyText(m) != "to a" || m.Attr("id") != "r1" {
			t.Fatalf("forwarded %s", m)
		}
		bob.drain()
		c.quiet("a carbon without enabling", isCarbon)
		b.silent()
	})

	t.Run("received, to the bare JID", func(t *testing.T) {
		bob.send(`<message to='` + alice + `'><body>to alice</body></message>`) // type normal with a body
		a.expect("the message", hasBody("to alice"))
		m := carbonOf(t, b.stanza(), "received", alice, b.jid)
		if bodyText(m) != "to alice" || m.Attr("to") != alice {
			t.Fatalf("forwarded %s", m)
		}
		bob.drain()
		c.quiet("a carbon without enabling", isCarbon)
		a.silent()
	})

	t.Run("sent", func(t *testing.T) {
		a.send(`<message type='chat' to='` + bob.jid + `'><body>from a</body></message>`)
		bob.expect("the message", hasBody("from a"))
		m := carbonOf(t, b.stanza(), "sent", alice, b.jid)
		if m.Attr("from") != a.jid || m.Attr("to") != bob.jid || bodyText(m) != "from a" {
			t.Fatalf("forwarded %s", m)
		}
		a.drain()
		a.quiet("a copy of its own message", isCarbon)
		c.quiet("a carbon without enabling", isCarbon)

		// §8: irrespective of whether the sending client enabled carbons.
		c.send(`<message type='chat' to='` + bob.jid + `'><body>from c</body></message>`)
		bob.expect("the message", hasBody("from c"))
		carbonOf(t, a.stanza(), "sent", alice, a.jid)
		carbonOf(t, b.stanza(), "sent", alice, b.jid)
	})

	t.Run("never copied", func(t *testing.T) {
		for _, m := range []string{
			// §9: private, with the no-copy hint
			`<message type='chat' to='` + a.jid + `'><body>p</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>`,
			`<message type='error' to='` + a.jid + `'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
			`<message type='groupchat' to='` + a.jid + `'><body>g</body></message>`,
			// a MUC private message: the room copies it to every joined client
			`<message type='chat' to='` + a.jid + `'><body>pm</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`,
			`<message type='headline' to='` + a.jid + `'><body>h</body></message>`,
			`<message to='` + a.jid + `'><x xmlns='urn:example'/></message>`, // normal without body or IM payload
		} {
			bob.send(m)
		}
		a.send(`<message type='chat' to='` + bob.jid + `'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>`)
		bob.drain()
		a.drain()
		b.quiet("a carbon", isCarbon)
		c.quiet("a carbon", isCarbon)
	})

	t.Run("IM payloads without body", func(t *testing.T) {
		bob.send(`<message to='` + a.jid + `'><received xmlns='urn:xmpp:receipts' id='r1'/></message>`)
		m := carbonOf(t, b.waitFor("carbon", isCarbon), "received", alice, b.jid)
		if m.Child(nsReceipts, "received") == nil {
			t.Fatalf("forwarded %s", m)
		}
		a.waitFor("the receipt", hasChild(nsReceipts, "received"))
	})

	t.Run("disable", func(t *testing.T) {
		b.enableCarbons(false)
		bob.send(`<message type='chat' to='` + a.jid + `'><body>after disable</body></message>`)
		a.expect("the message", hasBody("after disable"))
		bob.drain()
		b.quiet("a carbon after disable", isCarbon)
	})

	t.Run("messages to oneself", func(t *testing.T) {
		b.enableCarbons(true)
		a.send(`<message type='chat' to='` + c.jid + `'><body>note to self</body></message>`)
		c.expect("the message", hasBody("note to self"))
		a.drain()
		b.quiet("a carbon", isCarbon)
		a.quiet("a carbon", isCarbon)
	})
}

func hasFeature(iq *wire.Element, feature string) bool {
	q := iq.Child(nsDiscoInfo, "query")
	if q == nil {
		return false
	}
	for _, n := range q.Nodes {
		if n.El != nil && n.El.Local == "feature" && n.El.Attr("var") == feature {
			return true
		}
	}
	return false
}

func TestCarbonEligible(t *testing.T) {
	for _, tc := range []struct {
		stanza string
		want   bool
	}{
		{`<message type='chat'/>`, true},
		{`<message type='chat'><body>x</body></message>`, true},
		{`<message><body>x</body></message>`, true},
		{`<message type='normal'><body>x</body></message>`, true},
		{`<message type='normal'/>`, false},
		{`<message type='headline'><body>x</body></message>`, false},
		{`<message type='groupchat'><body>x</body></message>`, false},
		{`<message type='error'><body>x</body></message>`, false},
		{`<message><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, true},
		{`<message><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/></message>`, true},
		{`<message><x xmlns='jabber:x:conference' jid='r@conference.example.com'/></message>`, true},
		{`<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@example.com'/></x></message>`, true},
		{`<message type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`, false},
		{`<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>`, false},
		{`<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>`, false},
		{`<message type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>`, false},
	} {
		el, err := wire.ParseElement([]byte(tc.stanza))
		if err != nil {
			t.Fatal(err)
		}
		if got := carbonEligible(el); got != tc.want {
			t.Errorf("%s: eligible %v, want %v", tc.stanza, got, tc.want)
		}
	}
}
