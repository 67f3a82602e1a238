package store

import (
	"bytes"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// RenameUser moves everything stored for the user with bare JID oldJID
// to newJID (both user@domain, normalized), in one transaction: the
// directory renamed them but kept their identity (objectGUID, entryUUID),
// so their roster, offline messages, documents and history are theirs
// under the new name. It moves
//
//   - the bucket users/<old> (roster, offline queue with its sequence,
//     vCard, private XML, block list, last activity, PEP nodes);
//   - every other user's roster item and block list entry for oldJID,
//     bumping the roster version of each roster changed (RFC 6121 §2.6);
//   - the archive of oldJID: its records, its with-index keys and its
//     owner meta (counters, recorded groups);
//   - legal holds on oldJID.
//
// Where the new name already holds data (someone logged in under it
// before the rename was applied), the new name's data wins key by key,
// and old offline messages are queued after the new ones. Records in
// other users' archives keep "with" = oldJID: they record what was true
// when the message was sent.
//
// Archive records still queued are committed first (FlushArchive).
func (s *Store) RenameUser(oldJID, newJID string) error {
	oldUser, _, ok1 := strings.Cut(oldJID, "@")
	newUser, _, ok2 := strings.Cut(newJID, "@")
	if !ok1 || !ok2 || oldUser == "" || newUser == "" || strings.IndexByte(oldJID, 0) >= 0 || strings.IndexByte(newJID, 0) >= 0 {
		return fmt.Errorf("store: rename %q to %q: want two bare JIDs", oldJID, newJID)
	}
	if oldJID == newJID {
		return nil
	}
	// Queued records of the old owner must be in the tree to be moved.
	// A failure reported here concerns earlier batches, not the rename.
	_ = s.FlushArchive()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := renameUserBucket(tx, oldUser, newUser); err != nil {
			return err
		}
		if err := renameContacts(tx, oldJID, newJID); err != nil {
			return err
		}
		if err := renameArchiveOwner(tx, oldJID, newJID); err != nil {
			return err
		}
		return renameHolds(tx, oldJID, newJID)
	})
	if err != nil {
		return fmt.Errorf("store: rename %q to %q: %w", oldJID, newJID, err)
	}
	return nil
}

func renameUserBucket(tx *bolt.Tx, oldUser, newUser string) error {
	users := tx.Bucket(bucketUsers)
	src := users.Bucket([]byte(oldUser))
	if src == nil {
		return nil
	}
	dst, err := bucketIn(users, []byte(newUser))
	if err != nil {
		return err
	}
	if err := mergeBucket(dst, src); err != nil {
		return err
	}
	return users.DeleteBucket([]byte(oldUser))
}

// mergeBucket copies src into dst recursively without overwriting dst's
// keys; the offline queue is appended (it is ordered by sequence).
func mergeBucket(dst, src *bolt.Bucket) error {
	if dst.Sequence() < src.Sequence() {
		if err := dst.SetSequence(src.Sequence()); err != nil {
			return err
		}
	}
	return src.ForEach(func(k, v []byte) error {
		if v != nil {
			if bytes.Equal(k, keyOfflineLen) || dst.Get(k) != nil {
				return nil // offline.len is recounted below
			}
			return dst.Put(k, v)
		}
		sub := src.Bucket(k)
		if bytes.Equal(k, subOffline) {
			return appendOffline(dst, sub)
		}
		d, err := bucketIn(dst, k)
		if err != nil {
			return err
		}
		return mergeBucket(d, sub)
	})
}

// appendOffline queues the messages of src after those of users/<new>
// (ub) and sets offline.len.
func appendOffline(ub, src *bolt.Bucket) error {
	dst := ub.Bucket(subOffline)
	if dst == nil {
		var err error
		if dst, err = ub.CreateBucket(subOffline); err != nil {
			return err
		}
		// The new bucket continues the old sequence: ids never go back.
		if err := dst.SetSequence(src.Sequence()); err != nil {
			return err
		}
	}
	n := readU64(ub, keyOfflineLen)
	if err := src.ForEach(func(_, v []byte) error {
		seq, err := dst.NextSequence()
		if err != nil {
			return err
		}
		n++
		return dst.Put(appendU64(nil, seq), v)
	}); err != nil {
		return err
	}
	return ub.Put(keyOfflineLen, appendU64(nil, n))
}

// renameContacts re-keys every other user's roster item and block list
// entry for oldJID.
func renameContacts(tx *bolt.Tx, oldJID, newJID string) error {
	oldK, newK := []byte(oldJID), []byte(newJID)
	users := tx.Bucket(bucketUsers)
	var owners [][]byte
	if err := users.ForEach(func(k, v []byte) error {
		if v == nil {
			owners = append(owners, k)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, u := range owners {
		ub := users.Bucket(u)
		if r := ub.Bucket(subRoster); r != nil {
			if v := r.Get(oldK); v != nil {
				if r.Get(newK) == nil {
					if err := r.Put(newK, v); err != nil {
						return err
					}
				}
				if err := r.Delete(oldK); err != nil {
					return err
				}
				if err := ub.Put(keyRosterVer, appendU64(nil, readU64(ub, keyRosterVer)+1)); err != nil {
					return err
				}
			}
		}
		if b := ub.Bucket(subBlocked); b != nil && b.Get(oldK) != nil {
			if err := b.Put(newK, []byte{}); err != nil {
				return err
			}
			if err := b.Delete(oldK); err != nil {
				return err
			}
		}
	}
	return nil
}

// renameArchiveOwner moves the archive keys "old 0 ..." (records and the
// with-index) to "new 0 ..." and merges the owner meta.
func renameArchiveOwner(tx *bolt.Tx, oldJID, newJID string) error {
	arco := tx.Bucket(bucketArcOwner)
	if arco == nil {
		return nil // a file from before the archive (schema 1)
	}
	om, err := getArcOwner(arco, oldJID)
	if err != nil {
		return err
	}
	if om.count == 0 && om.last == 0 && arco.Get([]byte(oldJID)) == nil {
		return nil
	}
	for _, b := range []*bolt.Bucket{tx.Bucket(bucketArc), tx.Bucket(bucketArcWith)} {
		if err := movePrefix(b, append([]byte(oldJID), 0), append([]byte(newJID), 0)); err != nil {
			return err
		}
	}
	nm, err := getArcOwner(arco, newJID)
	if err != nil {
		return err
	}
	if nm.count == 0 && nm.last == 0 {
		nm = om
	} else {
		nm.count += om.count
		if om.first != 0 && (nm.first == 0 || om.first < nm.first) {
			nm.first = om.first
		}
		nm.last = max(nm.last, om.last)
		if len(nm.groups) == 0 {
			nm.groups = om.groups
		}
	}
	// appendTo before the delete: groups alias bbolt memory.
	val := nm.appendTo(nil)
	if err := arco.Delete([]byte(oldJID)); err != nil {
		return err
	}
	return arco.Put([]byte(newJID), val)
}

// movePrefix re-keys every key of b starting with from to start with to.
// Keys are collected first: a bbolt cursor must not see its bucket change.
func movePrefix(b *bolt.Bucket, from, to []byte) error {
	if b == nil {
		return nil
	}
	type kv struct{ k, v []byte }
	var moves []kv
	c := b.Cursor()
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, from); k, v = c.Next() {
		moves = append(moves, kv{bytes.Clone(k), bytes.Clone(v)})
	}
	for _, m := range moves {
		if err := b.Delete(m.k); err != nil {
			return err
		}
		nk := append(bytes.Clone(to), m.k[len(from):]...)
		if err := b.Put(nk, m.v); err != nil {
			return err
		}
	}
	return nil
}

func renameHolds(tx *bolt.Tx, oldJID, newJID string) error {
	h := tx.Bucket(bucketHolds)
	if h == nil {
		return nil
	}
	type kv struct{ k, v []byte }
	var moves []kv
	if err := h.ForEach(func(k, v []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 && string(k[i+1:]) == oldJID {
			moves = append(moves, kv{bytes.Clone(k), bytes.Clone(v)})
		}
		return nil
	}); err != nil {
		return err
	}
	for _, m := range moves {
		i := bytes.IndexByte(m.k, 0)
		nk := append(bytes.Clone(m.k[:i+1]), newJID...)
		if err := h.Delete(m.k); err != nil {
			return err
		}
		if err := h.Put(nk, m.v); err != nil {
			return err
		}
	}
	return nil
}
