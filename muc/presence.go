package muc

import (
	"strconv"
	"strings"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
	"mellium.im/xmpp/jid"
)

var (
	presHead = []byte("<presence to='")
	msgHead  = []byte("<message to='")
)

// presExtra is what a presence broadcast carries besides the occupant's
// item: status codes for everyone, codes only its own session gets, and
// the item's nick/actor/reason or a destroy element.
type presExtra struct {
	codes     []string // for everyone (303, 307, 301, 321, 322, 332)
	selfCodes []string // for the occupant itself besides 110 (100, 170, 201, 210)
	newNick   string   // 303
	actor     string   // nick of the moderator who kicked/banned
	reason    string
	destroy   *wire.Element
	noAff     bool // item affiliation='none' role='none' (destroy)
}

// presTail serializes o's presence after the to attribute; jid, when not
// empty, is the real JID its item shows.
func (r *room) presTail(o *occupant, unavailable bool, jid string, self bool, x *presExtra) []byte {
	b := make([]byte, 0, 256)
	b = append(b, "' from='"...)
	b = wire.AppendAttrEscaped(b, r.from)
	b = wire.AppendAttrEscaped(b, o.nick)
	b = append(b, '\'')
	if unavailable {
		b = append(b, " type='unavailable'"...)
	}
	b = append(b, '>')
	for i := range o.pres {
		if n := &o.pres[i]; n.El != nil {
			b = n.El.AppendXML(b, nsClient)
		}
	}
	b = append(b, "<x xmlns='"+nsUser+"'><item affiliation='"...)
	aff, role := o.aff.String(), o.role.String()
	if unavailable {
		role = "none"
	}
	if x != nil && x.noAff {
		aff = "none"
	}
	b = append(b, aff...)
	b = append(b, "' role='"...)
	b = append(b, role...)
	b = append(b, '\'')
	if jid != "" {
		b = append(b, " jid='"...)
		b = wire.AppendAttrEscaped(b, jid)
		b = append(b, '\'')
	}
	if x != nil && x.newNick != "" {
		b = append(b, " nick='"...)
		b = wire.AppendAttrEscaped(b, x.newNick)
		b = append(b, '\'')
	}
	if x != nil && (x.actor != "" || x.reason != "") {
		b = append(b, '>')
		if x.actor != "" {
			b = append(b, "<actor nick='"...)
			b = wire.AppendAttrEscaped(b, x.actor)
			b = append(b, "'/>"...)
		}
		if x.reason != "" {
			b = append(b, "<reason>"...)
			b = wire.AppendEscaped(b, x.reason)
			b = append(b, "</reason>"...)
		}
		b = append(b, "</item>"...)
	} else {
		b = append(b, "/>"...)
	}
	if x != nil && x.destroy != nil {
		b = x.destroy.AppendXML(b, nsUser)
	}
	if self {
		b = appendStatus(b, "110")
		if x != nil {
			for _, c := range x.selfCodes {
				b = appendStatus(b, c)
			}
		}
	}
	if x != nil {
		for _, c := range x.codes {
			b = appendStatus(b, c)
		}
	}
	return append(b, "</x></presence>"...)
}

func appendStatus(b []byte, code string) []byte {
	b = append(b, "<status code='"...)
	b = append(b, code...)
	return append(b, "'/>"...)
}

// broadcast sends o's presence to every occupant (o itself last, with 110,
// to each of its sessions), serializing at most three variants for the
// others. Available presences are remembered for later joiners.
func (r *room) broadcast(o *occupant, unavailable bool, x *presExtra) {
	var anon, withJID []byte
	if !unavailable && x == nil {
		o.tailAnon, o.tailJID = nil, nil
	}
	parts := [3][]byte{presHead}
	for _, q := range r.list {
		if q == o || !unavailable && r.hidden(o, q) {
			continue
		}
		if r.seesJID(q) {
			if withJID == nil {
				withJID = r.presTail(o, unavailable, o.real, false, x)
			}
			parts[2] = withJID
		} else {
			if anon == nil {
				anon = r.presTail(o, unavailable, "", false, x)
			}
			parts[2] = anon
		}
		r.deliverAll(q, parts[:])
	}
	if !unavailable && x == nil {
		o.tailAnon, o.tailJID = anon, withJID
	}
	r.toSelf(o, unavailable, x, "", nil)
}

// hidden reports whether viewer does not get o's presence: o's role is
// not broadcast (muc#roomconfig_presencebroadcast) and viewer is not a
// moderator. Unavailable presences are always sent: a viewer that never
// saw o ignores them, one that did learns that o left.
func (r *room) hidden(o, viewer *occupant) bool {
	return r.cfg.PresenceHidden.Has(o.role) && viewer.role != Moderator
}

// deliverAll sends parts to every session of q, splicing each session's
// to attribute in as parts[1].
func (r *room) deliverAll(q *occupant, parts [][]byte) {
	parts[1] = q.to
	r.svc.r.DeliverFull(q.real, parts...)
	for i := range q.more {
		parts[1] = q.more[i].to
		r.svc.r.DeliverFull(q.more[i].real, parts...)
	}
}

// toSelf sends o its own presence (status 110) at each of its sessions;
// each item shows that session's own full JID, the one it knows as itself.
// The session special, if any, gets specialX instead of x: a joining
// session's codes (100, 170, 201, 210) are for it alone.
func (r *room) toSelf(o *occupant, unavailable bool, x *presExtra, special string, specialX *presExtra) {
	send := func(real string, to []byte) {
		xx := x
		if real == special {
			xx = specialX
		}
		r.svc.r.DeliverFull(real, presHead, to, r.presTail(o, unavailable, real, true, xx))
	}
	send(o.real, o.to)
	for i := range o.more {
		send(o.more[i].real, o.more[i].to)
	}
}

// occupantTail returns q's current presence as seen by viewer.
func (r *room) occupantTail(q, viewer *occupant) []byte {
	if r.seesJID(viewer) {
		if q.tailJID == nil {
			q.tailJID = r.presTail(q, false, q.real, false, nil)
		}
		return q.tailJID
	}
	if q.tailAnon == nil {
		q.tailAnon = r.presTail(q, false, "", false, nil)
	}
	return q.tailAnon
}

// presenceChanged drops o's cached presence after its role, affiliation or
// payload changed and tells everyone.
func (r *room) presenceChanged(o *occupant) {
	o.tailAnon, o.tailJID = nil, nil
	r.broadcast(o, false, nil)
}

// mucPayload returns the presence children worth forwarding: all but the
// MUC join and user elements (XEP-0045 §7.2.3 forwards the rest).
func mucPayload(el *wire.Element) []wire.Node {
	var out []wire.Node
	for _, n := range el.Nodes {
		if n.El == nil || n.El.Space == nsMUC || n.El.Space == nsUser {
			continue
		}
		out = append(out, n)
	}
	return out
}

// presence handles presence to room/nick.
func (s *Service) presence(el *wire.Element, roomJID, nick, from string) {
	typ := el.Attr("type")
	switch typ {
	case "", "unavailable", "error":
	default:
		return // subscriptions and probes to rooms mean nothing (§7.2 is about available presence)
	}
	join := el.Child(nsMUC, "x")
	for {
		r, created, err := s.room(roomJID, typ == "" && nick != "", bareOf(from))
		if err != "" {
			if typ == "" && err == condNotAllowedCreate {
				s.bounceJoin(el, err)
			} else if typ == "" {
				s.bounce(el, errType(err), err)
			}
			return
		}
		if r == nil {
			if typ == "" {
				s.bounce(el, "cancel", "item-not-found")
			}
			return
		}
		r.mu.Lock()
		if r.gone {
			r.mu.Unlock()
			continue
		}
		o := r.byReal[from]
		switch {
		case typ != "":
			if o != nil {
				var status string
				if st := el.Child(nsClient, "status"); st != nil && typ == "unavailable" {
					status = st.Text()
				}
				r.leave(o, from, status)
			}
		case nick == "":
			// §7.2.1: a join needs a nick.
			s.bounce(el, "modify", "jid-malformed")
		case o == nil:
			r.join(el, join, nick, from, created)
		case o.nick != nick:
			r.changeNick(el, o, nick)
		default:
			// The session that spoke last is the occupant's presence.
			if i := o.sessionIndex(from); i >= 0 {
				o.promote(i)
			}
			o.pres = mucPayload(el)
			r.presenceChanged(o)
		}
		if len(r.list) == 0 && !r.gone {
			// A refused creation leaves no room behind; a stored room
			// loaded for a refused join goes back to the store.
			r.unload()
		}
		r.mu.Unlock()
		return
	}
}

// join admits a new occupant (XEP-0045 §7.2) or bounces the presence with
// the error the XEP prescribes.
func (r *room) join(el, x *wire.Element, nick, from string, created bool) {
	bare := bareOf(from)
	aff := r.affOf(bare)
	var pw string
	if x != nil {
		if p := x.Child(nsMUC, "password"); p != nil {
			pw = p.Text()
		}
	}
	cond := ""
	switch {
	case r.locked && aff != Owner:
		cond = "item-not-found" // §10.1.1: a locked room does not exist for others
	case aff == Outcast:
		cond = "forbidden" // §7.2.8
	case r.cfg.MembersOnly && aff < Member:
		cond = "registration-required" // §7.2.7
	case r.cfg.PasswordProt && aff != Owner && pw != r.cfg.Password:
		cond = "not-authorized" // §7.2.6
	case r.byNick[nick] != nil && r.byNick[nick].bare != bare:
		cond = "conflict" // §7.2.9
	case r.reservedBy(nick) != "" && r.reservedBy(nick) != bare:
		cond = "conflict" // §7.2.9: reserved by another member
	case r.byNick[nick] != nil:
		// §7.2.9: the same user under the same nick from another
		// resource is another session of that occupant, not a new one
		// (so max users does not apply).
		r.joinSession(el, x, r.byNick[nick], from)
		return
	case r.cfg.MaxUsers > 0 && len(r.list) >= r.cfg.MaxUsers && aff < Admin:
		cond = "service-unavailable" // §7.2.10
	}
	if cond != "" {
		r.svc.bounceJoin(el, cond)
		return
	}
	o := &occupant{nick: nick, real: from, bare: bare, aff: aff, role: r.defaultRole(aff),
		to: wire.AppendAttrEscaped(nil, from), pres: mucPayload(el)}
	// Step 1 (§7.2.3): the presence of everyone already there.
	parts := [3][]byte{presHead, o.to}
	for _, q := range r.list {
		if r.hidden(q, o) {
			continue
		}
		parts[2] = r.occupantTail(q, o)
		r.svc.r.DeliverFull(o.real, parts[:]...)
	}
	r.add(o)
	// Step 2: the new presence to all, self last with its codes.
	r.broadcastJoin(o, r.joinCodes(el, nick, created), from)
	r.joinEnd(o, x)
}

// joinCodes are the status codes of a joining session's self-presence.
func (r *room) joinCodes(el *wire.Element, nick string, created bool) []string {
	var self []string
	if r.cfg.NonAnonymous {
		self = append(self, "100") // §7.2.4
	}
	if r.cfg.Logging {
		self = append(self, "170") // §7.2.12
	}
	if created {
		self = append(self, "201") // §10.1.1
	}
	if to := el.Attr("to"); to[strings.IndexByte(to, '/')+1:] != nick {
		self = append(self, "210") // §7.2.11: the service normalized the nick
	}
	return self
}

// joinEnd sends o's primary session, the one joining, steps 3 and 4 of
// §7.2.3: history, then the subject (always, §7.2.15).
func (r *room) joinEnd(o *occupant, x *wire.Element) {
	if x != nil {
		r.sendHistory(o, x.Child(nsMUC, "history"))
	} else {
		r.sendHistory(o, nil)
	}
	r.sendSubject(o)
}

// joinSession adds the session from to o, an occupant of the same user
// (multi-session nick). The joining session gets the join sequence of
// §7.2.3 for itself alone (the others' presence, its self-presence with
// codes, history, subject); as the most recently active session it becomes
// the primary, so the others and o's older sessions see o's presence
// again, now its presence.
func (r *room) joinSession(el, x *wire.Element, o *occupant, from string) {
	to := wire.AppendAttrEscaped(nil, from)
	parts := [3][]byte{presHead, to}
	for _, q := range r.list {
		if q != o && !r.hidden(q, o) {
			parts[2] = r.occupantTail(q, o)
			r.svc.r.DeliverFull(from, parts[:]...)
		}
	}
	o.more = append(o.more, session{real: o.real, to: o.to, pres: o.pres})
	o.real, o.to, o.pres = from, to, mucPayload(el)
	r.byReal[from] = o
	r.svc.track(from, r, o.nick)
	o.tailAnon, o.tailJID = nil, nil
	r.broadcastJoin(o, r.joinCodes(el, o.nick, false), from)
	r.joinEnd(o, x)
}

// broadcastJoin is broadcast for a joining occupant or session: the others
// get the cacheable presence; only the self-presence of the session joiner
// carries the join's status codes.
func (r *room) broadcastJoin(o *occupant, self []string, joiner string) {
	parts := [3][]byte{presHead}
	for _, q := range r.list {
		if q == o || r.hidden(o, q) {
			continue
		}
		parts[2] = r.occupantTail(o, q)
		r.deliverAll(q, parts[:])
	}
	r.toSelf(o, false, nil, joiner, &presExtra{selfCodes: self})
}

// leave takes the session full out of o after its unavailable presence
// (or the end of the session), forwarding status text. When other sessions
// of o remain, only full hears that it left (status 110): for the others o
// is still there, and if full was its primary session, o's presence is
// now that of the most recently active remaining one.
func (r *room) leave(o *occupant, full, status string) {
	var pres []wire.Node
	if status != "" {
		pres = []wire.Node{{El: (&wire.Element{Space: nsClient, Local: "status"}).AddText(status)}}
	}
	if len(o.more) > 0 {
		i := o.sessionIndex(full)
		if i == -2 {
			return
		}
		gone := *o
		gone.pres = pres
		r.svc.r.DeliverFull(full, presHead, wire.AppendAttrEscaped(nil, full), r.presTail(&gone, true, full, true, nil))
		o.dropSession(full)
		delete(r.byReal, full)
		r.svc.track(full, r, "")
		if i == -1 {
			r.presenceChanged(o)
		}
		return
	}
	o.pres = pres
	r.remove(o, nil, true)
}

// remove takes o out with an unavailable presence to everyone and handles
// the room becoming empty when checkEmpty.
func (r *room) remove(o *occupant, x *presExtra, checkEmpty bool) {
	r.broadcast(o, true, x)
	r.drop(o)
	if checkEmpty {
		r.empty()
	}
	if len(r.list) == 0 && r.locked {
		r.unload() // the creator left before configuring: the room never existed
	}
}

// changeNick handles §7.6: unavailable with 303 under the old nick, then
// available under the new one. A nick change by one session of a
// multi-session occupant renames the occupant, so all its sessions follow
// (each gets the 303 and the new self-presence): the occupant is one
// participant for the others, and refusing would leave the user's clients
// unable to rename at all. A nick held by another occupant, even one of the
// same user joined from another resource under that nick, is a conflict
// (§7.6.3): merging two occupants is not worth its complexity.
func (r *room) changeNick(el *wire.Element, o *occupant, nick string) {
	if r.byNick[nick] != nil || r.reservedBy(nick) != "" && r.reservedBy(nick) != o.bare {
		r.svc.bounceJoin(el, "conflict") // §7.6.3
		return
	}
	r.broadcast(o, true, &presExtra{codes: []string{"303"}, newNick: nick})
	delete(r.byNick, o.nick)
	o.nick = nick
	r.byNick[nick] = o
	r.svc.track(o.real, r, nick)
	for i := range o.more {
		r.svc.track(o.more[i].real, r, nick)
	}
	if i := o.sessionIndex(el.Attr("from")); i >= 0 {
		o.promote(i)
	}
	o.pres = mucPayload(el)
	o.tailAnon, o.tailJID = nil, nil
	r.broadcastJoin(o, nil, "")
}

// sendHistory sends the discussion history the joiner asked for
// (§7.2.14): maxchars and maxstanzas bound it, seconds and since start it.
func (r *room) sendHistory(o *occupant, h *wire.Element) {
	if len(r.hist.items) == 0 {
		return
	}
	maxChars, maxStanzas := -1, -1
	var after int64
	if h != nil {
		if v, err := strconv.Atoi(h.Attr("maxchars")); err == nil && v >= 0 {
			maxChars = v
		}
		if v, err := strconv.Atoi(h.Attr("maxstanzas")); err == nil && v >= 0 {
			maxStanzas = v
		}
		if v, err := strconv.Atoi(h.Attr("seconds")); err == nil && v >= 0 {
			after = r.svc.now().Add(-time.Duration(v) * time.Second).UnixNano()
		}
		if v := h.Attr("since"); v != "" {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.UnixNano() > after {
				after = t.UnixNano()
			}
		}
	}
	if f := r.cfg.MaxHistoryFetch; f != 0 && (maxStanzas < 0 || f < maxStanzas) {
		maxStanzas = max(f, 0) // muc#maxhistoryfetch: -1 is none
	}
	if maxChars == 0 || maxStanzas == 0 {
		return
	}
	// Newest first to honour the limits, then sent oldest first.
	type pick struct {
		it    histItem
		delay []byte
	}
	var picks []pick
	chars := 0
	for i := len(r.hist.items) - 1; i >= 0; i-- {
		it := r.hist.items[(r.hist.start+i)%len(r.hist.items)]
		if it.at < after {
			break
		}
		if maxStanzas >= 0 && len(picks) >= maxStanzas {
			break
		}
		d := r.delay(it.at)
		n := len(msgHead) + len(o.to) + len(it.tail) + len(d)
		if maxChars >= 0 && chars+n > maxChars {
			break
		}
		chars += n
		picks = append(picks, pick{it, d})
	}
	const end = len("</message>")
	for i := len(picks) - 1; i >= 0; i-- {
		p := picks[i]
		t := p.it.tail
		r.svc.r.DeliverFull(o.real, msgHead, o.to, t[:len(t)-end], p.delay, t[len(t)-end:])
	}
}

// delay is the XEP-0203 element of a history message, from the room (§7.2.14).
func (r *room) delay(at int64) []byte {
	b := append([]byte(nil), "<delay xmlns='"+nsDelay+"' from='"...)
	b = wire.AppendAttrEscaped(b, r.jid)
	b = append(b, "' stamp='"...)
	b = time.Unix(0, at).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, "'/>"...)
}

// sendSubject sends the subject, empty if none (§7.2.15: it marks the end
// of the join).
func (r *room) sendSubject(o *occupant) {
	from := r.subjectFrom
	if from == "" {
		from = r.jid
	}
	b := append([]byte(nil), "' from='"...)
	b = wire.AppendAttrEscaped(b, from)
	b = append(b, "' type='groupchat' id='"...)
	b = append(b, r.svc.stanzaID(r.svc.now())...)
	b = append(b, "'><subject>"...)
	b = wire.AppendEscaped(b, r.subject)
	b = append(b, "</subject></message>"...)
	r.svc.r.DeliverFull(o.real, msgHead, o.to, b)
}

// normNick normalizes a nick as a resourcepart (RFC 7622 §3.4).
func normNick(n string) (string, bool) {
	j, err := jid.New("x", "x", n)
	if err != nil || j.Resourcepart() == "" {
		return "", false
	}
	return j.Resourcepart(), true
}
