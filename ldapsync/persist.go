package ldapsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The snapshot lives in the store's generic key/value space, so the server
// starts and serves rosters while the directory is unreachable:
//
//	kv/ldapsync/        "snapshot"  v1 snapshot, below
//	kv/ldapsync.photo/  "00".."ff"  photos whose SHA-1 starts with that byte
//
// Every store.Put is one fsynced transaction (about 7 ms here), so photos
// are not one key each (50,000 commits on a first sync) but 256 shards,
// each rewritten only when one of its photos comes or goes. The order of
// writes keeps the stored state consistent after a crash at any point:
// new photos first, then the snapshot, then removal of the photos it no
// longer references.
//
// Snapshot encoding, strings as uvarint length + bytes, ints as varints:
//
//	1 | url | userMark | groupMark | fullAt | syncedAt
//	  | count | count × user | count | count × group
//	user:  id dn raw username display mail title phone dept photo photoType
//	       flags(1 disabled) expires change count aliases pgroup(v2+)
//	       given surname nick(v3+)
//	group: id dn name change count members count uids sid(v2+)
//
// A photo shard is a sequence of: hash (40 hex bytes) | type | data.
const (
	kvBucket      = "ldapsync"
	kvSnapshot    = "snapshot"
	kvPhotoBucket = "ldapsync.photo"
	snapVersion   = 3 // 2: primary group SIDs; 3: given name, surname, nickname
)

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) bytes(s []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.int(0)
		return
	}
	e.int(t.UnixNano())
}

type decoder struct {
	b   []byte
	err error
}

var errCorrupt = errors.New("truncated or corrupt record")

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}
func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}
func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
func (d *decoder) str() string { return string(d.bytes()) }
func (d *decoder) time() time.Time {
	v := d.int()
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// count reads a length and checks it against the bytes left (each
// element takes at least min bytes), so corrupt input cannot make a
// huge allocation.
func (d *decoder) count(min int) int {
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

func encodeSnapshot(sn *snapshot) []byte {
	size := 64
	for i := range sn.users {
		size += 120 + len(sn.users[i].dn) + len(sn.users[i].display)
	}
	for i := range sn.groups {
		size += 64 + 40*len(sn.groups[i].members)
	}
	e := &encoder{b: make([]byte, 0, size)}
	e.b = append(e.b, snapVersion)
	m := sn.meta
	e.str(m.url)
	e.str(m.userMark)
	e.str(m.groupMark)
	e.time(m.fullAt)
	e.time(m.syncedAt)
	e.uint(uint64(len(sn.users)))
	for i := range sn.users {
		u := &sn.users[i]
		for _, s := range [...]string{u.id, u.dn, u.raw, u.username, u.display, u.mail, u.title, u.phone, u.dept, u.photo, u.photoTyp} {
			e.str(s)
		}
		var flags uint64
		if u.disabled {
			flags |= 1
		}
		e.uint(flags)
		e.int(u.expires)
		e.str(u.change)
		e.uint(uint64(len(u.aliases)))
		for _, a := range u.aliases {
			e.str(a)
		}
		e.str(u.pgroup)
		e.str(u.given)
		e.str(u.surname)
		e.str(u.nick)
	}
	e.uint(uint64(len(sn.groups)))
	for i := range sn.groups {
		g := &sn.groups[i]
		e.str(g.id)
		e.str(g.dn)
		e.str(g.name)
		e.str(g.change)
		e.uint(uint64(len(g.members)))
		for _, m := range g.members {
			e.str(m)
		}
		e.uint(uint64(len(g.uids)))
		for _, u := range g.uids {
			e.str(u)
		}
		e.str(g.sid)
	}
	return e.b
}

// decodeSnapshot returns the records and metadata of an encoded snapshot.
// Member DNs equal to a user's DN share that user's string.
func decodeSnapshot(b []byte) ([]userRec, []groupRec, snapMeta, error) {
	var m snapMeta
	if len(b) == 0 || b[0] < 1 || b[0] > snapVersion {
		return nil, nil, m, fmt.Errorf("unknown snapshot encoding %v", versionOf(b))
	}
	v1 := b[0] == 1 // before primary groups: no pgroup, no sid
	// Before 3 no names: they stay empty until Run's first sync, which is
	// always a full one.
	v3 := b[0] >= 3
	d := &decoder{b: b[1:]}
	m.url, m.userMark, m.groupMark = d.str(), d.str(), d.str()
	m.fullAt, m.syncedAt = d.time(), d.time()
	users := make([]userRec, d.count(14))
	intern := make(map[string]string, len(users))
	for i := range users {
		u := &users[i]
		for _, p := range [...]*string{&u.id, &u.dn, &u.raw, &u.username, &u.display, &u.mail, &u.title, &u.phone, &u.dept, &u.photo, &u.photoTyp} {
			*p = d.str()
		}
		u.disabled = d.uint()&1 != 0
		u.expires = d.int()
		u.change = d.str()
		if n := d.count(1); n > 0 {
			u.aliases = make([]string, n)
			for j := range u.aliases {
				u.aliases[j] = d.str()
			}
		}
		if !v1 {
			u.pgroup = d.str()
		}
		if v3 {
			u.given, u.surname, u.nick = d.str(), d.str(), d.str()
		}
		u.ndn = normDN(u.dn)
		intern[u.ndn] = u.ndn
	}
	groups := make([]groupRec, d.count(5))
	for i := range groups {
		g := &groups[i]
		g.id, g.dn, g.name, g.change = d.str(), d.str(), d.str(), d.str()
		g.ndn = normDN(g.dn)
		if n := d.count(1); n > 0 {
			g.members = make([]string, n)
			for j := range g.members {
				raw := d.bytes()
				if s, ok := intern[string(raw)]; ok { // no allocation for the lookup
					g.members[j] = s
				} else {
					g.members[j] = string(raw)
				}
			}
		}
		if n := d.count(1); n > 0 {
			g.uids = make([]string, n)
			for j := range g.uids {
				g.uids[j] = d.str()
			}
		}
		if !v1 {
			g.sid = d.str()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, nil, m, d.err
	}
	return users, groups, m, nil
}

func versionOf(b []byte) any {
	if len(b) == 0 {
		return "(empty)"
	}
	return b[0]
}

// photo is one image waiting to be stored.
type photo struct {
	typ  string
	data []byte
}

func shardOf(hash string) string { return hash[:2] }

// encodePhotoShard appends entries to a shard.
func appendPhoto(dst []byte, hash string, p photo) []byte {
	e := &encoder{b: dst}
	e.str(hash)
	e.str(p.typ)
	e.bytes(p.data)
	return e.b
}

// walkPhotoShard calls fn for each entry of a shard until fn returns false.
func walkPhotoShard(b []byte, fn func(hash string, p photo) bool) error {
	d := &decoder{b: b}
	for len(d.b) > 0 && d.err == nil {
		hash := d.str()
		typ := d.str()
		data := d.bytes()
		if d.err == nil && !fn(hash, photo{typ: typ, data: data}) {
			return nil
		}
	}
	return d.err
}
