package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OfflineMessage is a stanza kept for a user who was unavailable
// (XEP-0160). Seq increases by one per stored message of that user and is
// never reused while the user exists, so DeleteOffline(upTo) after a
// successful delivery cannot remove a message that arrived meanwhile.
type OfflineMessage struct {
	Seq    uint64
	Stamp  time.Time // UTC; for the XEP-0203 delay element
	Stanza []byte
}

// ErrOfflineFull is returned by PushOffline when the user's queue is at its
// bound; XEP-0160 §3 then has the server bounce the message with
// <service-unavailable/>.
var ErrOfflineFull = errors.New("store: offline queue full")

// PushOffline appends stanza to the user's offline queue unless it already
// holds max messages (ErrOfflineFull). max <= 0 stores nothing: a missing
// limit must not turn into unbounded disk use. The stanza is durable when
// PushOffline returns nil.
//
// Pushes go through bbolt's Batch: concurrent pushes (a MUC or a broadcast
// to many offline users) share one transaction and one fsync.
func (s *Store) PushOffline(user string, stanza []byte, stamp time.Time, max int) error {
	_, err := s.pushOffline(user, stanza, stamp, max)
	return err
}

// pushOffline is PushOffline that also reports the Seq given to the message.
func (s *Store) pushOffline(user string, stanza []byte, stamp time.Time, max int) (uint64, error) {
	return s.pushOfflineWith(user, stanza, stamp, max, nil)
}

// pushOfflineWith is pushOffline that also runs also(tx) in the push's
// transaction when the message is stored (PushOfflineArchived's records).
// also may run more than once, each time in a fresh transaction.
func (s *Store) pushOfflineWith(user string, stanza []byte, stamp time.Time, max int, also func(*bolt.Tx) error) (uint64, error) {
	if user == "" {
		return 0, errEmptyUser
	}
	if max <= 0 {
		return 0, ErrOfflineFull
	}
	val := make([]byte, 0, 1+timeLen+len(stanza))
	val = appendTime(append(val, encV1), stamp)
	val = append(val, stanza...)

	// Batch may run fn more than once (each time in a new transaction, when
	// another call of the batch fails), so fn resets its results first.
	// A full queue is reported through full, not as an error of fn: an
	// error would roll back the whole batch and make bbolt re-run every
	// other push of it.
	var (
		seq  uint64
		full bool
	)
	err := s.db.Batch(func(tx *bolt.Tx) error {
		seq, full = 0, false
		ub, ob, err := createUserSub(tx, user, subOffline)
		if err != nil {
			return err
		}
		n := readU64(ub, keyOfflineLen)
		if n >= uint64(max) {
			full = true
			return nil
		}
		if seq, err = ob.NextSequence(); err != nil {
			return err
		}
		// bbolt keeps values until commit: key and counter get fresh
		// memory, one allocation for both.
		kc := make([]byte, 0, 16)
		kc = appendU64(appendU64(kc, seq), n+1)
		if err := ob.Put(kc[:8], val); err != nil {
			return err
		}
		if err := ub.Put(keyOfflineLen, kc[8:]); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: push offline for %q: %w", user, err)
	}
	if full {
		return 0, ErrOfflineFull
	}
	return seq, nil
}

// Offline returns the user's offline messages, oldest first.
func (s *Store) Offline(user string) ([]OfflineMessage, error) {
	var msgs []OfflineMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		ub := userBucket(tx, user)
		if ub == nil {
			return nil
		}
		ob := ub.Bucket(subOffline)
		if ob == nil {
			return nil
		}
		msgs = make([]OfflineMessage, 0, readU64(ub, keyOfflineLen))
		return ob.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) < 1+timeLen || v[0] != encV1 {
				return fmt.Errorf("offline message %x: unknown encoding %v", k, versionOf(v))
			}
			msgs = append(msgs, OfflineMessage{
				Seq:    getU64(k),
				Stamp:  getTime(v[1:]),
				Stanza: append([]byte(nil), v[1+timeLen:]...),
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: offline of %q: %w", user, err)
	}
	return msgs, nil
}

// DeleteOffline deletes the user's offline messages with Seq <= upTo, the
// ones the server has just delivered (XEP-0160 §3).
func (s *Store) DeleteOffline(user string, upTo uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		ub := userBucket(tx, user)
		if ub == nil {
			return nil
		}
		ob := ub.Bucket(subOffline)
		if ob == nil {
			return nil
		}
		n := readU64(ub, keyOfflineLen)
		deleted := uint64(0)
		// Re-seek after each delete: Cursor.Next after Cursor.Delete may
		// skip an element in bbolt.
		c := ob.Cursor()
		for k, _ := c.First(); len(k) == 8 && getU64(k) <= upTo; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			deleted++
		}
		if deleted == 0 {
			return nil
		}
		// The empty bucket is kept: its sequence keeps Seq increasing.
		return ub.Put(keyOfflineLen, appendU64(nil, n-min(n, deleted)))
	})
	if err != nil {
		return fmt.Errorf("store: delete offline of %q: %w", user, err)
	}
	return nil
}

// OfflineCount returns how many offline messages the user has; it reads a
// counter, not the queue.
func (s *Store) OfflineCount(user string) (int, error) {
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = readU64(userBucket(tx, user), keyOfflineLen)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: offline count of %q: %w", user, err)
	}
	return int(n), nil
}
