package xmppd

import (
	"github.com/ownchat/ownchat/xmppd/wire"
)

// DeliverFull queues serialized parts to the bound session fullJID, written
// back to back: a component fanning one stanza out to many occupants
// serializes it once and passes a small per-recipient piece (such as the
// to attribute) between shared head and tail. It reports false when no
// such session exists or it is closing.
func (s *Server) DeliverFull(fullJID string, parts ...[]byte) bool {
	c := s.router.lookupFull(fullJID)
	if c == nil {
		return false
	}
	if !c.send(parts...) {
		return false
	}
	s.metrics.stanzasOut.Add(1)
	return true
}

// RouteElement routes a stanza a component sends to a user, with the full
// RFC 6121 §8.5 rules (bare JIDs, priorities, offline storage). from must
// already be set to the component's address.
func (s *Server) RouteElement(el *wire.Element) {
	to := el.Attr("to")
	a, target, ok := s.resolve(to)
	if !ok || a.kind == addrRemote || a.kind == addrServer {
		return
	}
	if _, exists := s.Directory.Person(a.user); !exists {
		return
	}
	b := el.AppendXML(make([]byte, 0, 512), nsClient)
	if a.kind == addrLocalFull {
		if target != nil {
			deliver(target, b)
			return
		}
		if el.Local != "message" || el.Attr("type") == "groupchat" || el.Attr("type") == "error" {
			return
		}
	}
	switch el.Local {
	case "message":
		s.deliverToBare(a.user, el, b, nil)
	case "presence":
		for _, r := range s.router.sessionsOf(a.user) {
			if r.isAvailable() {
				deliver(r, b)
			}
		}
	}
}
