package muc

import (
	"strconv"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// IQs between occupants (XEP-0045 §7.2.x "occupant JID" IQs, e.g. XEP-0199
// ping or a vCard of the person behind a nick): the room forwards an IQ
// addressed to room/nick to the occupant's real JID under a new id, so that
// a semi-anonymous room never reveals the sender's real JID, and maps the
// answer back. vCards live at the occupant's bare JID (XEP-0054 §3.1): the
// room answers with Config.VCard, else routes the request there. A
// self-ping to one's own occupant JID is answered by the room (XEP-0410 §3).

// pendingIQ is a forwarded IQ awaiting its answer.
type pendingIQ struct {
	from, id  string // the requester's full JID and id
	occupant  string // the target's occupant JID: the answer comes from it
	responder string // the JID allowed to answer (real full or bare JID)
	at        time.Time
}

const (
	// iqTimeout bounds how long an answer is waited for; the entry is then
	// dropped and a late answer is ignored.
	iqTimeout = 2 * time.Minute
	// maxPendingIQs bounds the map against an occupant that never answers
	// floods of IQs.
	maxPendingIQs = 10000
	nsVCard       = "vcard-temp"
)

// occupantIQ handles an IQ get/set to room/nick under r.mu.
func (r *room) occupantIQ(el, q *wire.Element, o *occupant, nick string) {
	s := r.svc
	t := r.byNick[nick]
	switch {
	case o == nil:
		s.bounce(el, "modify", "not-acceptable") // only occupants address occupants
		return
	case t == nil:
		s.bounce(el, "cancel", "item-not-found")
		return
	case q.Space == nsPing && q.Local == "ping" && t.bare == o.bare:
		s.result(el, nil) // XEP-0410: still joined
		return
	}
	// A multi-session occupant gets the IQ at one session, its primary:
	// the most recently active (an IQ has exactly one answer).
	to := t.real
	if q.Space == nsVCard && q.Local == "vCard" && el.Attr("type") == "get" {
		if s.cfg.VCard != nil {
			r.occupantVCard(el, t)
			return
		}
		to = t.bare
	}
	now := s.now()
	s.iqMu.Lock()
	if s.iqs == nil {
		s.iqs = make(map[string]pendingIQ)
	}
	if len(s.iqs) >= maxPendingIQs {
		for k, p := range s.iqs {
			if now.Sub(p.at) > iqTimeout {
				delete(s.iqs, k)
			}
		}
	}
	if len(s.iqs) >= maxPendingIQs {
		s.iqMu.Unlock()
		s.bounce(el, "wait", "resource-constraint")
		return
	}
	s.iqSeq++
	id := "fwd-" + strconv.FormatUint(s.iqSeq, 36)
	s.iqs[id] = pendingIQ{from: el.Attr("from"), id: el.Attr("id"), occupant: r.from + t.nick, responder: to, at: now}
	s.iqMu.Unlock()

	fwd := &wire.Element{Space: nsClient, Local: "iq", Attrs: make([]wire.Attr, 0, len(el.Attrs))}
	for _, a := range el.Attrs {
		switch a.Name {
		case "from":
			a.Value = r.from + o.nick
		case "to":
			a.Value = to
		case "id":
			a.Value = id
		}
		fwd.Attrs = append(fwd.Attrs, a)
	}
	fwd.Nodes = el.Nodes
	if to == t.real {
		s.r.DeliverFull(to, fwd.AppendXML(nil, nsClient))
	} else {
		s.r.RouteElement(fwd)
	}
}

// iqResponse maps an answer to a forwarded IQ back to the requester, from
// the occupant JID it asked.
func (s *Service) iqResponse(el *wire.Element, nick string) {
	if nick == "" {
		return // results and errors to the room itself: it asks nobody anything
	}
	id := el.Attr("id")
	s.iqMu.Lock()
	p, ok := s.iqs[id]
	if ok && p.responder == el.Attr("from") {
		delete(s.iqs, id)
	} else {
		ok = false
	}
	s.iqMu.Unlock()
	if !ok || s.now().Sub(p.at) > iqTimeout {
		return
	}
	out := &wire.Element{Space: nsClient, Local: "iq", Attrs: make([]wire.Attr, 0, len(el.Attrs))}
	for _, a := range el.Attrs {
		switch a.Name {
		case "from":
			a.Value = p.occupant
		case "to":
			a.Value = p.from
		case "id":
			a.Value = p.id
		}
		out.Attrs = append(out.Attrs, a)
	}
	out.Nodes = el.Nodes
	s.r.DeliverFull(p.from, out.AppendXML(nil, nsClient))
}

// occupantVCard answers a vCard request to t's occupant JID with t's
// vCard, from the occupant JID: the server keeps vCards at the bare JID
// (XEP-0054 §3.3), so no client needs to be asked, and the requester
// still never learns t's real JID. No vCard is service-unavailable, as the
// server answers for a user without one.
func (r *room) occupantVCard(el *wire.Element, t *occupant) {
	s := r.svc
	v, err := s.cfg.VCard(t.bare)
	switch {
	case err != nil:
		s.log.Error("muc: occupant vCard", "room", r.jid, "err", err)
		s.bounce(el, "wait", "internal-server-error")
	case v == nil:
		s.bounce(el, "cancel", "service-unavailable")
	default:
		s.result(el, v)
	}
}
