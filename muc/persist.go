package muc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// room looks roomJID up: loaded, else from the store (lazy loading), else
// created for bare when create is set and Config.MayCreate allows it. cond
// is a stanza error condition when the lookup failed for a reason the
// sender should hear about.
func (s *Service) room(roomJID string, create bool, bare string) (r *room, created bool, cond string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, "service-unavailable"
	}
	if r := s.rooms[roomJID]; r != nil {
		return r, false, ""
	}
	if s.st != nil {
		v, err := s.st.Get(bucket, roomJID)
		if err != nil {
			s.log.Error("muc: load room", "room", roomJID, "err", err)
			return nil, false, "internal-server-error"
		}
		if v != nil {
			r := newRoom(s, roomJID)
			if err := r.decode(v); err != nil {
				s.log.Error("muc: load room", "room", roomJID, "err", err)
				return nil, false, "internal-server-error"
			}
			s.rooms[roomJID] = r
			return r, false, ""
		}
	}
	if !create {
		return nil, false, ""
	}
	if s.cfg.MayCreate != nil && !s.cfg.MayCreate(bare) {
		return nil, false, condNotAllowedCreate // §10.1.1
	}
	r = newRoom(s, roomJID)
	r.locked = true
	r.affs[bare] = Owner
	s.rooms[roomJID] = r
	return r, true, ""
}

// save writes a persistent room to the store; called under r.mu after
// every change of configuration, affiliations or subject. A temporary room
// has nothing stored.
func (r *room) save() {
	s := r.svc
	if s.st == nil || r.locked {
		return
	}
	var err error
	if r.cfg.Persistent {
		err = s.st.Put(bucket, r.jid, r.encode())
	} else {
		err = s.st.Delete(bucket, r.jid)
	}
	if err != nil {
		s.log.Error("muc: save room", "room", r.jid, "err", err)
	}
}

// Encoding of a persistent room (version 2): a version byte, then
// length-prefixed strings and uvarints in this order: name, description,
// password, flags, max users, allowpm, subject, subject from, the number of
// affiliations, then each as JID and affiliation+1 (so outcast is 0), then
// the number of bound groups and each group. Version 1 is version 2 without
// the groups, and is still read. Version 3 appends lang, pubsub, max
// history fetch as a zigzag varint, the member-list roles and the hidden
// presence roles (one byte each); versions 1 and 2 read them as zero.
const encVersion = 3

const (
	fPersistent = 1 << iota
	fPublic
	fMembersOnly
	fModerated
	fPasswordProt
	fNonAnonymous
	fChangeSubject
	fAllowInvites
	fLogging
)

var pmValues = []string{"anyone", "participants", "moderators", "none"}

func (r *room) encode() []byte {
	c := &r.cfg
	b := make([]byte, 0, 64+len(c.Name)+len(c.Description)+len(r.subject)+32*len(r.affs))
	b = append(b, encVersion)
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	str(c.Name)
	str(c.Description)
	str(c.Password)
	var f uint64
	for bit, on := range map[uint64]bool{fPersistent: c.Persistent, fPublic: c.Public, fMembersOnly: c.MembersOnly,
		fModerated: c.Moderated, fPasswordProt: c.PasswordProt, fNonAnonymous: c.NonAnonymous,
		fChangeSubject: c.ChangeSubject, fAllowInvites: c.AllowInvites, fLogging: c.Logging} {
		if on {
			f |= bit
		}
	}
	b = binary.AppendUvarint(b, f)
	b = binary.AppendUvarint(b, uint64(c.MaxUsers))
	pm := 0
	for i, v := range pmValues {
		if v == c.AllowPM {
			pm = i
		}
	}
	b = append(b, byte(pm))
	str(r.subject)
	str(r.subjectFrom)
	keys := make([]string, 0, len(r.affs))
	for k := range r.affs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic bytes
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		str(k)
		b = append(b, byte(r.affs[k]+1))
	}
	b = binary.AppendUvarint(b, uint64(len(c.Groups)))
	for _, g := range c.Groups {
		str(g)
	}
	str(c.Lang)
	str(c.PubSub)
	b = binary.AppendVarint(b, int64(c.MaxHistoryFetch))
	b = append(b, byte(c.MemberListRoles), byte(c.PresenceHidden))
	return b
}

var errCorrupt = errors.New("muc: corrupt room record")

func (r *room) decode(b []byte) error {
	if len(b) == 0 || b[0] < 1 || b[0] > encVersion {
		return fmt.Errorf("muc: room record version %v unknown", b[:min(1, len(b))])
	}
	version := b[0]
	b = b[1:]
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		n := uv()
		if bad || n > uint64(len(b)) {
			bad = true
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	byt := func() byte {
		if len(b) == 0 {
			bad = true
			return 0
		}
		v := b[0]
		b = b[1:]
		return v
	}
	c := &r.cfg
	c.Name, c.Description, c.Password = str(), str(), str()
	f := uv()
	c.Persistent, c.Public, c.MembersOnly = f&fPersistent != 0, f&fPublic != 0, f&fMembersOnly != 0
	c.Moderated, c.PasswordProt, c.NonAnonymous = f&fModerated != 0, f&fPasswordProt != 0, f&fNonAnonymous != 0
	c.ChangeSubject, c.AllowInvites, c.Logging = f&fChangeSubject != 0, f&fAllowInvites != 0, f&fLogging != 0
	c.MaxUsers = int(uv())
	if pm := int(byt()); pm < len(pmValues) {
		c.AllowPM = pmValues[pm]
	} else {
		bad = true
	}
	r.subject, r.subjectFrom = str(), str()
	n := uv()
	if n > uint64(len(b)) {
		return errCorrupt
	}
	for i := uint64(0); i < n && !bad; i++ {
		k := str()
		a := Affiliation(int(byt()) - 1)
		if a < Outcast || a > Owner {
			bad = true
		}
		if a != None {
			r.affs[k] = a
		}
	}
	if version >= 2 && !bad {
		n := uv()
		if n > uint64(len(b)) {
			return errCorrupt
		}
		c.Groups = nil
		for i := uint64(0); i < n && !bad; i++ {
			c.Groups = append(c.Groups, str())
		}
	}
	if version >= 3 && !bad {
		c.Lang, c.PubSub = str(), str()
		v, n := binary.Varint(b)
		if n <= 0 {
			return errCorrupt
		}
		b = b[n:]
		c.MaxHistoryFetch = int(v)
		c.MemberListRoles, c.PresenceHidden = RoleSet(byt()), RoleSet(byt())
	}
	if bad || len(b) != 0 {
		return errCorrupt
	}
	return nil
}
