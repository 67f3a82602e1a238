package xmppd

import (
	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0280 Message Carbons: a user's resources that enabled carbons get a
// copy of the chat messages the user's other resources send (<sent/>) and
// receive (<received/>), so every device shows the whole conversation.

const (
	nsCarbons    = "urn:xmpp:carbons:2"
	nsForward    = "urn:xmpp:forward:0"
	nsMUCUser    = "http://jabber.org/protocol/muc#user"
	nsReceipts   = "urn:xmpp:receipts"
	nsMarkers    = "urn:xmpp:chat-markers:0"
	nsConference = "jabber:x:conference"
)

// registerCarbons advertises XEP-0280 in the domain's disco#info (§3) and
// handles <enable/>/<disable/>, which clients address to their own account
// (no 'to') or to the server.
func (s *Server) registerCarbons() {
	s.accountIQ[nsCarbons] = carbonsIQ
	s.serverIQ[nsCarbons] = carbonsIQ
	s.serverFeatures = append(s.serverFeatures, nsCarbons)
}

// carbonsIQ implements §4 and §5. Repeated requests are not errors
// (§10.1): the answer is a result either way.
func carbonsIQ(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "set" {
		c.bounce(el, "", errBadRequest)
		return
	}
	switch q.Local {
	case "enable":
		c.carbons.Store(true)
	case "disable":
		c.carbons.Store(false)
	default:
		c.bounce(el, "", errBadRequest)
		return
	}
	c.sendElement(iqResult(el))
}

// carbonEligible applies the rules of §6.1. Errors are never copied, nor
// group chat, nor private messages of a room (the room copies those to every
// joined client itself), nor what the sender marked <private/> or
// <no-copy/> (§9, XEP-0334), nor copies themselves.
func carbonEligible(el *wire.Element) bool {
	typ := el.Attr("type")
	if typ == "groupchat" || typ == "error" {
		return false
	}
	eligible := typ == "chat"
	for _, n := range el.Nodes {
		ch := n.El
		if ch == nil {
			continue
		}
		switch ch.Space {
		case nsCarbons:
			return false // <private/>, or a carbon copy sent back in
		case nsHints:
			if ch.Local == "no-copy" {
				return false
			}
		case nsMUCUser:
			if ch.Child(nsMUCUser, "invite") == nil {
				return false // a MUC private message
			}
			eligible = true // a mediated invitation
		case nsClient:
			if ch.Local == "body" && (typ == "" || typ == "normal") {
				eligible = true
			}
		case nsChatStates, nsReceipts, nsMarkers, nsConference:
			eligible = true
		}
	}
	return eligible
}

// carbonCopy wraps el for a user's other resources (§7, §8): the wrapper is
// from the user's bare JID, keeps the type and contains el in a XEP-0297
// <forwarded/>. It is built once and shared: each recipient's to attribute
// goes between head and tail.
func carbonCopy(direction string, el *wire.Element, bare string) (head, tail []byte) {
	b := make([]byte, 0, 256+len(bare))
	b = append(b, "<message from='"...)
	b = wire.AppendAttrEscaped(b, bare)
	b = append(b, '\'')
	if typ := el.Attr("type"); typ != "" {
		b = append(b, " type='"...)
		b = wire.AppendAttrEscaped(b, typ)
		b = append(b, '\'')
	}
	split := len(b)
	b = append(b, "><"...)
	b = append(b, direction...)
	b = append(b, " xmlns='"+nsCarbons+"'><forwarded xmlns='"+nsForward+"'>"...)
	b = el.AppendXML(b, nsForward) // writes xmlns='jabber:client' on the copy
	b = append(b, "</forwarded></"...)
	b = append(b, direction...)
	b = append(b, "></message>"...)
	return b[:split:split], b[split:]
}

// sentCarbons copies a message c sent to c's other carbons-enabled
// resources (§8). Messages to the user's own account are not copied: the
// user's resources get the message itself.
func (c *conn) sentCarbons(el *wire.Element, toUser string) {
	if toUser == c.user {
		return
	}
	sessions := c.srv.router.sessionsOf(c.user)
	if len(sessions) < 2 {
		return
	}
	var head, tail []byte
	for _, r := range sessions {
		if r == c || !r.carbons.Load() {
			continue
		}
		if head == nil {
			if !carbonEligible(el) {
				return
			}
			head, tail = carbonCopy("sent", el, c.bareJID)
		}
		if r.send(head, r.toAttr, tail) {
			r.srv.metrics.stanzasOut.Add(1)
		}
	}
}

// receivedCarbons copies a message delivered to user to the user's
// carbons-enabled resources that did not receive it (§7): every one but
// target when it went to a full JID, or those that did not have the highest
// priority when it went to the bare JID (target nil, best the priority
// used). fromUser is the sender's username ("" for others): a user's
// messages to the own account are not copied.
func (s *Server) receivedCarbons(user, fromUser string, el *wire.Element, sessions []*conn, target *conn, best int) {
	if user == fromUser {
		return
	}
	var head, tail []byte
	for _, r := range sessions {
		if r == target || !r.carbons.Load() {
			continue
		}
		if target == nil {
			r.pmu.Lock()
			got := r.available && r.priority == best
			r.pmu.Unlock()
			if got {
				continue
			}
		}
		if head == nil {
			if !carbonEligible(el) {
				return
			}
			head, tail = carbonCopy("received", el, user+"@"+s.Domain)
		}
		if r.send(head, r.toAttr, tail) {
			s.metrics.stanzasOut.Add(1)
		}
	}
}
