package xmppd

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0191 Blocking Command.
//
// The block lists are consulted for every routed stanza, so they are cached
// in memory: the store is read once per user (on the first stanza that
// needs the list) and every change goes to the store and then to the cache
// under one lock, so a load can never resurrect an older list. Entries of
// users without a session are dropped when the cache grows, which keeps it
// at about the size of the online population.

const (
	nsBlocking       = "urn:xmpp:blocking"
	nsBlockingErrors = "urn:xmpp:blocking:errors"
)

// errBlocked answers a stanza the user sends to a JID they block
// (XEP-0191 §3.3, with the type of the example there).
var errBlocked = stanzaError{"cancel", "not-acceptable", ""}

var errBlockListFull = errors.New("xmppd: block list full")

// blockSet is an immutable snapshot of one user's block list (normalized
// JIDs, RFC 7622).
type blockSet struct{ jids map[string]struct{} }

var emptyBlockSet = &blockSet{}

func newBlockSet(jids []string) *blockSet {
	if len(jids) == 0 {
		return emptyBlockSet
	}
	b := &blockSet{jids: make(map[string]struct{}, len(jids))}
	for _, j := range jids {
		b.jids[j] = struct{}{}
	}
	return b
}

func (b *blockSet) has(j string) bool {
	_, ok := b.jids[j]
	return ok
}

// with returns a copy of b plus jids; without, minus jids.
func (b *blockSet) with(jids []string) *blockSet {
	n := &blockSet{jids: make(map[string]struct{}, len(b.jids)+len(jids))}
	for j := range b.jids {
		n.jids[j] = struct{}{}
	}
	for _, j := range jids {
		n.jids[j] = struct{}{}
	}
	return n
}

func (b *blockSet) without(jids []string) *blockSet {
	n := &blockSet{jids: make(map[string]struct{}, len(b.jids))}
	for j := range b.jids {
		if !slices.Contains(jids, j) {
			n.jids[j] = struct{}{}
		}
	}
	if len(n.jids) == 0 {
		return emptyBlockSet
	}
	return n
}

func (b *blockSet) sorted() []string {
	out := make([]string, 0, len(b.jids))
	for j := range b.jids {
		out = append(out, j)
	}
	sort.Strings(out)
	return out
}

// matches reports whether the normalized address j (full JID, bare JID or
// domain) is blocked, trying in the order of XEP-0191 §3.1 (as XEP-0016
// §2.1): user@domain/resource, user@domain, domain/resource, domain, where
// a blocked domain also covers its subdomains. It does not allocate: every
// candidate is a substring of j.
func (b *blockSet) matches(j string) bool {
	if len(b.jids) == 0 {
		return false
	}
	if b.has(j) {
		return true
	}
	// The first '/' ends the domain part: localparts and domains cannot
	// contain one, resources can (RFC 7622 §3).
	bare, full := j, false
	if i := strings.IndexByte(j, '/'); i >= 0 {
		bare, full = j[:i], true
	}
	at := strings.IndexByte(bare, '@')
	if full && b.has(bare) {
		return true
	}
	if at >= 0 && full && b.has(j[at+1:]) {
		return true
	}
	domain := bare[at+1:]
	if at >= 0 && b.has(domain) {
		return true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		if d = d[i+1:]; b.has(d) {
			return true
		}
	}
}

// blockEntry is the cached block list of one user.
type blockEntry struct {
	set atomic.Pointer[blockSet]

	mu sync.Mutex
	// requested holds the sessions that asked for the block list; only
	// they get pushes (XEP-0191 §3.3). Ended sessions are pruned whenever
	// one is added, so it never holds more than the live sessions.
	requested map[*conn]struct{}
}

func (e *blockEntry) markRequested(c *conn, live []*conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.requested == nil {
		e.requested = make(map[*conn]struct{}, 1)
	}
	for r := range e.requested {
		if !slices.Contains(live, r) {
			delete(e.requested, r)
		}
	}
	e.requested[c] = struct{}{}
}

func (e *blockEntry) wantsPushes(c *conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.requested[c]
	return ok
}

// blockCache maps usernames to their cached block lists.
type blockCache struct {
	mu      sync.RWMutex
	users   map[string]*blockEntry
	sweepAt int // the size at which entries of offline users are dropped
	// changeMu serializes loads from the store with changes, so that a
	// load that read the store before a change cannot overwrite the
	// change's result in the cache.
	changeMu sync.Mutex
}

func (bc *blockCache) lookup(user string) *blockEntry {
	bc.mu.RLock()
	e := bc.users[user]
	bc.mu.RUnlock()
	return e
}

// blockSetOf returns user's block list; the hot path is one read-locked
// map lookup.
func (s *Server) blockSetOf(user string) *blockSet {
	if e := s.feat.blocks.lookup(user); e != nil {
		return e.set.Load()
	}
	return s.blockEntryOf(user).set.Load()
}

// blockEntryOf returns user's cache entry, loading it on a miss.
func (s *Server) blockEntryOf(user string) *blockEntry {
	bc := &s.feat.blocks
	if e := bc.lookup(user); e != nil {
		return e
	}
	bc.changeMu.Lock()
	defer bc.changeMu.Unlock()
	return s.loadBlockEntryLocked(user)
}

// loadBlockEntryLocked loads user's entry; bc.changeMu is held. Unknown
// accounts and failed reads get an empty list that is not cached (a failed
// read is retried by the next stanza).
func (s *Server) loadBlockEntryLocked(user string) *blockEntry {
	bc := &s.feat.blocks
	if e := bc.lookup(user); e != nil {
		return e
	}
	e := &blockEntry{}
	e.set.Store(emptyBlockSet)
	if _, exists := s.Directory.Person(user); !exists {
		return e
	}
	// Only the in-process benchmarks of the routing core build a Server
	// without a store (Serve refuses to run without one): no lists.
	if s.Store != nil {
		jids, err := s.Store.BlockList(user)
		if err != nil {
			s.Logger.Error("reading block list", "user", user, "err", err)
			return e
		}
		e.set.Store(newBlockSet(jids))
	}
	bc.mu.Lock()
	if bc.users == nil {
		bc.users = make(map[string]*blockEntry)
	}
	if len(bc.users) >= bc.sweepAt {
		// Amortized: the next sweep comes after the cache doubled.
		for u := range bc.users {
			if len(s.router.sessionsOf(u)) == 0 {
				delete(bc.users, u)
			}
		}
		bc.sweepAt = 2*len(bc.users) + 1024
	}
	bc.users[user] = e
	bc.mu.Unlock()
	return e
}

// changeBlockList blocks (or unblocks) jids for user in the store and the
// cache; unblocking no jids unblocks all (XEP-0191 §3.5).
func (s *Server) changeBlockList(user string, block bool, jids []string) (old, cur *blockSet, err error) {
	bc := &s.feat.blocks
	bc.changeMu.Lock()
	defer bc.changeMu.Unlock()
	e := s.loadBlockEntryLocked(user)
	old = e.set.Load()
	switch {
	case block:
		cur = old.with(jids)
		if len(cur.jids) > s.MaxBlockedJIDs {
			return old, old, errBlockListFull
		}
		err = s.Store.Block(user, jids...)
	case len(jids) == 0:
		cur = emptyBlockSet
		err = s.Store.Unblock(user)
	default:
		cur = old.without(jids)
		err = s.Store.Unblock(user, jids...)
	}
	if err != nil {
		return old, old, err
	}
	e.set.Store(cur)
	return old, cur, nil
}

// blockingIQ serves <blocklist/>, <block/> and <unblock/> on the user's
// own account (XEP-0191 §3.2-§3.5).
func blockingIQ(c *conn, el, q *wire.Element) {
	s := c.srv
	typ := el.Attr("type")
	switch {
	case q.Local == "blocklist" && typ == "get":
		e := s.blockEntryOf(c.user)
		// §3.2: from now on this session gets the pushes.
		e.markRequested(c, s.router.sessionsOf(c.user))
		r := iqResult(el)
		bl := elem(nsBlocking, "blocklist")
		for _, j := range e.set.Load().sorted() {
			bl.Add(elem(nsBlocking, "item", "jid", j))
		}
		c.sendElement(r.Add(bl))
	case (q.Local == "block" || q.Local == "unblock") && typ == "set":
		block := q.Local == "block"
		jids, ok := c.blockItems(el, q)
		if !ok {
			return
		}
		if block && len(jids) == 0 {
			// §3.3: a block without items is a bad request.
			c.bounce(el, "", errBadRequest.withText("block at least one JID"))
			return
		}
		old, cur, err := s.changeBlockList(c.user, block, jids)
		if errors.Is(err, errBlockListFull) {
			c.bounce(el, "", errNotAcceptable.withText("the block list is full"))
			return
		}
		if err != nil {
			s.Logger.Error("changing block list", "user", c.user, "err", err)
			c.bounce(el, "", errInternal)
			return
		}
		c.sendElement(iqResult(el))
		s.pushBlockChange(c.user, q.Local, jids)
		s.blockPresence(c.user, old, cur)
	default:
		c.bounce(el, "", errBadRequest)
	}
}

// blockItems returns the normalized, distinct JIDs of q's items; on a
// malformed one it answers jid-malformed and reports false.
func (c *conn) blockItems(el, q *wire.Element) ([]string, bool) {
	var jids []string
	for _, n := range q.Nodes {
		if n.El == nil || n.El.Local != "item" || n.El.Space != nsBlocking {
			continue
		}
		j, err := jid.Parse(n.El.Attr("jid"))
		if err != nil {
			c.bounce(el, "", errJIDMalformed)
			return nil, false
		}
		if s := j.String(); !slices.Contains(jids, s) {
			if len(jids) >= c.srv.MaxBlockedJIDs {
				c.bounce(el, "", errNotAcceptable.withText("too many items"))
				return nil, false
			}
			jids = append(jids, s)
		}
	}
	return jids, true
}

// pushBlockChange sends the change to every session of user that requested
// the block list (XEP-0191 §3.3-§3.5).
func (s *Server) pushBlockChange(user, op string, jids []string) {
	e := s.blockEntryOf(user)
	payload := elem(nsBlocking, op)
	for _, j := range jids {
		payload.Add(elem(nsBlocking, "item", "jid", j))
	}
	for _, r := range s.router.sessionsOf(user) {
		if !e.wantsPushes(r) {
			continue
		}
		iq := elem(nsClient, "iq", "type", "set", "id", "push-"+randomID(6), "to", r.fullJID)
		r.sendElement(iq.Add(payload))
	}
}

// blockPresence does the presence side of a block list change for the
// sessions whose state changed from old to cur. Newly blocked sessions get
// unavailable presence from the user's available sessions when they may
// see the user's presence (XEP-0191 §3.3), and the user's sessions see
// them go unavailable because their presence is no longer delivered.
// Unblocked sessions get the user's current presence (§3.4) and the user
// theirs, each where a subscription allows it and the other side does not
// block.
func (s *Server) blockPresence(user string, old, cur *blockSet) {
	var mine []*conn
	for _, m := range s.router.sessionsOf(user) {
		if m.isAvailable() {
			mine = append(mine, m)
		}
	}
	if len(mine) == 0 {
		return
	}
	entries, _, err := s.roster(user)
	if err != nil {
		s.Logger.Error("block presence", "user", user, "err", err)
		return
	}
	for _, e := range entries {
		u, ok := s.localUser(e.JID)
		if !ok || u == user || !e.subFrom() && !e.subTo() {
			continue
		}
		for _, r := range s.router.sessionsOf(u) {
			was, is := old.matches(r.fullJID), cur.matches(r.fullJID)
			if was == is {
				continue
			}
			r.pmu.Lock()
			theirs, avail := r.presence, r.available
			r.pmu.Unlock()
			if !avail {
				continue
			}
			if is {
				for _, m := range mine {
					if e.subFrom() {
						sendWithTo(r, unavailableFrom(m.fullJID))
					}
					if e.subTo() {
						sendWithTo(m, unavailableFrom(r.fullJID))
					}
				}
				continue
			}
			theyBlock := s.blockSetOf(u)
			for _, m := range mine {
				if theyBlock.matches(m.fullJID) {
					continue
				}
				m.pmu.Lock()
				p := m.presence
				m.pmu.Unlock()
				if e.subFrom() && p != nil {
					sendWithTo(r, p)
				}
				if e.subTo() && theirs != nil {
					sendWithTo(m, theirs)
				}
			}
		}
	}
	// Directed presence (RFC 6121 §4.6) also let a contact see the user.
	for _, m := range mine {
		m.pmu.Lock()
		targets := make([]string, 0, len(m.directed))
		for to := range m.directed {
			targets = append(targets, to)
		}
		m.pmu.Unlock()
		for _, to := range targets {
			a, target, ok := s.resolve(to)
			if !ok || a.kind != addrLocalBare && a.kind != addrLocalFull {
				continue
			}
			for _, r := range s.router.sessionsOf(a.user) {
				if a.kind == addrLocalFull && r != target || !r.isAvailable() {
					continue
				}
				if cur.matches(r.fullJID) && !old.matches(r.fullJID) {
					sendWithTo(r, unavailableFrom(m.fullJID))
				}
			}
		}
	}
}

func unavailableFrom(full string) []byte {
	p := &wire.Element{Space: nsClient, Local: "presence", Attrs: []wire.Attr{{Name: "from", Value: full}, {Name: "type", Value: "unavailable"}}}
	return p.AppendXML(nil, nsClient)
}

// blockedStanza applies XEP-0191 §3.3 to a stanza from c addressed to a,
// before it is routed, and reports whether it was consumed. A stanza to a
// JID the sender blocks is not routed and answered with <not-acceptable/>
// and <blocked/>. A stanza to a user who blocks the sender is not
// delivered: messages and IQ get/set are answered with
// <service-unavailable/> as for an absent user, presence and IQ results
// are dropped silently, so the user appears offline. Stanzas to the
// server and between a user's own resources are never blocked.
func (c *conn) blockedStanza(el *wire.Element, a addr) bool {
	if a.kind == addrServer || a.kind != addrRemote && a.user == c.user {
		return false
	}
	s := c.srv
	to := a.full
	if to == "" {
		to = a.bare
	}
	typ := el.Attr("type")
	if s.blockSetOf(c.user).matches(to) {
		if typ != "error" && (el.Local != "iq" || typ == "get" || typ == "set") {
			r := errorReply(el, el.Attr("to"), errBlocked)
			r.Child(nsClient, "error").Add(elem(nsBlockingErrors, "blocked"))
			r.SetAttr("to", c.fullJID)
			c.sendElement(r)
		}
		return true
	}
	if a.kind == addrRemote || !s.blockSetOf(a.user).matches(c.fullJID) {
		return false
	}
	switch el.Local {
	case "message":
		c.bounce(el, "", errServiceUnavailable)
	case "iq":
		if typ == "get" || typ == "set" {
			c.bounce(el, "", errServiceUnavailable)
		}
	}
	return true
}

// presenceBlocked reports whether presence of session from must not reach
// session to because either user blocks the other (XEP-0191 §3.3).
func (s *Server) presenceBlocked(from, to *conn) bool {
	return from.user != to.user &&
		(s.blockSetOf(from.user).matches(to.fullJID) || s.blockSetOf(to.user).matches(from.fullJID))
}
