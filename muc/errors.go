package muc

import (
	"github.com/ownchat/ownchat/xmppd/wire"
	"mellium.im/xmpp/jid"
)

// errType is the RFC 6120 §8.3.2 error type usually paired with cond.
func errType(cond string) string {
	switch cond {
	case "forbidden", "not-authorized", "registration-required":
		return "auth"
	case "bad-request", "jid-malformed", "not-acceptable":
		return "modify"
	case "service-unavailable", "resource-constraint":
		return "wait"
	}
	return "cancel"
}

// bounce answers el with a stanza error (RFC 6120 §8.3). Message and
// presence errors carry the original payload; IQ errors do not. Errors are
// never answered with errors (§8.3.1).
func (s *Service) bounce(el *wire.Element, typ, cond string) {
	if el.Attr("type") == "error" {
		return
	}
	e := wire.New(nsClient, el.Local, "from", el.Attr("to"), "to", el.Attr("from"), "type", "error")
	if id := el.Attr("id"); id != "" {
		e.SetAttr("id", id)
	}
	if el.Local != "iq" {
		for _, n := range el.Nodes {
			if n.El != nil {
				e.Add(n.El)
			}
		}
	}
	e.Add(errorElement(typ, cond))
	s.r.RouteElement(e)
}

func errorElement(typ, cond string) *wire.Element {
	e := &wire.Element{Space: nsClient, Local: "error", Attrs: []wire.Attr{{Name: "type", Value: typ}}}
	return e.Add(wire.New(nsStanzas, cond))
}

// condNotAllowedCreate is the not-allowed of a refused room creation; it
// carries a text saying why (§10.1.1 leaves the text to the service).
const condNotAllowedCreate = "not-allowed:create"

// bounceJoin refuses a join or nick change: an error presence from the
// occupant JID carrying the <x xmlns='…muc'/> the client sent (§7.2.6 ff.).
// It goes straight to the session: RouteElement drops presence to a full
// JID when the session is not found.
func (s *Service) bounceJoin(el *wire.Element, cond string) {
	e := wire.New(nsClient, "presence", "from", el.Attr("to"), "to", el.Attr("from"), "type", "error")
	if id := el.Attr("id"); id != "" {
		e.SetAttr("id", id)
	}
	if x := el.Child(nsMUC, "x"); x != nil {
		e.Add(x)
	} else {
		e.Add(wire.New(nsMUC, "x"))
	}
	if cond == condNotAllowedCreate {
		e.Add(errorText("cancel", "not-allowed", "You may not create rooms on this service; ask an administrator, or join an existing room."))
	} else {
		e.Add(errorElement(errType(cond), cond))
	}
	s.r.DeliverFull(el.Attr("from"), e.AppendXML(nil, nsClient))
}

// errorText is errorElement with a human-readable text (RFC 6120 §8.3.2).
func errorText(typ, cond, text string) *wire.Element {
	e := errorElement(typ, cond)
	t := wire.New(nsStanzas, "text", "xml:lang", "en")
	t.AddText(text)
	return e.Add(t)
}

// bounceText is bounce with a text.
func (s *Service) bounceText(el *wire.Element, typ, cond, text string) {
	if el.Attr("type") == "error" {
		return
	}
	e := wire.New(nsClient, el.Local, "from", el.Attr("to"), "to", el.Attr("from"), "type", "error")
	if id := el.Attr("id"); id != "" {
		e.SetAttr("id", id)
	}
	e.Add(errorText(typ, cond, text))
	s.r.RouteElement(e)
}

// result answers an IQ get/set with payload (may be nil).
func (s *Service) result(el *wire.Element, payload *wire.Element) {
	e := wire.New(nsClient, "iq", "from", el.Attr("to"), "to", el.Attr("from"), "type", "result", "id", el.Attr("id"))
	e.Add(payload)
	s.r.RouteElement(e)
}

// normBare normalizes a bare JID (a resource is dropped, as affiliations
// are for bare JIDs, XEP-0045 §5.2).
func normBare(s string) (string, bool) {
	j, err := jid.Parse(s)
	if err != nil || j.Domainpart() == "" {
		return "", false
	}
	return j.Bare().String(), true
}
