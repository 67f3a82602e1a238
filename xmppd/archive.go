package xmppd

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ownchat/ownchat/mam"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// The user archive (XEP-0313 business rules, §7 of the spec text "User
// Archives"): each 1:1 message with a body between local users goes into the
// sender's and the recipient's archive, and the recipient's copy carries the
// archive id as its XEP-0359 stanza-id. mam.go answers the queries.

// ArchiveSettings switch the message archive on and tell it whose messages
// it keeps. The zero value archives nothing.
type ArchiveSettings struct {
	Enabled bool
	// Forced is compliance mode: preferences cannot turn archiving off
	// and XEP-0334 no-store hints are not honoured.
	Forced bool
	// MaxPage caps a MAM page; default mam.DefaultMaxPage.
	MaxPage int
	// Skip reports whether an archive is not kept at all (retention
	// "none" for that user or room); nil keeps every archive. groups are
	// the owner's directory groups (nil for rooms). It is asked once per
	// owner and cached until ArchivePolicyChanged or a directory change.
	Skip func(owner string, room bool, groups []string) bool
}

// archiveState caches per-user answers the message path needs, so that
// archiving a message costs no store read.
type archiveState struct {
	mu    sync.RWMutex
	skip  map[string]bool       // username -> Skip's answer
	prefs map[string]*mam.Prefs // username -> stored preferences
}

// prefsBucket holds each user's XEP-0313 preferences, keyed by bare JID.
const prefsBucket = "mamprefs"

// ArchivePolicyChanged forgets the cached Skip answers; call it when the
// retention rules changed (SIGHUP). Safe for concurrent use.
func (s *Server) ArchivePolicyChanged() {
	s.arch.mu.Lock()
	s.arch.skip = nil
	s.arch.mu.Unlock()
}

// ArchivePrefsChanged forgets a user's cached preferences, for a command
// that changed or deleted them in the store (erasure).
func (s *Server) ArchivePrefsChanged(bareJID string) {
	user, _, _ := cutAt(bareJID)
	s.arch.mu.Lock()
	delete(s.arch.prefs, user)
	s.arch.mu.Unlock()
}

func cutAt(bare string) (user, domain string, ok bool) {
	for i := 0; i < len(bare); i++ {
		if bare[i] == '@' {
			return bare[:i], bare[i+1:], true
		}
	}
	return bare, "", false
}

// RoomArchived reports whether the archive of room (a bare room JID) is
// kept: the archive is on and Skip does not exclude it. Cached like the
// users' answers; the room service asks it for every groupchat message.
func (s *Server) RoomArchived(room string) bool {
	if !s.Archive.Enabled {
		return false
	}
	if s.Archive.Skip == nil {
		return true
	}
	// Room JIDs contain '@', usernames never do: one map serves both.
	s.arch.mu.RLock()
	v, ok := s.arch.skip[room]
	s.arch.mu.RUnlock()
	if !ok {
		v = s.Archive.Skip(room, true, nil)
		s.arch.mu.Lock()
		if s.arch.skip == nil {
			s.arch.skip = make(map[string]bool)
		}
		s.arch.skip[room] = v
		s.arch.mu.Unlock()
	}
	return !v
}

// archiveSkipped reports Skip for user, cached.
func (s *Server) archiveSkipped(user string) bool {
	if s.Archive.Skip == nil {
		return false
	}
	s.arch.mu.RLock()
	v, ok := s.arch.skip[user]
	s.arch.mu.RUnlock()
	if ok {
		return v
	}
	var groups []string
	if p, ok := s.Directory.Person(user); ok {
		groups = p.Groups
	}
	v = s.Archive.Skip(user+"@"+s.Domain, false, groups)
	s.arch.mu.Lock()
	if s.arch.skip == nil {
		s.arch.skip = make(map[string]bool)
	}
	s.arch.skip[user] = v
	s.arch.mu.Unlock()
	return v
}

// archivePrefs returns user's preferences (cached; DefaultPrefs when none
// are stored or the store cannot be read, which archives: losing a message
// is worse than keeping one).
func (s *Server) archivePrefs(user string) *mam.Prefs {
	s.arch.mu.RLock()
	p := s.arch.prefs[user]
	s.arch.mu.RUnlock()
	if p != nil {
		return p
	}
	b, err := s.Store.Get(prefsBucket, user+"@"+s.Domain)
	if err != nil {
		s.Logger.Error("archive: reading preferences", "user", user, "err", err)
		d := mam.DefaultPrefs
		return &d
	}
	np := mam.UnmarshalPrefs(b)
	s.arch.mu.Lock()
	if s.arch.prefs == nil {
		s.arch.prefs = make(map[string]*mam.Prefs)
	}
	s.arch.prefs[user] = &np
	s.arch.mu.Unlock()
	return &np
}

// setArchivePrefs stores user's preferences and updates the cache.
func (s *Server) setArchivePrefs(user string, p mam.Prefs) error {
	if err := s.Store.Put(prefsBucket, user+"@"+s.Domain, p.Marshal()); err != nil {
		return fmt.Errorf("xmppd: archive preferences of %s: %w", user, err)
	}
	s.arch.mu.Lock()
	if s.arch.prefs == nil {
		s.arch.prefs = make(map[string]*mam.Prefs)
	}
	s.arch.prefs[user] = &p
	s.arch.mu.Unlock()
	return nil
}

// forgetArchiveDirectory drops the cached Skip answers after a directory
// sync: group rules depend on group membership.
func (s *Server) forgetArchiveDirectory() { s.ArchivePolicyChanged() }

// wantsArchive reports whether owner's archive keeps a message with the
// bare JID with.
func (s *Server) wantsArchive(owner, with string) bool {
	if s.archiveSkipped(owner) {
		return false
	}
	return s.archivePrefs(owner).Archives(with, s.Archive.Forced, func(j string) bool {
		// Asked per message when the owner's default is "roster": a
		// colleague-cache lookup and one roster item read, never the
		// whole effective roster.
		if s.isColleague(owner, j) {
			return true
		}
		_, ok, err := s.Store.RosterItem(owner, j)
		return err == nil && ok
	})
}

// archiveWrite is a message's pending archive records: the sender's (if
// any) and the recipient's (if any), with the recipient's stanza-id child
// on the message.
type archiveWrite struct {
	recs  [2]store.ArchiveRecord
	n     int
	sid   *wire.Element // the stanza-id child added to the message
	rcpt  int           // index of the recipient's record, -1 when none
	owner string        // recipient bare JID
}

// archivable applies the XEP-0313 user-archive rules: chat and normal
// messages with a body or an encrypted payload; not errors, headlines,
// group chat, chat states or receipts alone; XEP-0334 no-store or
// no-permanent-store unless compliance forces archiving.
func archivable(el *wire.Element, forced bool) bool {
	switch el.Attr("type") {
	case "", "chat", "normal":
	default:
		return false
	}
	content := false
	for _, n := range el.Nodes {
		ch := n.El
		if ch == nil {
			continue
		}
		switch ch.Space {
		case nsClient:
			if ch.Local == "body" {
				content = true
			}
		case nsHints:
			if !forced && (ch.Local == "no-store" || ch.Local == "no-permanent-store") {
				return false
			}
		case "eu.siacs.conversations.axolotl", "urn:xmpp:omemo:2", "urn:xmpp:openpgp:0", "jabber:x:encrypted":
			content = true
		}
	}
	return content
}

// stripStanzaIDs removes stanza-id elements claiming to come from one of
// the given archives (XEP-0359 §3.1: a sender must not forge them).
func stripStanzaIDs(el *wire.Element, by1, by2 string) {
	out := el.Nodes[:0]
	for _, n := range el.Nodes {
		if n.El != nil && n.El.Local == "stanza-id" && n.El.Space == nsSID {
			if by := n.El.Attr("by"); by == by1 || by == by2 {
				continue
			}
		}
		out = append(out, n)
	}
	clear(el.Nodes[len(out):])
	el.Nodes = out
}

// stanzaIDElement builds <stanza-id/> in one allocation (the message
// path runs it per archived message).
func stanzaIDElement(by string, id store.ArchiveID) *wire.Element {
	e := &struct {
		el    wire.Element
		attrs [3]wire.Attr
	}{}
	e.attrs = [3]wire.Attr{{Name: "xmlns", Value: nsSID}, {Name: "by", Value: by}, {Name: "id", Value: id.String()}}
	e.el = wire.Element{Space: nsSID, Local: "stanza-id", Attrs: e.attrs[:]}
	return &e.el
}

// prepareArchive decides which archives keep a message from c to the
// local user a and, for the sender's archive, puts the sender's stanza-id
// on the message so the sent carbons carry it; forRecipient swaps it for
// the recipient's before the message is serialized.
func (s *Server) prepareArchive(c *conn, el *wire.Element, a *addr, aw *archiveWrite) {
	aw.rcpt = -1
	if !s.Archive.Enabled {
		return
	}
	stripStanzaIDs(el, c.bareJID, a.bare)
	if !archivable(el, s.Archive.Forced) {
		return
	}
	if c.user != a.user && s.wantsArchive(c.user, a.bare) {
		id := s.Store.NewArchiveID()
		aw.recs[0] = store.ArchiveRecord{Owner: c.bareJID, ID: id, With: a.bare, Outgoing: true, Kind: store.KindChat}
		aw.n = 1
		if len(s.router.sessionsOf(c.user)) > 1 {
			// Only sent carbons show the sender's id (XEP-0280 §8 with
			// XEP-0359): without another resource there are none.
			aw.sid = stanzaIDElement(c.bareJID, id)
			el.Nodes = append(el.Nodes, wire.Node{El: aw.sid})
		}
	}
	if s.wantsArchive(a.user, c.bareJID) {
		aw.rcpt = aw.n
		aw.recs[aw.n] = store.ArchiveRecord{Owner: a.bare, ID: s.Store.NewArchiveID(), With: c.bareJID, Kind: store.KindChat}
		aw.n++
		aw.owner = a.bare
	}
}

// forRecipient leaves on el only the recipient's stanza-id.
func (aw *archiveWrite) forRecipient(el *wire.Element) {
	if aw.rcpt < 0 {
		if aw.sid != nil {
			for i := range el.Nodes {
				if el.Nodes[i].El == aw.sid {
					el.Nodes = append(el.Nodes[:i], el.Nodes[i+1:]...)
					break
				}
			}
		}
		return
	}
	id := aw.recs[aw.rcpt].ID.String()
	if aw.sid != nil {
		aw.sid.Attrs[1].Value = aw.owner
		aw.sid.Attrs[2].Value = id
		return
	}
	aw.sid = stanzaIDElement(aw.owner, aw.recs[aw.rcpt].ID)
	el.Nodes = append(el.Nodes, wire.Node{El: aw.sid})
}

// setStanza gives the records the message as delivered. b is the
// serialization for the sessions (inheriting jabber:client from the
// stream); the archive's copy declares it, so it stands on its own in
// exports and inside <forwarded/>.
func (aw *archiveWrite) setStanza(b []byte) {
	if aw.n == 0 {
		return
	}
	var st []byte
	const open = "<message"
	if bytes.HasPrefix(b, []byte(open)) && len(b) > len(open) && (b[len(open)] == ' ' || b[len(open)] == '>') {
		st = make([]byte, 0, len(b)+len(" xmlns='"+nsClient+"'"))
		st = append(st, open+" xmlns='"+nsClient+"'"...)
		st = append(st, b[len(open):]...)
	} else {
		st = b // a prefixed message: AppendXML already declared the prefix
	}
	for i := 0; i < aw.n; i++ {
		aw.recs[i].Stanza = st
	}
}

// commitArchive queues the records for the archive writer (group commit).
func (s *Server) commitArchive(aw *archiveWrite) {
	if aw == nil || aw.n == 0 {
		return
	}
	s.Store.Archive(aw.recs[:aw.n]...)
	aw.n = 0
}

// storeOfflineArchived is storeOffline for an archived message: the
// offline copy and the archive records in one transaction.
func (s *Server) storeOfflineArchived(user string, el *wire.Element, aw *archiveWrite) error {
	if s.DisableOfflineStore {
		return errors.New("xmppd: offline storage disabled")
	}
	now := time.Now().UTC()
	m := el.Copy()
	if m.Child(nsDelay, "delay") == nil {
		m.Add(elem(nsDelay, "delay", "from", s.Domain, "stamp", now.Format("2006-01-02T15:04:05.000Z")))
	}
	if err := s.Store.PushOfflineArchived(user, m.AppendXML(nil, nsClient), now, s.MaxOfflineMessages, aw.recs[:aw.n]); err != nil {
		if !errors.Is(err, store.ErrOfflineFull) {
			s.Logger.Error("offline store failed", "user", user, "err", err)
		}
		return err
	}
	aw.n = 0
	s.metrics.offlineStored.Add(1)
	return nil
}
