package xmppd

import (
	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/xmppd/wire"
)

type addrKind uint8

const (
	addrServer    addrKind = iota + 1 // our domain itself
	addrLocalBare                     // user@domain
	addrLocalFull                     // user@domain/resource
	addrRemote                        // another domain (no s2s)
)

// addr is a resolved, normalized destination.
type addr struct {
	kind     addrKind
	user     string
	resource string
	bare     string // normalized bare JID string (user@domain) or the domain
	full     string // normalized full JID string when kind == addrLocalFull
	domain   string
}

// resolve normalizes a JID string per RFC 7622. The common case, a full JID
// of a bound session written exactly as we issued it, skips PRECIS entirely.
func (s *Server) resolve(to string) (addr, *conn, bool) {
	if c := s.router.lookupFull(to); c != nil {
		return addr{kind: addrLocalFull, user: c.user, resource: c.resource, bare: c.bareJID, full: c.fullJID, domain: s.Domain}, c, true
	}
	j, err := jid.Parse(to)
	if err != nil {
		return addr{}, nil, false
	}
	a := addr{user: j.Localpart(), resource: j.Resourcepart(), domain: j.Domainpart()}
	switch {
	case a.domain != s.Domain:
		a.kind = addrRemote
		a.bare = j.Bare().String()
	case a.user == "":
		a.kind = addrServer
		a.bare = s.Domain
		a.resource = ""
	case a.resource == "":
		a.kind = addrLocalBare
		a.bare = j.String()
	default:
		a.kind = addrLocalFull
		a.bare = j.Bare().String()
		a.full = j.String()
		return a, s.router.lookupFull(a.full), true
	}
	return a, nil, true
}

// handleStanza processes one stanza from a bound session.
func (c *conn) handleStanza(el *wire.Element) bool {
	c.srv.metrics.stanzasIn.Add(1)
	if el.Space != nsClient {
		if h := c.srv.nonzas[el.Space]; h != nil {
			return h(c, el)
		}
		c.streamError(errUnsupportedStanza, "")
		return false
	}
	switch el.Local {
	case "message", "presence", "iq":
	default:
		c.streamError(errUnsupportedStanza, "")
		return false
	}
	if c.sm != nil {
		c.sm.in++ // XEP-0198 §4: handled; wraps at 2^32 by uint32 arithmetic
	}
	// RFC 6120 §8.1.2.1: the server stamps the sender's full JID; a client
	// claiming another address is cut off.
	if f := el.Attr("from"); f != "" && f != c.fullJID && f != c.bareJID {
		j, err := jid.Parse(f)
		if err != nil || j.Bare().String() != c.bareJID || (j.Resourcepart() != "" && j.String() != c.fullJID) {
			c.streamError(errInvalidFrom, "")
			return false
		}
	}
	el.SetAttr("from", c.fullJID)
	switch el.Local {
	case "message":
		c.handleMessage(el)
	case "presence":
		c.handlePresence(el)
	case "iq":
		c.handleIQ(el)
	}
	return true
}

// bounce answers el with an error unless el is itself an error (RFC 6120
// §8.3.1: never answer an error with an error, so no loops).
func (c *conn) bounce(el *wire.Element, from string, e stanzaError) {
	if el.Attr("type") == "error" {
		return
	}
	if from == "" {
		from = el.Attr("to")
	}
	r := errorReply(el, from, e)
	r.SetAttr("to", c.fullJID)
	c.sendElement(r)
}

// deliver queues serialized bytes to a session. The serialization is shared
// between recipients.
func deliver(to *conn, b []byte) bool {
	if to.send(b) {
		to.srv.metrics.stanzasOut.Add(1)
		return true
	}
	return false
}
