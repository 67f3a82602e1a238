package muc

import (
	"sync"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// Affiliation is a long-lived relation of a bare JID to a room (XEP-0045
// §5.2). The numeric order is the order of privilege.
type Affiliation int8

const (
	Outcast Affiliation = -1
	None    Affiliation = 0
	Member  Affiliation = 1
	Admin   Affiliation = 2
	Owner   Affiliation = 3
)

var affNames = map[Affiliation]string{Outcast: "outcast", None: "none", Member: "member", Admin: "admin", Owner: "owner"}

func (a Affiliation) String() string { return affNames[a] }

func parseAffiliation(s string) (Affiliation, bool) {
	for a, n := range affNames {
		if n == s {
			return a, true
		}
	}
	return None, false
}

// Role is an occupant's privilege for the visit (XEP-0045 §5.1).
type Role int8

const (
	RoleNone Role = iota
	Visitor
	Participant
	Moderator
)

var roleNames = [...]string{"none", "visitor", "participant", "moderator"}

func (r Role) String() string { return roleNames[r] }

func parseRole(s string) (Role, bool) {
	for i, n := range roleNames {
		if n == s {
			return Role(i), true
		}
	}
	return RoleNone, false
}

// occupant is one nick in a room, held by one or more sessions of the same
// user (multi-session nick, XEP-0045 §7.2.9 "the service SHOULD allow entry
// ... one for each resource"). real, to and pres belong to the primary
// session: the one that sent available presence most recently. Its
// presence is the occupant's, IQs to the occupant go to it, and
// non-anonymous rooms show its full JID. more holds the other sessions, so
// an occupant with one session (nearly all) costs nothing extra.
type occupant struct {
	nick string
	real string // the primary session's full JID
	bare string
	to   []byte // real, attribute-escaped: spliced into every stanza it gets
	aff  Affiliation
	role Role
	pres []wire.Node // its presence payload (show, status, caps), without MUC elements
	more []session   // the other sessions, least recently active first
	// The tails of its current available presence, as the others see it
	// (without and with its real JID), kept so a joiner gets the room's
	// presences without serializing them again.
	tailAnon, tailJID []byte
	idx               int // position in room.list
}

// session is a non-primary session of a multi-session occupant.
type session struct {
	real string
	to   []byte
	pres []wire.Node
}

// sessionIndex returns the index of full in o.more, -1 for the primary,
// -2 when full is not one of o's sessions.
func (o *occupant) sessionIndex(full string) int {
	if o.real == full {
		return -1
	}
	for i := range o.more {
		if o.more[i].real == full {
			return i
		}
	}
	return -2
}

// promote makes o.more[i] the primary session; the old primary becomes the
// most recently active of the others.
func (o *occupant) promote(i int) {
	s := o.more[i]
	copy(o.more[i:], o.more[i+1:])
	o.more[len(o.more)-1] = session{real: o.real, to: o.to, pres: o.pres}
	o.real, o.to, o.pres = s.real, s.to, s.pres
}

// dropSession removes the session full (not the only one) from o; when it
// was the primary, the most recently active other session takes over.
func (o *occupant) dropSession(full string) {
	i := o.sessionIndex(full)
	switch {
	case i == -1:
		s := o.more[len(o.more)-1]
		o.real, o.to, o.pres = s.real, s.to, s.pres
	case i < 0:
		return
	default:
		copy(o.more[i:], o.more[i+1:])
	}
	o.more[len(o.more)-1] = session{}
	o.more = o.more[:len(o.more)-1]
	if len(o.more) == 0 {
		o.more = nil
	}
}

// room is one room. All fields are guarded by mu; mu is held while the
// room delivers, so every occupant sees the room's stanzas in one order.
type room struct {
	svc  *Service
	jid  string // bare room JID, normalized
	from string // jid + "/": prefix of occupant JIDs

	mu     sync.Mutex
	gone   bool // destroyed or unloaded: look the room up again
	locked bool // created, not configured yet (XEP-0045 §10.1.1)
	cfg    RoomConfig
	affs   map[string]Affiliation // bare JID -> affiliation other than none
	byNick map[string]*occupant
	byReal map[string]*occupant
	list   []*occupant // fan-out order

	subject, subjectFrom string // subjectFrom: occupant JID, or the room JID
	hist                 history
	nicks                map[string]string // reserved nick -> bare JID; nil: not computed
}

func newRoom(s *Service, jid string) *room {
	return &room{svc: s, jid: jid, from: jid + "/", cfg: *s.cfg.Defaults,
		affs: make(map[string]Affiliation), byNick: make(map[string]*occupant),
		byReal: make(map[string]*occupant), hist: history{max: s.cfg.HistorySize}}
}

// affOf returns bare's affiliation.
func (r *room) affOf(bare string) Affiliation { return r.affs[bare] }

// defaultRole is the role an occupant with affiliation a gets (§5.1.2).
func (r *room) defaultRole(a Affiliation) Role {
	switch {
	case a >= Admin:
		return Moderator
	case a == Member || !r.cfg.Moderated:
		return Participant
	default:
		return Visitor
	}
}

// seesJID reports whether q may see other occupants' real JIDs (§5.2.1:
// semi-anonymous rooms show them to moderators only).
func (r *room) seesJID(q *occupant) bool { return r.cfg.NonAnonymous || q.role == Moderator }

func (r *room) add(o *occupant) {
	o.idx = len(r.list)
	r.list = append(r.list, o)
	r.byNick[o.nick] = o
	r.byReal[o.real] = o
	r.svc.track(o.real, r, o.nick)
	for i := range o.more {
		r.byReal[o.more[i].real] = o
		r.svc.track(o.more[i].real, r, o.nick)
	}
}

func (r *room) drop(o *occupant) {
	last := r.list[len(r.list)-1]
	r.list[o.idx] = last
	last.idx = o.idx
	r.list[len(r.list)-1] = nil
	r.list = r.list[:len(r.list)-1]
	delete(r.byNick, o.nick)
	delete(r.byReal, o.real)
	r.svc.track(o.real, r, "")
	for i := range o.more {
		delete(r.byReal, o.more[i].real)
		r.svc.track(o.more[i].real, r, "")
	}
}

// empty handles the last occupant leaving: a temporary room is destroyed
// (§10.1.3 ... "destroyed when the last occupant exits"), a persistent one
// is unloaded from memory (it is in the store). Discussion history of an
// unloaded room is lost until the room archive exists.
func (r *room) empty() {
	if len(r.list) > 0 {
		return
	}
	r.unload()
}

// unloadIdle unloads a room that a stanza loaded but nobody is in.
func (r *room) unloadIdle() {
	if len(r.list) == 0 && !r.gone && !r.locked {
		r.unload()
	}
}

func (r *room) unload() {
	r.gone = true
	s := r.svc
	s.mu.Lock()
	if s.rooms[r.jid] == r {
		delete(s.rooms, r.jid)
	}
	s.mu.Unlock()
}

// history is the in-memory ring of recent groupchat messages.
type history struct {
	max   int
	items []histItem
	start int
}

type histItem struct {
	at   int64  // unix ns
	tail []byte // the message after its to attribute, as delivered live
}

func (h *history) add(it histItem) {
	if h.max <= 0 {
		return
	}
	if len(h.items) < h.max {
		h.items = append(h.items, it)
		return
	}
	h.items[h.start] = it
	h.start = (h.start + 1) % h.max
}

// each calls fn oldest first.
func (h *history) each(fn func(histItem)) {
	n := len(h.items)
	for i := 0; i < n; i++ {
		fn(h.items[(h.start+i)%n])
	}
}
