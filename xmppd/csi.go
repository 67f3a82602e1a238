package xmppd

import (
	"bytes"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0352 Client State Indication. While a client says it is inactive (a
// phone in a pocket), presence updates and chat-state-only messages are held
// back: only the newest presence per sender full JID and the newest chat
// state per sender are kept, in order. Anything else that is sent to the
// session (a message with a body, an IQ, a subscription request ...) first
// releases everything held, in order, then goes out itself; so does
// <active/> (§5.1: before any later request is processed). The same
// holding applies while a XEP-0198 session is parked, so a phone that comes
// back gets each contact's latest presence once instead of every change.
//
// Held stanzas are not sent yet, so XEP-0198 counts them when they are
// released. They are never messages worth storing: when a session ends with
// stanzas held, they are dropped.

const (
	nsCSI        = "urn:xmpp:csi:0"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsSID        = "urn:xmpp:sid:0"

	// csiMaxHeld bounds what one session holds back; reaching it releases
	// everything (a long-inactive client then gets a burst, not a backlog).
	csiMaxHeld = 500
)

// csiState is guarded by the conn's wmu.
type csiState struct {
	inactive bool
	held     []csiItem      // in arrival order; superseded ones are dead
	live     int            // held items not dead
	newest   map[string]int // key -> index in held of the newest item
	scratch  []byte         // joins a stanza's parts for inspection
}

type csiItem struct {
	a, b, c []byte
	seq     uint64
	dead    bool
}

// registerCSI advertises XEP-0352 after authentication (§4.1).
func (s *Server) registerCSI() {
	s.extraFeatures = append(s.extraFeatures, []byte("<csi xmlns='"+nsCSI+"'/>"))
	s.nonzas[nsCSI] = handleCSI
}

// handleCSI applies <active/> and <inactive/> (§4.2; no reply).
func handleCSI(c *conn, el *wire.Element) bool {
	switch el.Local {
	case "inactive":
		c.wmu.Lock()
		if c.csi == nil {
			c.csi = &csiState{}
		}
		c.csi.inactive = true
		c.updateHoldLocked()
		c.wmu.Unlock()
	case "active":
		var act connAction
		c.wmu.Lock()
		if cs := c.csi; cs != nil && cs.inactive {
			cs.inactive = false
			c.updateHoldLocked()
			act = c.csiFlushLocked()
		}
		c.wmu.Unlock()
		c.doAction(act)
	default:
		c.streamError(errUnsupportedStanza, "")
		return false
	}
	return true
}

// updateHoldLocked recomputes whether stanzas go through csiHold.
func (c *conn) updateHoldLocked() {
	c.hold = c.csi != nil && c.csi.inactive
	if st := c.sm; st != nil {
		switch st.life {
		case smParked, smClaimed, smEnding:
			c.hold = true
		}
	}
}

// csiHold holds back one stanza if it can wait. Otherwise it releases
// everything held (through queueLocked) and reports false: the caller then
// queues the stanza itself, after them.
func (c *conn) csiHold(parts [][]byte, seq uint64) (bool, connAction) {
	cs := c.csi
	if cs == nil {
		cs = &csiState{}
		c.csi = cs
	}
	key, ok := cs.classify(parts)
	if !ok {
		return false, c.csiFlushLocked()
	}
	if cs.newest == nil {
		cs.newest = make(map[string]int)
	}
	if i, dup := cs.newest[key]; dup {
		cs.held[i] = csiItem{dead: true} // superseded: drop its references
		cs.live--
	}
	it := csiItem{seq: seq}
	switch len(parts) {
	case 1:
		it.a = parts[0]
	case 2:
		it.a, it.b = parts[0], parts[1]
	case 3:
		it.a, it.b, it.c = parts[0], parts[1], parts[2]
	default:
		it.a = bytes.Join(parts, nil)
	}
	cs.held = append(cs.held, it)
	cs.newest[key] = len(cs.held) - 1
	cs.live++
	if cs.live >= csiMaxHeld {
		return true, c.csiFlushLocked()
	}
	if len(cs.held) >= 4*csiMaxHeld {
		cs.compact()
	}
	return true, 0
}

// csiFlushLocked releases every held stanza, in order.
func (c *conn) csiFlushLocked() connAction {
	cs := c.csi
	if cs == nil || len(cs.held) == 0 {
		return 0
	}
	var act connAction
	for i := range cs.held {
		it := &cs.held[i]
		if it.dead {
			continue
		}
		_, a := c.queueLocked([][]byte{it.a, it.b, it.c}, it.seq)
		act |= a
	}
	cs.reset()
	return act
}

// csiDropLocked forgets what is held (the session is over).
func (c *conn) csiDropLocked() {
	if c.csi != nil {
		c.csi.reset()
	}
}

func (cs *csiState) reset() {
	if cap(cs.held) > 64 {
		cs.held = nil
	} else {
		clear(cs.held)
		cs.held = cs.held[:0]
	}
	cs.newest = nil
	cs.live = 0
}

// compact removes dead items so that a flood of updates from few senders
// does not grow the slice.
func (cs *csiState) compact() {
	out := cs.held[:0]
	for _, it := range cs.held {
		if !it.dead {
			out = append(out, it)
		}
	}
	clear(cs.held[len(out):])
	cs.held = out
	// Rebuilding the keys would need them again; re-classifying is cheap
	// next to the flood that led here.
	clear(cs.newest)
	for i := range cs.held {
		if key, ok := cs.classify([][]byte{cs.held[i].a, cs.held[i].b, cs.held[i].c}); ok {
			cs.newest[key] = i
		}
	}
}

// classify reports whether a stanza can wait and under which key it
// supersedes an earlier one: presence updates (available or unavailable)
// by sender full JID, chat-state-only messages by sender.
func (cs *csiState) classify(parts [][]byte) (string, bool) {
	b := parts[0]
	if len(parts) > 1 {
		cs.scratch = cs.scratch[:0]
		for _, p := range parts {
			cs.scratch = append(cs.scratch, p...)
		}
		b = cs.scratch
	}
	switch {
	case hasStartTag(b, "presence"):
		typ, _ := startTagAttr(b, "type")
		if len(typ) > 0 && string(typ) != "unavailable" {
			return "", false // subscriptions, probes, errors matter now
		}
		from, _ := startTagAttr(b, "from")
		return "p " + string(from), true
	case hasStartTag(b, "message"):
		if containsTag(b, "body") {
			return "", false // the common case decides without parsing
		}
		el, err := wire.ParseElement(b)
		if err != nil {
			return "", false
		}
		return chatStateKey(el)
	}
	return "", false
}

// chatStateKey recognizes messages that carry nothing but a XEP-0085 chat
// state, directly or as a XEP-0280 carbon copy.
func chatStateKey(el *wire.Element) (string, bool) {
	if el.Attr("type") == "error" {
		return "", false
	}
	if chatStateOnly(el) {
		return "m " + el.Attr("from"), true
	}
	var cp *wire.Element
	for _, n := range el.Nodes {
		if n.El == nil {
			continue
		}
		if cp != nil || n.El.Space != nsCarbons || (n.El.Local != "received" && n.El.Local != "sent") {
			return "", false
		}
		cp = n.El
	}
	if cp == nil {
		return "", false
	}
	fw := cp.Child(nsForward, "forwarded")
	if fw == nil {
		return "", false
	}
	m := fw.Child(nsClient, "message")
	if m == nil || !chatStateOnly(m) {
		return "", false
	}
	return "c " + m.Attr("from") + " " + m.Attr("to"), true
}

// chatStateOnly: a chat state and nothing else that a user would miss
// (thread, processing hints, ids and delay carry no content of their own).
func chatStateOnly(el *wire.Element) bool {
	state := false
	for _, n := range el.Nodes {
		if n.El == nil {
			continue
		}
		switch n.El.Space {
		case nsChatStates:
			state = true
		case nsHints, nsSID, nsDelay:
		case nsClient:
			if n.El.Local != "thread" {
				return false
			}
		default:
			return false
		}
	}
	return state
}

// hasStartTag reports whether b starts with the start tag <name.
func hasStartTag(b []byte, name string) bool {
	return len(b) > len(name)+1 && b[0] == '<' && string(b[1:1+len(name)]) == name && isTagEnd(b[1+len(name)])
}

// containsTag reports whether b contains an element start <name (without
// prefix). In serialized XML every '<' is markup: text and attribute values
// carry it escaped.
func containsTag(b []byte, name string) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(name))
		if j < 0 {
			return false
		}
		j += i
		if j > 0 && b[j-1] == '<' && j+len(name) < len(b) && isTagEnd(b[j+len(name)]) {
			return true
		}
		i = j + 1
	}
}

func isTagEnd(ch byte) bool {
	return ch == ' ' || ch == '>' || ch == '/' || ch == '\t' || ch == '\n' || ch == '\r'
}

// startTagAttr returns the raw (still escaped) value of an attribute of the
// start tag at the beginning of b.
func startTagAttr(b []byte, name string) ([]byte, bool) {
	i := 1
	for i < len(b) && !isTagEnd(b[i]) {
		i++
	}
	for i < len(b) {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		if i >= len(b) || b[i] == '>' || b[i] == '/' {
			return nil, false
		}
		start := i
		for i < len(b) && b[i] != '=' && !isTagEnd(b[i]) {
			i++
		}
		attr := b[start:i]
		for i < len(b) && (b[i] == '=' || b[i] == ' ') {
			i++
		}
		if i >= len(b) || (b[i] != '\'' && b[i] != '"') {
			return nil, false
		}
		end := bytes.IndexByte(b[i+1:], b[i])
		if end < 0 {
			return nil, false
		}
		val := b[i+1 : i+1+end]
		i += end + 2
		if string(attr) == name {
			return val, true
		}
	}
	return nil, false
}
