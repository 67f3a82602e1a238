package xmppd

import (
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// The subscription state machine of RFC 6121 §3 and Appendix A. Every
// account is local, so the user's server and the contact's server are the
// same process: each outbound step (§3.x.2) is followed at once by the
// matching inbound step (§3.x.3). Every read-modify-write of a roster item
// is one store transaction.

func subPlusTo(s string) string {
	switch s {
	case "from", "both":
		return "both"
	}
	return "to"
}

func subPlusFrom(s string) string {
	switch s {
	case "to", "both":
		return "both"
	}
	return "from"
}

func subMinusTo(s string) string {
	switch s {
	case "both", "from":
		return "from"
	}
	return "none"
}

func subMinusFrom(s string) string {
	switch s {
	case "both", "to":
		return "to"
	}
	return "none"
}

func presenceStanza(from, to, typ string) []byte {
	p := &wire.Element{Space: nsClient, Local: "presence", Attrs: []wire.Attr{{Name: "from", Value: from}, {Name: "to", Value: to}, {Name: "type", Value: typ}}}
	return p.AppendXML(nil, nsClient)
}

// deliverToAvailable sends b to the available sessions of user.
func (s *Server) deliverToAvailable(user string, b []byte) {
	for _, r := range s.router.sessionsOf(user) {
		if r.isAvailable() {
			deliver(r, b)
		}
	}
}

func (s *Server) update(user, contact string, fn func(it store.RosterItem, found bool) (store.RosterItem, bool)) (store.RosterItem, bool) {
	changed := false
	it, _, err := s.Store.UpdateRosterItem(user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		before := it
		nit, keep := fn(it, found)
		changed = !found && keep || found && !keep || !sameItem(before, nit)
		return nit, keep
	})
	if err != nil {
		s.Logger.Error("roster update", "user", user, "contact", contact, "err", err)
		return it, false
	}
	return it, changed
}

func sameItem(a, b store.RosterItem) bool {
	if a.Subscription != b.Subscription || a.Ask != b.Ask || a.PendingIn != b.PendingIn ||
		a.Approved != b.Approved || a.Hidden != b.Hidden || a.Name != b.Name || len(a.Groups) != len(b.Groups) {
		return false
	}
	for i := range a.Groups {
		if a.Groups[i] != b.Groups[i] {
			return false
		}
	}
	return true
}

// outSubscribe: the user asks to see contact's presence (§3.1.2).
func (c *conn) outSubscribe(contact string, el *wire.Element) {
	s := c.srv
	if contact == c.bareJID {
		return
	}
	cu, local := s.localUser(contact)
	if !local {
		return
	}
	if s.isColleague(c.user, contact) {
		// Shared-roster colleagues are mutually subscribed already: answer
		// as the contact's server would (§3.1.3, pre-approved).
		s.deliverToAvailable(c.user, presenceStanza(contact, c.bareJID, "subscribed"))
		s.sendPresencesOf(contact, c.user, false)
		return
	}
	if _, changed := s.update(c.user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		if it.Subscription != "to" && it.Subscription != "both" {
			it.Ask = true
		}
		it.Hidden = false
		return it, true
	}); changed {
		s.pushRosterItem(c.user, contact)
	}
	// Inbound at the contact (§3.1.3).
	if _, exists := s.Directory.Person(cu); !exists {
		s.inUnsubscribed(c.user, contact)
		return
	}
	el.SetAttr("from", c.bareJID) // subscription stanzas carry the bare JID
	el.SetAttr("to", contact)
	raw := el.AppendXML(nil, nsClient)
	autoApprove := false
	it, changed := s.update(cu, c.bareJID, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		switch {
		case it.Subscription == "from" || it.Subscription == "both":
			autoApprove = true
		case it.Approved:
			it.Approved = false
			it.Subscription = subPlusFrom(it.Subscription)
			it.Hidden = false
			autoApprove = true
		default:
			it.PendingIn = true
			it.PendingInXML = raw
			if !found {
				it.Hidden = true // §3.1.3: no roster item until approved
			}
		}
		return it, true
	})
	if autoApprove {
		if changed {
			s.pushRosterItem(cu, c.bareJID)
		}
		s.inSubscribed(c.user, contact)
		return
	}
	_ = it
	s.deliverToAvailable(cu, raw)
}

// outSubscribed: the user approves contact's request, or pre-approves
// (§3.1.5, §3.4).
func (c *conn) outSubscribed(contact string) {
	s := c.srv
	cu, local := s.localUser(contact)
	if !local || contact == c.bareJID {
		return
	}
	approved := false
	_, changed := s.update(c.user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		switch {
		case it.Subscription == "from" || it.Subscription == "both":
		case it.PendingIn:
			it.PendingIn = false
			it.PendingInXML = nil
			it.Subscription = subPlusFrom(it.Subscription)
			it.Hidden = false
			approved = true
		default:
			// Pre-approval (§3.4.2): remembered until the contact asks;
			// a contact not yet in the roster is added with
			// subscription none and approved='true'.
			it.Approved = true
			it.Hidden = false
		}
		return it, true
	})
	if changed {
		s.pushRosterItem(c.user, contact)
	}
	if approved {
		s.inSubscribed(cu, c.bareJID)
	}
}

// inSubscribed: user receives contact's approval (§3.1.6).
func (s *Server) inSubscribed(user, contact string) {
	userBare := user + "@" + s.Domain
	accepted := false
	_, changed := s.update(user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		if !found {
			return it, false
		}
		if it.Ask {
			it.Ask = false
			it.Subscription = subPlusTo(it.Subscription)
			accepted = true
		}
		return it, true
	})
	if !accepted {
		return
	}
	if changed {
		s.pushRosterItem(user, contact)
	}
	s.deliverToAvailable(user, presenceStanza(contact, userBare, "subscribed"))
	s.sendPresencesOf(contact, user, false)
}

// outUnsubscribe: the user stops watching contact (§3.3.2).
func (c *conn) outUnsubscribe(contact string) {
	s := c.srv
	cu, local := s.localUser(contact)
	if !local {
		return
	}
	if _, changed := s.update(c.user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		if !found {
			return it, false
		}
		it.Subscription = subMinusTo(it.Subscription)
		it.Ask = false
		return it, true
	}); changed {
		s.pushRosterItem(c.user, contact)
	}
	// Inbound at the contact (§3.3.3).
	_, changed := s.update(cu, c.bareJID, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		if !found {
			return it, false
		}
		it.Subscription = subMinusFrom(it.Subscription)
		it.PendingIn = false
		it.PendingInXML = nil
		if it.Hidden && it.Subscription == "none" && !it.Approved {
			return it, false
		}
		return it, true
	})
	if changed {
		s.pushRosterItem(cu, c.bareJID)
		s.deliverToAvailable(cu, presenceStanza(c.bareJID, contact, "unsubscribe"))
	}
	s.sendPresencesOf(contact, c.user, true)
}

// outUnsubscribed: the user cancels or denies contact's subscription
// (§3.2.2).
func (c *conn) outUnsubscribed(contact string) {
	s := c.srv
	cu, local := s.localUser(contact)
	if !local {
		return
	}
	if _, changed := s.update(c.user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		if !found {
			return it, false
		}
		it.Subscription = subMinusFrom(it.Subscription)
		it.PendingIn = false
		it.PendingInXML = nil
		it.Approved = false
		if it.Hidden {
			return it, false
		}
		return it, true
	}); changed {
		s.pushRosterItem(c.user, contact)
	}
	s.inUnsubscribed(cu, c.bareJID)
	s.sendPresencesOf(c.bareJID, cu, true)
}

// inUnsubscribed: user learns that contact cancelled or denied (§3.2.3).
func (s *Server) inUnsubscribed(user, contact string) {
	userBare := user + "@" + s.Domain
	_, changed := s.update(user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		if !found {
			return it, false
		}
		it.Subscription = subMinusTo(it.Subscription)
		it.Ask = false
		return it, true
	})
	if changed {
		s.pushRosterItem(user, contact)
		s.deliverToAvailable(user, presenceStanza(contact, userBare, "unsubscribed"))
	}
}
