package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrHeld is returned by DeleteArchive for an archive under legal hold.
// ExpireArchive skips such an archive without error: held data is exempt
// from expiry, so nothing is due.
var ErrHeld = errors.New("store: archive is under legal hold")

// eraseBatch is DeleteArchive's transaction size: big enough to erase a
// large archive in seconds, small enough that a message waiting for the
// write lock waits milliseconds.
const eraseBatch = 1000

// ArchiveOwners lists every archive, sorted by JID.
func (s *Store) ArchiveOwners() ([]ArchiveOwner, error) {
	var owners []ArchiveOwner
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketArcOwner).ForEach(func(k, v []byte) error {
			m, err := decodeArcOwner(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			groups, err := decodeGroups(m.groups)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			owners = append(owners, ArchiveOwner{
				JID: string(k), Kind: m.kind, Count: m.count, First: m.first, Last: m.last, Groups: groups,
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: archive owners: %w", err)
	}
	return owners, nil
}

// SetArchiveGroups records owner's directory groups so retention can still
// apply group rules after the person left the directory.
func (s *Store) SetArchiveGroups(owner string, groups []string) error {
	if owner == "" {
		return errEmptyUser
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		arco := tx.Bucket(bucketArcOwner)
		m, err := getArcOwner(arco, owner)
		if err != nil {
			return err
		}
		m.groups = encodeGroups(groups)
		return arco.Put([]byte(owner), m.appendTo(nil))
	})
	if err != nil {
		return fmt.Errorf("store: set archive groups of %q: %w", owner, err)
	}
	return nil
}

// expiryCutoff is the first id that is not older than before; ok is false
// when nothing is.
func expiryCutoff(before time.Time) (ArchiveID, bool) {
	if !before.After(time.Unix(0, 0)) {
		return 0, false
	}
	return ArchiveIDAt(before), true
}

// CountArchiveBefore counts owner's records older than before (dry runs).
// It walks keys only, no values.
func (s *Store) CountArchiveBefore(owner string, before time.Time) (int, error) {
	cutoff, ok := expiryCutoff(before)
	if !ok {
		return 0, nil
	}
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		ic := newIDCursor(tx, owner, "")
		for id, ok := ic.first(0); ok && id < cutoff; id, ok = ic.next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: count archive of %q: %w", owner, err)
	}
	return n, nil
}

// ExpireArchive deletes owner's records older than before, at most batch
// per transaction, sleeping pause between transactions so that other
// writers get the lock; it returns how many it deleted. An archive under
// legal hold is left alone (0, nil); the hold is checked in every
// transaction, so a hold placed during a long expiry stops it.
func (s *Store) ExpireArchive(ctx context.Context, owner string, before time.Time, batch int, pause time.Duration) (int, error) {
	cutoff, ok := expiryCutoff(before)
	if !ok {
		return 0, nil
	}
	n, _, err := s.deleteArchiveBelow(ctx, owner, cutoff, batch, pause, false)
	if err != nil {
		return n, fmt.Errorf("store: expire archive of %q: %w", owner, err)
	}
	return n, nil
}

// DeleteArchive deletes owner's whole archive (erasure); it returns how
// many records it deleted. An archive under legal hold is not touched:
// the error then wraps ErrHeld.
func (s *Store) DeleteArchive(ctx context.Context, owner string) (int, error) {
	n, held, err := s.deleteArchiveBelow(ctx, owner, math.MaxUint64, eraseBatch, 0, true)
	if err == nil && held {
		err = ErrHeld
	}
	if err != nil {
		return n, fmt.Errorf("store: erase archive of %q: %w", owner, err)
	}
	return n, nil
}

// deleteArchiveBelow deletes owner's records with id < below (all of them
// for MaxUint64, the largest id included) in transactions of at most
// batch records. erase also drops the owner's meta once the archive is
// empty. It stops at the first transaction that finds a hold.
func (s *Store) deleteArchiveBelow(ctx context.Context, owner string, below ArchiveID, batch int, pause time.Duration, erase bool) (total int, held bool, err error) {
	if batch <= 0 {
		batch = eraseBatch
	}
	prefix := append([]byte(owner), 0)
	var key []byte
	for {
		if err := ctx.Err(); err != nil {
			return total, false, err
		}
		var (
			n    int
			more bool
		)
		err := s.db.Update(func(tx *bolt.Tx) error {
			n, more, held = 0, false, false
			if cases := heldBy(tx, owner); len(cases) > 0 {
				held = true
				return nil
			}
			arc, arcw, arco := tx.Bucket(bucketArc), tx.Bucket(bucketArcWith), tx.Bucket(bucketArcOwner)
			c := arc.Cursor()
			// Re-seek after each delete: Cursor.Next after Cursor.Delete
			// may skip an element in bbolt.
			k, v := c.Seek(prefix)
			for ; n < batch && arcKeyBelow(k, prefix, below); k, v = c.Seek(prefix) {
				id := ArchiveID(getU64(k[len(prefix):]))
				_, with, _, err := decodeArcValue(v)
				if err != nil {
					return fmt.Errorf("archive record %v: %w", id, err)
				}
				w := string(with)
				if err := c.Delete(); err != nil {
					return err
				}
				key = appendArcWithKey(key[:0], owner, w, id)
				if err := arcw.Delete(key); err != nil {
					return err
				}
				if bare, ok := bareOf(w); ok {
					key = appendArcWithKey(key[:0], owner, bare, id)
					if err := arcw.Delete(key); err != nil {
						return err
					}
				}
				n++
			}
			more = arcKeyBelow(k, prefix, below)
			if n == 0 {
				if erase {
					return arco.Delete([]byte(owner))
				}
				return nil
			}
			m, err := getArcOwner(arco, owner)
			if err != nil {
				return err
			}
			m.count -= min(m.count, uint64(n))
			if len(k) == len(prefix)+8 && bytes.HasPrefix(k, prefix) {
				m.first = ArchiveID(getU64(k[len(prefix):]))
			} else {
				m.count, m.first, m.last = 0, 0, 0
			}
			if erase && m.count == 0 {
				return arco.Delete([]byte(owner))
			}
			return arco.Put([]byte(owner), m.appendTo(nil))
		})
		total += n
		if err != nil || held || !more {
			return total, held, err
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return total, false, ctx.Err()
			case <-t.C:
			}
		}
	}
}

// arcKeyBelow reports whether k is an arc key of prefix's owner with an id
// below below (or any id when below is MaxUint64).
func arcKeyBelow(k, prefix []byte, below ArchiveID) bool {
	if len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
		return false
	}
	return below == math.MaxUint64 || ArchiveID(getU64(k[len(prefix):])) < below
}

// ExpireOffline deletes user's offline messages stored before before.
func (s *Store) ExpireOffline(user string, before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		ub := userBucket(tx, user)
		if ub == nil {
			return nil
		}
		ob := ub.Bucket(subOffline)
		if ob == nil {
			return nil
		}
		var old [][]byte
		err := ob.ForEach(func(k, v []byte) error {
			if len(v) < 1+timeLen || v[0] != encV1 {
				return fmt.Errorf("offline message %x: unknown encoding %v", k, versionOf(v))
			}
			if getTime(v[1:]).Before(before) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil || len(old) == 0 {
			return err
		}
		for _, k := range old {
			if err := ob.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		// The bucket stays even when empty: its sequence keeps Seq
		// increasing (see DeleteOffline).
		l := readU64(ub, keyOfflineLen)
		return ub.Put(keyOfflineLen, appendU64(nil, l-min(l, uint64(n))))
	})
	if err != nil {
		return 0, fmt.Errorf("store: expire offline of %q: %w", user, err)
	}
	return n, nil
}
