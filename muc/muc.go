// Package muc is the multi-user chat service (XEP-0045) served as the
// component conference.<domain>. It owns the rooms: occupants, roles and
// affiliations, the owner configuration form, discussion history and the
// persistence of persistent rooms in the store (bucket "muc.rooms", one key
// per room, loaded on first use).
//
// The server core hands every stanza addressed to the service, a room or an
// occupant to (*Service).RouteStanza with from stamped to the sender's full
// JID, and tells the service through UserGone when a session ended. The
// service answers through the small Router interface it defines, so this
// package never imports the server (ARCHITECTURE.md import rules).
//
// Hot path: a groupchat message is serialized once into a shared head and
// tail; each occupant's escaped real JID (computed when it joined) is
// spliced between them as the to attribute, so fan-out to N occupants does
// N map lookups in the server and no per-recipient serialization.
package muc

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
	"mellium.im/xmpp/jid"
)

// Router is how the service sends to users; xmppd.Server implements it.
type Router interface {
	// DeliverFull queues parts, written back to back, to the bound session
	// fullJID; false when there is no such session.
	DeliverFull(fullJID string, parts ...[]byte) bool
	// RouteElement routes anything else (invitations to bare JIDs, errors,
	// IQ results) with the server's normal rules.
	RouteElement(el *wire.Element)
}

// Config is the service's options; only cmd/xmppd maps the TOML into it.
type Config struct {
	// Domain is the service's JID, e.g. "conference.example.com". Required.
	Domain string
	// Name is the disco#info identity name; default "Chatrooms".
	Name string
	// HistorySize is how many groupchat messages each room keeps in memory
	// for discussion history on join (XEP-0045 §7.2.14); default 20,
	// negative disables history.
	HistorySize int
	// MayCreate reports whether the user (bare JID) may create rooms; nil
	// lets everyone. Joining an existing room is not affected.
	MayCreate func(bareJID string) bool
	// Defaults is the configuration of new rooms; nil means DefaultRoomConfig().
	Defaults *RoomConfig
	// Archive, when set, is called for every groupchat message a room
	// accepts, after it was delivered: the hook for the MUC archive
	// (XEP-0313 on the room). stanza is the message as every occupant got
	// it minus the to attribute; it must not be modified.
	Archive func(room, stanzaID string, at time.Time, stanza []byte)
	// Archived reports whether room keeps an archive (retention may say
	// "none" for a room); nil: every room does when Archive is set. Rooms
	// with an archive answer XEP-0313 queries (mam.go).
	Archived func(room string) bool
	// MaxArchivePage caps a room MAM page; default mam.DefaultMaxPage.
	MaxArchivePage int
	// Now returns the time; nil means time.Now (tests set it).
	Now func() time.Time
	// Directory, when set, enables rooms bound to directory groups and
	// reserved nicks (XEP-0045 §7.12).
	Directory Directory
	// VCard returns the vCard of a user (bare JID) as others get it, nil
	// when none. When set, a vCard request to an occupant JID is answered
	// by the room with the occupant's vCard; otherwise it is routed to the
	// occupant's bare JID.
	VCard func(bareJID string) (*wire.Element, error)
	// UserDomain is the domain of the server's users, whose bookmarks the
	// service keeps in the store; default: Domain without its first label.
	UserDomain string
	// Bookmark, when set, writes a bound room's bookmark for user (the
	// localpart) instead of the XEP-0048-only update here: the server
	// keeps XEP-0402 (PEP) and XEP-0048 bookmarks in step and notifies the
	// user's clients.
	Bookmark func(user, room, name string, add bool) error
}

// Service is the MUC service. Its methods are safe for concurrent use.
type Service struct {
	cfg    Config
	domain string
	st     *store.Store
	r      Router
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	rooms  map[string]*room            // loaded rooms by bare room JID
	joined map[string]map[*room]string // real full JID -> rooms it is in (value: nick)
	closed bool
	lastID int64 // last stanza-id timestamp (unix ns), strictly increasing

	goneMu      sync.Mutex
	gone        []string
	goneRunning bool
	goneIdle    *sync.Cond

	userDomain string
	syncMu     sync.Mutex // one SyncBoundRooms at a time
	bmMu       sync.Mutex // the bookmark queue
	bmQueue    []bookmarkChange
	bmRunning  bool
	bmIdle     *sync.Cond
	bmWrite    sync.Mutex // one bookmark read-modify-write at a time

	iqMu  sync.Mutex
	iqs   map[string]pendingIQ // forwarded IQs by the id the service gave them
	iqSeq uint64
}

// bucket holds one key per persistent room (the bare room JID).
const bucket = "muc.rooms"

// New returns a service. No room is loaded: persistent rooms come from the
// store on first use, so start-up cost does not grow with their number.
func New(cfg Config, st *store.Store, r Router, log *slog.Logger) (*Service, error) {
	if cfg.Domain == "" {
		return nil, errors.New("muc: Config.Domain is empty")
	}
	d, err := jid.Parse(cfg.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return nil, fmt.Errorf("muc: Config.Domain %q is not a domain JID", cfg.Domain)
	}
	if r == nil {
		return nil, errors.New("muc: Router is nil")
	}
	if cfg.Name == "" {
		cfg.Name = "Chatrooms"
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = 20
	}
	if cfg.HistorySize < 0 {
		cfg.HistorySize = 0
	}
	if cfg.Defaults == nil {
		def := DefaultRoomConfig()
		cfg.Defaults = &def
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, domain: d.String(), st: st, r: r, log: log, now: cfg.Now,
		rooms: make(map[string]*room), joined: make(map[string]map[*room]string)}
	if s.now == nil {
		s.now = time.Now
	}
	s.goneIdle = sync.NewCond(&s.goneMu)
	s.bmIdle = sync.NewCond(&s.bmMu)
	s.userDomain = cfg.UserDomain
	if s.userDomain == "" {
		s.userDomain = s.domain[strings.IndexByte(s.domain, '.')+1:]
	}
	return s, nil
}

// Domain returns the service JID.
func (s *Service) Domain() string { return s.domain }

// RouteStanza handles one stanza addressed to the service, a room or an
// occupant; from must be the sender's full JID. It is xmppd.Component.
func (s *Service) RouteStanza(el *wire.Element) {
	from := el.Attr("from")
	if from == "" {
		return
	}
	if strings.IndexByte(from, '/') < 0 {
		// The core stamps a session's full JID; a bare JID is the server
		// answering for an account (a vCard the room forwarded).
		if t := el.Attr("type"); el.Local != "iq" || t != "result" && t != "error" {
			return
		}
	}
	to := el.Attr("to")
	roomJID, nick, ok := s.splitTo(to)
	if !ok {
		s.bounce(el, "modify", "jid-malformed")
		return
	}
	if roomJID == "" {
		s.serviceStanza(el)
		return
	}
	switch el.Local {
	case "presence":
		s.presence(el, roomJID, nick, from)
	case "message":
		s.message(el, roomJID, nick, from)
	case "iq":
		s.iq(el, roomJID, nick, from)
	}
}

// splitTo returns the bare room JID and the nick of to, normalized. A
// loaded room addressed exactly as it is keyed skips PRECIS (the groupchat
// hot path); roomJID is "" for the service itself.
func (s *Service) splitTo(to string) (roomJID, nick string, ok bool) {
	if to == s.domain {
		return "", "", true
	}
	if i := strings.IndexByte(to, '/'); i < 0 {
		s.mu.Lock()
		_, loaded := s.rooms[to]
		s.mu.Unlock()
		if loaded {
			return to, "", true
		}
	}
	j, err := jid.Parse(to)
	if err != nil || j.Domainpart() != s.domain {
		return "", "", false
	}
	if j.Localpart() == "" {
		if j.Resourcepart() != "" {
			return "", "", false
		}
		return "", "", true
	}
	return j.Bare().String(), j.Resourcepart(), true
}

// UserGone tells the service that the session fullJID ended: it leaves
// every room it was in (unavailable presence to the others, XEP-0045
// §7.14). It never blocks on a room, so the server may call it from
// anywhere, including while the service is delivering to that session.
func (s *Service) UserGone(fullJID string) {
	s.mu.Lock()
	_, in := s.joined[fullJID]
	s.mu.Unlock()
	if !in {
		return
	}
	s.goneMu.Lock()
	s.gone = append(s.gone, fullJID)
	start := !s.goneRunning
	s.goneRunning = true
	s.goneMu.Unlock()
	if start {
		go s.drainGone()
	}
}

// drainGone is the one short-lived worker that removes ended sessions; it
// exits when the queue is empty.
func (s *Service) drainGone() {
	for {
		s.goneMu.Lock()
		batch := s.gone
		s.gone = nil
		if len(batch) == 0 {
			s.goneRunning = false
			s.goneIdle.Broadcast()
			s.goneMu.Unlock()
			return
		}
		s.goneMu.Unlock()
		for _, full := range batch {
			s.leaveAll(full)
		}
	}
}

// waitGone waits until UserGone's work is done (tests).
func (s *Service) waitGone() {
	s.goneMu.Lock()
	for s.goneRunning {
		s.goneIdle.Wait()
	}
	s.goneMu.Unlock()
}

func (s *Service) leaveAll(full string) {
	s.mu.Lock()
	rs := make([]*room, 0, len(s.joined[full]))
	for r := range s.joined[full] {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	for _, r := range rs {
		r.mu.Lock()
		if o := r.byReal[full]; o != nil && !r.gone {
			r.leave(o, full, "")
		}
		r.mu.Unlock()
	}
}

// Shutdown makes every occupant of every loaded room leave with status 332
// (XEP-0045 §7.14: the service is going down). The server calls it before
// it closes the sessions; stanzas after it are refused.
func (s *Service) Shutdown() {
	if s == nil {
		return // [muc] disabled: cmd/xmppd holds a nil service
	}
	s.mu.Lock()
	s.closed = true
	rs := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	for _, r := range rs {
		r.mu.Lock()
		for len(r.list) > 0 {
			o := r.list[len(r.list)-1]
			r.remove(o, &presExtra{codes: []string{"332"}}, false)
		}
		r.mu.Unlock()
	}
}

// track records that full is in r as nick (or no longer, nick "").
func (s *Service) track(full string, r *room, nick string) {
	s.mu.Lock()
	m := s.joined[full]
	if nick == "" {
		delete(m, r)
		if len(m) == 0 {
			delete(s.joined, full)
		}
	} else {
		if m == nil {
			m = make(map[*room]string, 1)
			s.joined[full] = m
		}
		m[r] = nick
	}
	s.mu.Unlock()
}

// stanzaID returns a new XEP-0359 id: the accept time in unix nanoseconds,
// strictly increasing within the process and across restarts (clocks
// permitting), so it can key the archive later.
func (s *Service) stanzaID(at time.Time) string {
	if s.st != nil {
		// XEP-0359 and XEP-0313 share the id: the room's stanza-id is
		// the message's id in the room archive.
		return s.st.NewArchiveID().String()
	}
	s.mu.Lock()
	n := at.UnixNano()
	if n <= s.lastID {
		n = s.lastID + 1
	}
	s.lastID = n
	s.mu.Unlock()
	return fmt.Sprintf("%x", n)
}

func bareOf(full string) string {
	if i := strings.IndexByte(full, '/'); i >= 0 {
		return full[:i]
	}
	return full
}
