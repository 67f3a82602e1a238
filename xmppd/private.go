package xmppd

import (
	"errors"
	"strings"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0049 Private XML Storage: one document per qualified name and user,
// for client settings and XEP-0048 bookmarks.

const nsPrivate = "jabber:iq:private"

// reservedPrivateNS reports the namespaces XEP-0049 §3 reserves: they have
// their own protocols, and storing them here would only confuse clients.
func reservedPrivateNS(ns string) bool {
	return ns == "" || ns == nsVCard || strings.HasPrefix(ns, "jabber:") || strings.HasPrefix(ns, "http://jabber.org/")
}

// privateAccount serves get and set of the user's own private XML.
func privateAccount(c *conn, el, q *wire.Element) {
	s := c.srv
	if q.Local != "query" {
		c.bounce(el, "", errBadRequest)
		return
	}
	// XEP-0049 §3: exactly one child in its own namespace, else
	// not-acceptable. (A set may carry several children of one namespace;
	// no client we know sends that, and one document per IQ keeps each
	// write one transaction.)
	n, item := childElements(q)
	if n != 1 {
		c.bounce(el, "", errNotAcceptable.withText("exactly one child element is required"))
		return
	}
	if reservedPrivateNS(item.Space) {
		c.bounce(el, "", errNotAcceptable.withText("reserved namespace"))
		return
	}
	key := "{" + item.Space + "}" + item.Local
	switch el.Attr("type") {
	case "get":
		doc, err := s.Store.Private(c.user, key)
		if err != nil {
			s.Logger.Error("reading private XML", "user", c.user, "err", err)
			c.bounce(el, "", errInternal)
			return
		}
		r := iqResult(el)
		if doc == nil {
			// Nothing stored: the empty element comes back.
			c.sendElement(r.Add(elem(nsPrivate, "query").Add(elem(item.Space, item.Local))))
			return
		}
		c.sendSpliced(r, "<query xmlns='"+nsPrivate+"'>", doc, "</query>")
	case "set":
		doc, err := canonicalXML(item, s.MaxPrivateBytes)
		switch {
		case errors.Is(err, errTooLarge):
			c.bounce(el, "", errNotAcceptable.withText("the document is too large"))
			return
		case err != nil:
			c.bounce(el, "", errBadRequest.withText("the document is not self-contained XML"))
			return
		}
		if err := s.Store.SetPrivate(c.user, key, doc); err != nil {
			s.Logger.Error("storing private XML", "user", c.user, "err", err)
			c.bounce(el, "", errInternal)
			return
		}
		c.sendElement(iqResult(el))
	default:
		c.bounce(el, "", errBadRequest)
	}
}

// privateContact refuses access to another user's private XML (XEP-0049
// §3 prefers forbidden to service-unavailable).
func privateContact(c *conn, el, q *wire.Element) {
	c.bounce(el, "", errForbidden)
}
