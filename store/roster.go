package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RosterItem is one contact of a user's roster (RFC 6121 §2.1.2). The store
// does not normalize JIDs: callers pass bare JIDs already prepared
// (RFC 7622), because the roster key is the JID string.
type RosterItem struct {
	JID          string // bare JID of the contact
	Name         string
	Subscription string // "none" | "to" | "from" | "both"; "" is stored as "none"
	Ask          bool   // outbound subscribe pending ("ask='subscribe'")
	PendingIn    bool   // inbound subscription request waiting for the user's answer (§3.1.3)
	PendingInXML []byte // the original subscribe stanza (to redeliver at next login), may be nil
	Approved     bool   // pre-approved inbound subscription (§3.4)
	// Hidden marks an item that exists only to hold PendingIn or Approved
	// state: it is not shown in the roster (RFC 6121 §3.1.3, §3.4).
	Hidden bool
	Groups []string
}

// subscriptions maps the encoded byte to RFC 6121 §2.1.2.5 values.
var subscriptions = [...]string{"none", "to", "from", "both"}

func subscriptionCode(s string) (byte, bool) {
	if s == "" {
		return 0, true
	}
	for i, name := range subscriptions {
		if s == name {
			return byte(i), true
		}
	}
	return 0, false
}

const (
	flagAsk = 1 << iota
	flagPendingIn
	flagApproved
	flagHidden
)

// appendRosterItem encodes it without its JID (the JID is the key):
//
//	v1 | subscription | flags | uvarint len, Name | uvarint n, n*(uvarint len, group) | uvarint len, PendingInXML
//
// The strings come first and contiguous so decoding converts them to a
// single string allocation; the stanza comes last and is copied as bytes.
func appendRosterItem(dst []byte, it RosterItem) ([]byte, error) {
	sub, ok := subscriptionCode(it.Subscription)
	if !ok {
		return nil, fmt.Errorf("invalid subscription %q (RFC 6121 §2.1.2.5)", it.Subscription)
	}
	var flags byte
	if it.Ask {
		flags |= flagAsk
	}
	if it.PendingIn {
		flags |= flagPendingIn
	}
	if it.Approved {
		flags |= flagApproved
	}
	if it.Hidden {
		flags |= flagHidden
	}
	dst = append(dst, encV1, sub, flags)
	dst = binary.AppendUvarint(dst, uint64(len(it.Name)))
	dst = append(dst, it.Name...)
	dst = binary.AppendUvarint(dst, uint64(len(it.Groups)))
	for _, g := range it.Groups {
		dst = binary.AppendUvarint(dst, uint64(len(g)))
		dst = append(dst, g...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(it.PendingInXML)))
	return append(dst, it.PendingInXML...), nil
}

// field reads one uvarint-prefixed field at v[p:] and returns its bounds.
func field(v []byte, p int) (start, end int, ok bool) {
	n, k := binary.Uvarint(v[p:])
	if k <= 0 || n > uint64(len(v)-p-k) {
		return 0, 0, false
	}
	start = p + k
	return start, start + int(n), true
}

// decodeRosterItem decodes the item stored under key k with value v,
// copying everything out of bbolt memory. The JID, Name and Groups are
// substrings of one string built in scratch, which is returned for reuse:
// a roster read costs two allocations per item (that string and the Groups
// slice) however many groups it has.
func decodeRosterItem(k, v, scratch []byte) (RosterItem, []byte, error) {
	bad := func(why string) (RosterItem, []byte, error) {
		return RosterItem{}, scratch, fmt.Errorf("roster item %q: %s", k, why)
	}
	if len(v) < 3 || v[0] != encV1 {
		return bad(fmt.Sprintf("unknown encoding %v", versionOf(v)))
	}
	if int(v[1]) >= len(subscriptions) {
		return bad("bad subscription code")
	}
	it := RosterItem{
		Subscription: subscriptions[v[1]],
		Ask:          v[2]&flagAsk != 0,
		PendingIn:    v[2]&flagPendingIn != 0,
		Approved:     v[2]&flagApproved != 0,
		Hidden:       v[2]&flagHidden != 0,
	}
	// First pass: bounds of the strings section v[base:p].
	const base = 3
	_, p, ok := field(v, base)
	if !ok {
		return bad("truncated name")
	}
	ng, n := binary.Uvarint(v[p:])
	if n <= 0 || ng > uint64(len(v)-p) { // each group takes at least one byte
		return bad("bad group count")
	}
	p += n
	groupsAt := p
	for i := uint64(0); i < ng; i++ {
		if _, p, ok = field(v, p); !ok {
			return bad("truncated group")
		}
	}
	xs, xe, ok := field(v, p)
	if !ok || xe != len(v) {
		return bad("truncated subscribe stanza")
	}
	// Second pass: slice JID, Name and Groups out of one copied string
	// holding k followed by v[base:p]; v offset i is string offset i+off.
	scratch = append(append(scratch[:0], k...), v[base:p]...)
	strs := string(scratch)
	off := len(k) - base
	it.JID = strs[:len(k)]
	ns, ne, _ := field(v, base)
	it.Name = strs[ns+off : ne+off]
	if ng > 0 {
		it.Groups = make([]string, ng)
		p = groupsAt
		for i := range it.Groups {
			var s int
			s, p, _ = field(v, p)
			it.Groups[i] = strs[s+off : p+off]
		}
	}
	if xe > xs {
		it.PendingInXML = append([]byte(nil), v[xs:xe]...)
	}
	return it, scratch, nil
}

func checkUserJID(user, jid string) error {
	if user == "" {
		return errEmptyUser
	}
	if jid == "" {
		return errors.New("store: roster item without JID")
	}
	if len(jid) > bolt.MaxKeySize {
		return fmt.Errorf("store: roster JID of %d bytes is too long", len(jid))
	}
	return nil
}

// Roster returns the user's roster ordered by JID and its version
// (RFC 6121 §2.6). An unknown user has an empty roster at version 0.
func (s *Store) Roster(user string) (items []RosterItem, ver uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		ub := userBucket(tx, user)
		if ub == nil {
			return nil
		}
		ver = readU64(ub, keyRosterVer)
		rb := ub.Bucket(subRoster)
		if rb == nil {
			return nil
		}
		// KeyN walks the bucket's pages, not its values: cheaper than
		// growing items in steps.
		items = make([]RosterItem, 0, rb.Stats().KeyN)
		var scratch []byte
		return rb.ForEach(func(k, v []byte) error {
			var (
				it  RosterItem
				err error
			)
			if it, scratch, err = decodeRosterItem(k, v, scratch); err != nil {
				return err
			}
			items = append(items, it)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: roster of %q: %w", user, err)
	}
	return items, ver, nil
}

// RosterItem returns one contact of the user's roster.
func (s *Store) RosterItem(user, jid string) (RosterItem, bool, error) {
	var (
		it    RosterItem
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		rb := userSub(tx, user, subRoster)
		if rb == nil {
			return nil
		}
		k := []byte(jid)
		v := rb.Get(k)
		if v == nil {
			return nil
		}
		found = true
		var err error
		it, _, err = decodeRosterItem(k, v, nil)
		return err
	})
	if err != nil {
		return RosterItem{}, false, fmt.Errorf("store: roster of %q: %w", user, err)
	}
	return it, found, nil
}

// RosterVersion returns the user's roster version: 0 until the first
// change, then bumped by one on every change (RFC 6121 §2.6.1: the value is
// opaque to clients, we only need it to change whenever the roster does).
func (s *Store) RosterVersion(user string) (uint64, error) {
	var ver uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		ver = readU64(userBucket(tx, user), keyRosterVer)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: roster version of %q: %w", user, err)
	}
	return ver, nil
}

// PutRosterItem stores it under it.JID and returns the new roster version.
// Writing an item identical to the stored one is not a change and leaves
// the version alone.
func (s *Store) PutRosterItem(user string, it RosterItem) (ver uint64, err error) {
	_, ver, err = s.UpdateRosterItem(user, it.JID, func(RosterItem, bool) (RosterItem, bool) {
		return it, true
	})
	return ver, err
}

// DeleteRosterItem removes jid from the roster and returns the roster
// version. Deleting an absent item is not an error and not a change.
func (s *Store) DeleteRosterItem(user, jid string) (ver uint64, err error) {
	_, ver, err = s.UpdateRosterItem(user, jid, func(it RosterItem, _ bool) (RosterItem, bool) {
		return it, false
	})
	return ver, err
}

// UpdateRosterItem runs fn on the current item (found=false: zero item with
// JID set) inside one write transaction, so the read-modify-write of the
// subscription state machine (RFC 6121 §3, Appendix A) cannot interleave
// with another update of the same roster. fn returns the new item and
// whether to keep it (false deletes it); its JID is forced to jid. fn must
// not call the Store (it would deadlock); it runs exactly once.
//
// It returns the item fn returned and the roster version after the update,
// which is bumped only when the stored roster actually changed.
func (s *Store) UpdateRosterItem(user, jid string, fn func(it RosterItem, found bool) (RosterItem, bool)) (RosterItem, uint64, error) {
	if err := checkUserJID(user, jid); err != nil {
		return RosterItem{}, 0, err
	}
	var (
		out RosterItem
		ver uint64
	)
	key := []byte(jid)
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur := RosterItem{JID: jid}
		var old []byte
		rb := userSub(tx, user, subRoster)
		if rb != nil {
			if old = rb.Get(key); old != nil {
				var err error
				if cur, _, err = decodeRosterItem(key, old, nil); err != nil {
					return err
				}
			}
		}
		next, keep := fn(cur, old != nil)
		next.JID = jid
		out = next

		var enc []byte
		if keep {
			var err error
			if enc, err = appendRosterItem(nil, next); err != nil {
				return err
			}
			if bytes.Equal(enc, old) {
				ver = readU64(userBucket(tx, user), keyRosterVer)
				return nil
			}
		} else if old == nil {
			ver = readU64(userBucket(tx, user), keyRosterVer)
			return nil
		}

		ub, rb, err := createUserSub(tx, user, subRoster)
		if err != nil {
			return err
		}
		if keep {
			err = rb.Put(key, enc)
		} else {
			err = rb.Delete(key)
		}
		if err != nil {
			return err
		}
		ver = readU64(ub, keyRosterVer) + 1
		return ub.Put(keyRosterVer, appendU64(nil, ver))
	})
	if err != nil {
		return RosterItem{}, 0, fmt.Errorf("store: update roster of %q item %q: %w", user, jid, err)
	}
	return out, ver, nil
}
