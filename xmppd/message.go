package xmppd

import (
	"errors"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// handleMessage routes a message per RFC 6121 §8.5.
func (c *conn) handleMessage(el *wire.Element) {
	s := c.srv
	to := el.Attr("to")
	if to == "" {
		// RFC 6120 §10.3: no to means the sender's own bare JID.
		to = c.bareJID
	}
	a, target, ok := s.resolve(to)
	if !ok {
		c.bounce(el, to, errJIDMalformed)
		return
	}
	if c.blockedStanza(el, a) {
		return
	}
	typ := el.Attr("type")
	switch a.kind {
	case addrRemote:
		if h := s.components[a.domain]; h != nil {
			c.sentCarbons(el, "") // before the component may change el
			h.RouteStanza(el)
			return
		}
		c.bounce(el, to, errRemoteNotFound)
		return
	case addrServer:
		// Messages to the server itself have no handler; drop them quietly
		// except to answer what expects an answer.
		if typ != "error" && typ != "groupchat" && typ != "headline" && el.Child(nsClient, "body") != nil {
			c.bounce(el, to, errServiceUnavailable)
		}
		return
	}
	if _, exists := s.Directory.Person(a.user); !exists {
		// §8.5.1: no such account.
		c.bounce(el, a.bare, errServiceUnavailable)
		return
	}
	var aw archiveWrite
	s.prepareArchive(c, el, &a, &aw) // XEP-0313 archive point; XEP-0359 stanza-ids
	c.sentCarbons(el, a.user)
	aw.forRecipient(el)
	b := el.AppendXML(make([]byte, 0, 512), nsClient)
	aw.setStanza(b)
	if a.kind == addrLocalFull {
		if target != nil {
			// Queued before delivery: a recipient that reads the message
			// and queries MAM at once finds it (the query flushes the
			// queue). If delivery fails the records are queued already and
			// the offline copy below is stored without a second set.
			s.commitArchive(&aw)
		}
		if target != nil && deliver(target, b) {
			s.receivedCarbons(a.user, c.user, el, s.router.sessionsOf(a.user), target, 0)
			return
		}
		// §8.5.3.2.1: resource gone (or going: its queue took nothing more).
		switch typ {
		case "groupchat":
			c.bounce(el, to, errServiceUnavailable)
			return
		case "error":
			return
		}
	}
	s.deliverToBareArchived(a.user, el, b, c, &aw)
}

// deliverToBare implements §8.5.2.1.1: chat and normal messages go to the
// available resources with the highest non-negative priority; with none, to
// offline storage. Headlines go to all non-negative resources or nowhere.
func (s *Server) deliverToBare(user string, el *wire.Element, b []byte, from *conn) {
	s.deliverToBareArchived(user, el, b, from, nil)
}

// deliverToBareArchived is deliverToBare that also writes the message's
// archive records (aw may be nil): queued to the archive writer before it
// is handed to a session, with the offline copy when stored.
func (s *Server) deliverToBareArchived(user string, el *wire.Element, b []byte, from *conn, aw *archiveWrite) {
	s.deliverToBareOnce(user, el, b, from, aw, false)
}

// deliverToBareOnce is deliverToBareArchived; retried says a session that
// became available while the message was on its way to storage has been
// tried already.
func (s *Server) deliverToBareOnce(user string, el *wire.Element, b []byte, from *conn, aw *archiveWrite, retried bool) {
	typ := el.Attr("type")
	if typ == "groupchat" {
		if from != nil {
			from.bounce(el, el.Attr("to"), errServiceUnavailable)
		}
		return
	}
	sessions := s.router.sessionsOf(user)
	best := -129
	for _, r := range sessions {
		r.pmu.Lock()
		if r.available && r.priority >= 0 && r.priority > best {
			best = r.priority
		}
		r.pmu.Unlock()
	}
	if best >= 0 {
		s.commitArchive(aw) // before delivery, as for a full JID
		n := 0
		for _, r := range sessions {
			r.pmu.Lock()
			ok := r.available && (r.priority == best || (typ == "headline" && r.priority >= 0))
			r.pmu.Unlock()
			if ok && deliver(r, b) {
				n++
			}
		}
		if n > 0 {
			fromUser := ""
			if from != nil {
				fromUser = from.user
			}
			s.receivedCarbons(user, fromUser, el, sessions, nil, best)
			return
		}
		// Every chosen session was going away: store rather than drop.
	}
	switch typ {
	case "headline", "error":
		return
	}
	if !storable(el) {
		s.commitArchive(aw) // compliance archives what the sender asked not to store
		return
	}
	// A session may have become available since the look above, and have
	// read the offline store already: stored now, the message would wait
	// for the next login. Under the user's offline lock, which
	// deliverOffline holds while it reads, either that session is seen
	// here (and gets the message live) or it reads the store after this
	// push.
	unlock := s.lockOffline(user)
	if !retried && s.bestSession(user, nil) != nil {
		unlock()
		s.deliverToBareOnce(user, el, b, from, aw, true)
		return
	}
	defer unlock()
	var err error
	if aw != nil && aw.n > 0 {
		err = s.storeOfflineArchived(user, el, aw)
	} else {
		err = s.storeOffline(user, el)
	}
	if err != nil {
		if from != nil {
			if errors.Is(err, store.ErrOfflineFull) {
				from.bounce(el, el.Attr("to"), errServiceUnavailable.withText("the recipient's offline storage is full"))
			} else {
				from.bounce(el, el.Attr("to"), errInternal)
			}
		}
	}
}

// storable reports whether a message is worth keeping for an offline user
// (XEP-0160, with XEP-0334 hints): bodies and explicit store hints are,
// chat states and receipts alone are not.
func storable(el *wire.Element) bool {
	if el.Child(nsHints, "no-store") != nil || el.Child(nsHints, "no-permanent-store") != nil {
		return false
	}
	if el.Child(nsClient, "body") != nil || el.Child(nsHints, "store") != nil {
		return true
	}
	for _, n := range el.Nodes {
		if n.El == nil {
			continue
		}
		switch n.El.Space {
		case "jabber:x:conference", "http://jabber.org/protocol/muc#user", "eu.siacs.conversations.axolotl", "urn:xmpp:openpgp:0", "jabber:x:encrypted":
			return true
		}
	}
	return false
}

// storeOffline adds an XEP-0203 delay and persists the message durably
// (fsync) before the sender's stanza is considered handled.
func (s *Server) storeOffline(user string, el *wire.Element) error {
	return s.storeOfflineAt(user, el, time.Now())
}

// storeOfflineAt is storeOffline with the time the delivery failed, for
// stanzas that waited unacknowledged in a XEP-0198 queue (XEP-0198 §4:
// "with the original (failed) delivery timestamp").
func (s *Server) storeOfflineAt(user string, el *wire.Element, at time.Time) error {
	if s.DisableOfflineStore {
		return errors.New("xmppd: offline storage disabled")
	}
	now := at.UTC()
	m := el.Copy()
	if m.Child(nsDelay, "delay") == nil {
		m.Add(elem(nsDelay, "delay", "from", s.Domain, "stamp", now.Format("2006-01-02T15:04:05.000Z")))
	}
	if err := s.Store.PushOffline(user, m.AppendXML(nil, nsClient), now, s.MaxOfflineMessages); err != nil {
		if !errors.Is(err, store.ErrOfflineFull) {
			s.Logger.Error("offline store failed", "user", user, "err", err)
		}
		return err
	}
	s.metrics.offlineStored.Add(1)
	return nil
}

// deliverOffline sends stored messages to a session that just became
// available with a non-negative priority (XEP-0160 §4), then deletes them.
// Safe to call from another session's goroutine.
func (c *conn) deliverOffline() {
	s := c.srv
	defer s.lockOffline(c.user)() // see deliverToBareOnce
	msgs, err := s.Store.Offline(c.user)
	if err != nil {
		s.Logger.Error("reading offline messages", "user", c.user, "err", err)
		return
	}
	if len(msgs) == 0 {
		return
	}
	// Also called for another session (storeUnacked): c.sm is read under
	// the write lock it is set under; offlineSent is guarded by the
	// offline lock held here.
	c.wmu.Lock()
	smOn := c.sm != nil
	c.wmu.Unlock()
	if smOn {
		// XEP-0198: the messages stay stored until the client acknowledges
		// them (deleteAcked); a connection lost before that loses nothing.
		// offlineSent keeps a second initial presence from sending them
		// twice on this session.
		n := 0
		for _, m := range msgs {
			if m.Seq <= c.offlineSent {
				continue
			}
			if !c.enqueue([][]byte{m.Stanza}, m.Seq) {
				break
			}
			c.offlineSent = m.Seq
			n++
		}
		s.metrics.stanzasOut.Add(int64(n))
		s.metrics.offlineDelivered.Add(int64(n))
		return
	}
	for _, m := range msgs {
		if !deliver(c, m.Stanza) {
			return
		}
	}
	// Deleted only once they are queued to a live session.
	if err := s.Store.DeleteOffline(c.user, msgs[len(msgs)-1].Seq); err != nil {
		s.Logger.Error("deleting offline messages", "user", c.user, "err", err)
	}
	s.metrics.offlineDelivered.Add(int64(len(msgs)))
}
