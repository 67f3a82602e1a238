package xmppd

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// handlePresence implements RFC 6121 §3 (subscriptions) and §4 (exchange).
func (c *conn) handlePresence(el *wire.Element) {
	typ := el.Attr("type")
	to := el.Attr("to")
	if to == "" {
		switch typ {
		case "":
			c.goAvailable(el)
		case "unavailable":
			c.goUnavailable(el)
		case "error":
		default:
			// subscription or probe without a destination: nothing to do
		}
		return
	}
	a, target, ok := c.srv.resolve(to)
	if !ok {
		c.bounce(el, to, errJIDMalformed)
		return
	}
	if c.blockedStanza(el, a) {
		return
	}
	if typ == "" {
		c.srv.injectAvatarHash(el, c.user) // XEP-0398 §4: MUC joins too
	}
	switch a.kind {
	case addrRemote:
		if h := c.srv.components[a.domain]; h != nil {
			if typ == "" || typ == "unavailable" {
				c.trackDirected(to, typ == "unavailable")
			}
			h.RouteStanza(el)
			return
		}
		if typ != "unavailable" && typ != "error" {
			c.bounce(el, to, errRemoteNotFound)
		}
		return
	case addrServer:
		return
	}
	switch typ {
	case "subscribe":
		c.outSubscribe(a.bare, el)
	case "subscribed":
		c.outSubscribed(a.bare)
	case "unsubscribe":
		c.outUnsubscribe(a.bare)
	case "unsubscribed":
		c.outUnsubscribed(a.bare)
	case "probe":
		c.answerProbe(a)
	case "error":
		if target != nil {
			deliver(target, el.AppendXML(nil, nsClient))
		}
	default: // directed available / unavailable (§4.6)
		if _, exists := c.srv.Directory.Person(a.user); !exists {
			return
		}
		b := el.AppendXML(nil, nsClient)
		if a.kind == addrLocalFull {
			if target != nil {
				deliver(target, b)
			}
		} else {
			for _, r := range c.srv.router.sessionsOf(a.user) {
				if r.isAvailable() {
					deliver(r, b)
				}
			}
		}
		if from, _ := c.srv.presenceSub(c.user, a.bare); !from {
			c.trackDirected(to, typ == "unavailable")
		}
	}
}

// trackDirected remembers where directed presence went, so that those
// entities get unavailable presence when the session ends (RFC 6121
// §4.6.3). Joined rooms are such entities: that is how a room learns that
// an occupant's session is gone.
func (c *conn) trackDirected(to string, unavailable bool) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if unavailable {
		delete(c.directed, to)
		return
	}
	if c.directed == nil {
		c.directed = make(map[string]struct{})
	}
	if len(c.directed) < 1000 {
		c.directed[to] = struct{}{}
	}
}

func (c *conn) isAvailable() bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.available
}

// splitForTo splits a serialized stanza after its element name so that a
// per-recipient to attribute can be spliced in without re-encoding.
func splitForTo(b []byte) (head, tail []byte) {
	i := bytes.IndexAny(b, " />")
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i:]
}

// sendWithTo delivers b to r with to set to the recipient's bare JID.
func sendWithTo(r *conn, b []byte) {
	head, tail := splitForTo(b)
	if r.send(head, r.bareToAttr(), tail) {
		r.srv.metrics.stanzasOut.Add(1)
	}
}

func (c *conn) bareToAttr() []byte {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.bareTo == nil {
		c.bareTo = appendAttr(nil, "to", c.bareJID)
	}
	return c.bareTo
}

// presenceAudience returns the effective roster entries of the contacts
// that receive this user's broadcasts: subscription from/both (§4.2.2,
// §4.4.2), with their groups, for PEP's access models. Presence itself
// uses presenceView, which does not build the roster.
func (s *Server) presenceAudience(user string) (subs []rosterEntry) {
	entries, _, err := s.roster(user)
	if err != nil {
		s.Logger.Error("presence audience", "user", user, "err", err)
		return nil
	}
	for _, e := range entries {
		if e.subFrom() {
			subs = append(subs, e)
		}
	}
	return subs
}

// localUser extracts the username of a bare JID on our domain.
func (s *Server) localUser(bare string) (string, bool) { return localPart(bare, s.Domain) }

func parsePriority(el *wire.Element) int {
	p := el.Child(nsClient, "priority")
	if p == nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(p.Text()))
	if err != nil {
		return 0
	}
	if n < -128 {
		n = -128
	}
	if n > 127 {
		n = 127
	}
	return n
}

// broadcastPresence sends c's presence b to the available sessions of
// every local contact with a subscription from c's user (RFC 6121 §4.2.2,
// §4.4.2), except those c's user blocks or who block them (XEP-0191 §3.3).
func (s *Server) broadcastPresence(c *conn, v *presenceView, b []byte) {
	v.contacts(s.Domain, func(u string, from, _ bool) {
		if !from {
			return
		}
		for _, r := range s.router.sessionsOf(u) {
			if r.isAvailable() && !s.presenceBlocked(c, r) {
				sendWithTo(r, b)
			}
		}
	})
}

// toSubscribers is broadcastPresence for a caller that has the effective
// roster already.
func (s *Server) toSubscribers(c *conn, entries []rosterEntry, b []byte) {
	for _, e := range entries {
		if !e.subFrom() {
			continue
		}
		if u, ok := s.localUser(e.JID); ok {
			for _, r := range s.router.sessionsOf(u) {
				if r.isAvailable() && !s.presenceBlocked(c, r) {
					sendWithTo(r, b)
				}
			}
		}
	}
}

// goAvailable handles initial and updated available presence.
func (c *conn) goAvailable(el *wire.Element) {
	s := c.srv
	el.RemoveAttr("to")
	s.injectAvatarHash(el, c.user)
	b := el.AppendXML(make([]byte, 0, 256), nsClient)
	prio := parsePriority(el)
	c.pmu.Lock()
	initial := !c.available
	wasNegative := c.priority < 0
	c.available = true
	c.priority = prio
	c.presence = b
	c.pmu.Unlock()
	// Caps and PEP last items after the presence went out (XEP-0163 §4.3.3).
	defer c.pepCapsPresence(el, initial)

	v, err := s.presenceView(c.user)
	if err != nil {
		s.Logger.Error("presence", "user", c.user, "err", err)
		return
	}
	if initial {
		// Broadcast to subscribers (§4.2.2) and the probes (§4.3), which
		// local contacts answer at once with each available resource's
		// presence, in one pass: a 5,000-person group is looked up in the
		// router once per login, not twice.
		v.contacts(s.Domain, func(u string, from, to bool) {
			for _, r := range s.router.sessionsOf(u) {
				r.pmu.Lock()
				p, avail := r.presence, r.available
				r.pmu.Unlock()
				if !avail || s.presenceBlocked(c, r) {
					continue
				}
				if from {
					sendWithTo(r, b)
				}
				if to && p != nil {
					sendWithTo(c, p)
				}
			}
		})
	} else {
		s.broadcastPresence(c, &v, b) // §4.2.2
	}
	// All of the user's available resources, this one included.
	for _, r := range s.router.sessionsOf(c.user) {
		if r.isAvailable() {
			sendWithTo(r, b)
		}
	}
	if !initial {
		if prio >= 0 && wasNegative {
			// XEP-0160 §4: offline messages go to the first resource
			// with a non-negative priority, also when one raises it.
			c.deliverOffline()
		}
		return
	}
	// The user's other resources (§4.2.2 last paragraph).
	for _, r := range s.router.sessionsOf(c.user) {
		if r == c {
			continue
		}
		r.pmu.Lock()
		p, avail := r.presence, r.available
		r.pmu.Unlock()
		if avail && p != nil {
			sendWithTo(c, p)
		}
	}
	// Subscription requests that arrived while offline (§3.1.3).
	for _, it := range v.items {
		if it.PendingIn && !s.blockSetOf(c.user).matches(it.JID) {
			c.send(pendingSubscribe(it))
		}
	}
	if prio >= 0 {
		c.deliverOffline()
	}
}

func pendingSubscribe(e store.RosterItem) []byte {
	if len(e.PendingInXML) > 0 {
		return e.PendingInXML
	}
	p := &wire.Element{Space: nsClient, Local: "presence", Attrs: []wire.Attr{{Name: "from", Value: e.JID}, {Name: "type", Value: "subscribe"}}}
	return p.AppendXML(nil, nsClient)
}

// goUnavailable ends the session's availability: unavailable presence goes
// to subscribers, the user's resources, and directed-presence recipients
// (§4.5.2). el is the client's stanza or nil when the connection was lost.
func (c *conn) goUnavailable(el *wire.Element) {
	s := c.srv
	c.pmu.Lock()
	wasAvailable := c.available
	c.available = false
	c.presence = nil
	directed := c.directed
	c.directed = nil
	c.pmu.Unlock()
	var b []byte
	if el != nil {
		el.RemoveAttr("to")
		b = el.AppendXML(nil, nsClient)
	} else {
		p := &wire.Element{Space: nsClient, Local: "presence", Attrs: []wire.Attr{{Name: "from", Value: c.fullJID}, {Name: "type", Value: "unavailable"}}}
		b = p.AppendXML(nil, nsClient)
	}
	for to := range directed {
		a, target, ok := s.resolve(to)
		if ok && a.kind == addrRemote {
			if h := s.components[a.domain]; h != nil {
				h.RouteStanza(elem(nsClient, "presence", "from", c.fullJID, "to", to, "type", "unavailable"))
			}
			continue
		}
		if ok && target != nil {
			deliver(target, b)
		} else if ok {
			if u, isLocal := s.localUser(to); isLocal {
				for _, r := range s.router.sessionsOf(u) {
					if r.isAvailable() {
						deliver(r, b)
					}
				}
			}
		}
	}
	if !wasAvailable {
		return
	}
	s.noteLogout(c, el)
	if v, err := s.presenceView(c.user); err != nil {
		s.Logger.Error("presence", "user", c.user, "err", err)
	} else {
		s.broadcastPresence(c, &v, b)
	}
	for _, r := range s.router.sessionsOf(c.user) {
		if r == c && el == nil {
			continue
		}
		if r == c || r.isAvailable() {
			sendWithTo(r, b)
		}
	}
}

// answerProbe answers a client's probe (§4.3.2) when it is subscribed to
// the contact's presence.
func (c *conn) answerProbe(a addr) {
	s := c.srv
	if _, to := s.presenceSub(c.user, a.bare); !to {
		return
	}
	sent := false
	for _, r := range s.router.sessionsOf(a.user) {
		r.pmu.Lock()
		p, avail := r.presence, r.available
		r.pmu.Unlock()
		if avail && p != nil && (a.kind != addrLocalFull || r.fullJID == a.full) {
			sendWithTo(c, p)
			sent = true
		}
	}
	if !sent {
		p := &wire.Element{Space: nsClient, Local: "presence", Attrs: []wire.Attr{{Name: "from", Value: a.bare}, {Name: "type", Value: "unavailable"}}}
		sendWithTo(c, p.AppendXML(nil, nsClient))
	}
}

// sendPresencesOf sends the current presence of every available session of
// contact to every available session of user (after a subscription is
// approved) or unavailable from each (after it is cancelled).
func (s *Server) sendPresencesOf(contact, user string, unavailable bool) {
	cu, ok := s.localUser(contact)
	if !ok {
		return
	}
	for _, src := range s.router.sessionsOf(cu) {
		src.pmu.Lock()
		p, avail := src.presence, src.available
		src.pmu.Unlock()
		if !avail {
			continue
		}
		if unavailable {
			u := &wire.Element{Space: nsClient, Local: "presence", Attrs: []wire.Attr{{Name: "from", Value: src.fullJID}, {Name: "type", Value: "unavailable"}}}
			p = u.AppendXML(nil, nsClient)
		}
		for _, r := range s.router.sessionsOf(user) {
			if r.isAvailable() {
				sendWithTo(r, p)
			}
		}
	}
}

const nsVCardUpdate = "vcard-temp:x:update"

// setAvatarHash announces the directory's photo in the presence
// (XEP-0153 §3.2): the directory owns the photo, so its hash replaces
// whatever the client put there, including an empty <photo/>.
func setAvatarHash(el *wire.Element, hash string) {
	x := el.Child(nsVCardUpdate, "x")
	if x == nil {
		x = elem(nsVCardUpdate, "x")
		el.Add(x)
	}
	x.Nodes = x.Nodes[:0]
	x.Add((&wire.Element{Space: nsVCardUpdate, Local: "photo"}).AddText(hash))
}
