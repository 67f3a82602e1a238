package muc

import (
	"github.com/ownchat/ownchat/xmppd/wire"
)

// message handles messages to a room or an occupant.
func (s *Service) message(el *wire.Element, roomJID, nick, from string) {
	typ := el.Attr("type")
	if typ == "error" {
		return
	}
	r := s.lockExisting(el, roomJID)
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	defer r.unloadIdle()
	o := r.byReal[from]
	if nick != "" {
		r.private(el, o, nick, typ)
		return
	}
	if typ != "groupchat" {
		if x := el.Child(nsUser, "x"); x != nil {
			if inv := x.Child(nsUser, "invite"); inv != nil {
				r.invite(el, o, from, inv, x)
				return
			}
			if dec := x.Child(nsUser, "decline"); dec != nil {
				r.decline(from, dec)
				return
			}
		}
		s.bounce(el, "modify", "bad-request")
		return
	}
	if o == nil {
		s.bounce(el, "modify", "not-acceptable") // §7.4: only occupants may send
		return
	}
	if sub := el.Child(nsClient, "subject"); sub != nil && el.Child(nsClient, "body") == nil {
		// §8.1: subject change.
		if o.role < Moderator && !(r.cfg.ChangeSubject && o.role >= Participant) {
			s.bounce(el, "auth", "forbidden")
			return
		}
		r.subject, r.subjectFrom = sub.Text(), r.from+o.nick
		r.save()
	} else if o.role < Participant {
		s.bounce(el, "auth", "forbidden") // §7.4: visitors have no voice in moderated rooms
		return
	}
	r.groupchat(el, o)
}

// groupchat serializes the message once and fans it out (§7.4): the room
// stamps from with the sender's occupant JID and adds a XEP-0359
// stanza-id, removing any the sender put there for this room (§3.1 of
// XEP-0359: a client must not be able to forge it).
func (r *room) groupchat(el *wire.Element, o *occupant) {
	s := r.svc
	now := s.now()
	id := s.stanzaID(now)
	b := make([]byte, 0, 128+len(r.from)+len(o.nick)+stanzaSize(el))
	b = append(b, "' from='"...)
	b = wire.AppendAttrEscaped(b, r.from)
	b = wire.AppendAttrEscaped(b, o.nick)
	b = append(b, '\'')
	for _, a := range el.Attrs {
		if a.Name == "from" || a.Name == "to" {
			continue
		}
		b = append(b, ' ')
		b = append(b, a.Name...)
		b = append(b, "='"...)
		b = wire.AppendAttrEscaped(b, a.Value)
		b = append(b, '\'')
	}
	b = append(b, '>')
	for i := range el.Nodes {
		n := &el.Nodes[i]
		if n.El == nil {
			b = wire.AppendEscaped(b, n.Text)
			continue
		}
		if n.El.Local == "stanza-id" && n.El.Space == nsSID && n.El.Attr("by") == r.jid {
			continue
		}
		b = n.El.AppendXML(b, nsClient)
	}
	b = append(b, "<stanza-id xmlns='"+nsSID+"' id='"...)
	b = append(b, id...)
	b = append(b, "' by='"...)
	b = wire.AppendAttrEscaped(b, r.jid)
	b = append(b, "'/></message>"...)
	if s.cfg.Archive != nil {
		// Queued before anyone sees the message, so an occupant's MAM
		// query (which flushes the queue) finds what it was sent.
		s.cfg.Archive(r.jid, id, now, b)
	}
	r.fanout(msgHead, b)
	if el.Child(nsClient, "body") != nil {
		r.hist.add(histItem{at: now.UnixNano(), tail: b})
	}
}

// fanout delivers head + session's to + tail to every session of every
// occupant (XEP-0045 §7.2.9: a multi-session occupant gets in-room
// messages at all its resources).
func (r *room) fanout(head, tail []byte) {
	parts := [3][]byte{head, nil, tail}
	for _, q := range r.list {
		parts[1] = q.to
		r.svc.r.DeliverFull(q.real, parts[:]...)
		for i := range q.more {
			parts[1] = q.more[i].to
			r.svc.r.DeliverFull(q.more[i].real, parts[:]...)
		}
	}
}

// stanzaSize estimates el's serialized size for one allocation.
func stanzaSize(el *wire.Element) int {
	n := 16 + len(el.Local)*2
	for _, a := range el.Attrs {
		n += len(a.Name) + len(a.Value) + 4
	}
	for _, c := range el.Nodes {
		if c.El != nil {
			n += stanzaSize(c.El)
		} else {
			n += len(c.Text) + len(c.Text)/8
		}
	}
	return n
}

// private handles a message to an occupant JID (§7.5).
func (r *room) private(el *wire.Element, o *occupant, nick, typ string) {
	s := r.svc
	if typ == "groupchat" {
		s.bounce(el, "modify", "bad-request") // §7.5
		return
	}
	if o == nil {
		s.bounce(el, "modify", "not-acceptable")
		return
	}
	t := r.byNick[nick]
	if t == nil {
		s.bounce(el, "cancel", "item-not-found")
		return
	}
	switch r.cfg.AllowPM {
	case "none":
		s.bounce(el, "cancel", "not-allowed")
		return
	case "moderators":
		if o.role < Moderator {
			s.bounce(el, "cancel", "not-allowed")
			return
		}
	case "participants":
		if o.role < Participant {
			s.bounce(el, "cancel", "not-allowed")
			return
		}
	}
	m := &wire.Element{Space: nsClient, Local: "message", Attrs: make([]wire.Attr, 0, len(el.Attrs)+1)}
	m.Attrs = append(m.Attrs, wire.Attr{Name: "from", Value: r.from + o.nick}, wire.Attr{Name: "to", Value: t.real})
	for _, a := range el.Attrs {
		if a.Name != "from" && a.Name != "to" {
			m.Attrs = append(m.Attrs, a)
		}
	}
	m.Nodes = append(m.Nodes, el.Nodes...)
	if el.Child(nsUser, "x") == nil {
		m.Add(wire.New(nsUser, "x")) // §7.5: marks a private message from a room
	}
	s.r.DeliverFull(t.real, m.AppendXML(nil, nsClient))
	// §7.2.9 RECOMMENDS private messages to every session of a
	// multi-session occupant.
	for i := range t.more {
		m.Attrs[1].Value = t.more[i].real
		s.r.DeliverFull(t.more[i].real, m.AppendXML(nil, nsClient))
	}
}

// invite forwards a mediated invitation (§7.8.2). In a members-only room
// the invitee becomes a member when the inviter may invite.
func (r *room) invite(el *wire.Element, o *occupant, from string, inv, x *wire.Element) {
	s := r.svc
	if o == nil {
		s.bounce(el, "modify", "not-acceptable")
		return
	}
	to := inv.Attr("to")
	j, ok := normBare(to)
	if !ok {
		s.bounce(el, "modify", "jid-malformed")
		return
	}
	if r.cfg.MembersOnly && o.aff < Admin && !r.cfg.AllowInvites {
		s.bounce(el, "auth", "forbidden")
		return
	}
	if r.cfg.MembersOnly && r.affOf(j) == None {
		r.affs[j] = Member
		r.save()
	}
	ux := wire.New(nsUser, "x")
	fwd := wire.New("", "invite", "from", from)
	fwd.Space = nsUser
	if reason := inv.Child(nsUser, "reason"); reason != nil {
		fwd.Add((&wire.Element{Space: nsUser, Local: "reason"}).AddText(reason.Text()))
	}
	ux.Add(fwd)
	if r.cfg.PasswordProt {
		ux.Add((&wire.Element{Space: nsUser, Local: "password"}).AddText(r.cfg.Password))
	}
	m := wire.New(nsClient, "message", "from", r.jid, "to", j)
	if id := el.Attr("id"); id != "" {
		m.SetAttr("id", id)
	}
	m.Add(ux)
	s.r.RouteElement(m)
}

// decline forwards a declined invitation to the inviter (§7.8.2).
func (r *room) decline(from string, dec *wire.Element) {
	to := dec.Attr("to")
	if to == "" {
		return
	}
	d := wire.New("", "decline", "from", bareOf(from))
	d.Space = nsUser
	if reason := dec.Child(nsUser, "reason"); reason != nil {
		d.Add((&wire.Element{Space: nsUser, Local: "reason"}).AddText(reason.Text()))
	}
	m := wire.New(nsClient, "message", "from", r.jid, "to", to).Add(wire.New(nsUser, "x").Add(d))
	r.svc.r.RouteElement(m)
}

// lockExisting returns the room roomJID locked, loading it from the store if
// needed, for a stanza that may not create it; a missing or destroyed room
// answers el with item-not-found and returns nil (XEP-0045 §7.2.1 for
// messages, §10 for IQs).
func (s *Service) lockExisting(el *wire.Element, roomJID string) *room {
	r, _, _ := s.room(roomJID, false, "")
	if r == nil {
		s.bounce(el, "cancel", "item-not-found")
		return nil
	}
	r.mu.Lock()
	if r.gone {
		r.mu.Unlock()
		s.bounce(el, "cancel", "item-not-found")
		return nil
	}
	return r
}
