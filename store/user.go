package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Private returns the user's XEP-0049 private XML stored under key, which
// is "{namespace}localname" of the stored element (XEP-0049 §2: one
// document per qualified name). It returns nil when absent.
func (s *Store) Private(user, key string) ([]byte, error) {
	var doc []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := userSub(tx, user, subPrivate)
		if b == nil {
			return nil
		}
		var err error
		doc, err = decodeDoc("private "+key, b.Get([]byte(key)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: private of %q: %w", user, err)
	}
	return doc, nil
}

// SetPrivate stores xml under key, replacing what was there; nil xml
// deletes it.
func (s *Store) SetPrivate(user, key string, xml []byte) error {
	if user == "" {
		return errEmptyUser
	}
	if key == "" {
		return errors.New("store: private XML without key")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if xml == nil {
			if b := userSub(tx, user, subPrivate); b != nil {
				return b.Delete([]byte(key))
			}
			return nil
		}
		_, b, err := createUserSub(tx, user, subPrivate)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), encodeDoc(xml))
	})
	if err != nil {
		return fmt.Errorf("store: set private of %q key %q: %w", user, key, err)
	}
	return nil
}

// VCard returns the user's raw XEP-0054 <vCard/> XML, nil when absent.
func (s *Store) VCard(user string) ([]byte, error) {
	var doc []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		ub := userBucket(tx, user)
		if ub == nil {
			return nil
		}
		var err error
		doc, err = decodeDoc("vcard", ub.Get(keyVCard))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: vcard of %q: %w", user, err)
	}
	return doc, nil
}

// SetVCard stores the user's vCard (XEP-0054 §3.2); nil xml deletes it.
func (s *Store) SetVCard(user string, xml []byte) error {
	if user == "" {
		return errEmptyUser
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if xml == nil {
			if ub := userBucket(tx, user); ub != nil {
				return ub.Delete(keyVCard)
			}
			return nil
		}
		ub, err := createUserBucket(tx, user)
		if err != nil {
			return err
		}
		return ub.Put(keyVCard, encodeDoc(xml))
	})
	if err != nil {
		return fmt.Errorf("store: set vcard of %q: %w", user, err)
	}
	return nil
}

// LastActivity returns when the user last logged out and the status of
// their last unavailable presence (XEP-0012 §4). The time is zero when
// unknown.
func (s *Store) LastActivity(user string) (t time.Time, status string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		ub := userBucket(tx, user)
		if ub == nil {
			return nil
		}
		v := ub.Get(keyLast)
		if v == nil {
			return nil
		}
		if len(v) < 1+timeLen || v[0] != encV1 {
			return fmt.Errorf("last activity: unknown encoding %v", versionOf(v))
		}
		t, status = getTime(v[1:]), string(v[1+timeLen:])
		return nil
	})
	if err != nil {
		return time.Time{}, "", fmt.Errorf("store: last activity of %q: %w", user, err)
	}
	return t, status, nil
}

// SetLastActivity records the user's logout time and status.
func (s *Store) SetLastActivity(user string, t time.Time, status string) error {
	if user == "" {
		return errEmptyUser
	}
	v := make([]byte, 0, 1+timeLen+len(status))
	v = append(appendTime(append(v, encV1), t), status...)
	// Batch: a mass disconnect (network outage, restart of a proxy) writes
	// thousands of these at once; they share fsyncs instead of queueing
	// one by one behind the writer lock. The function is idempotent, as
	// Batch requires.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		ub, err := createUserBucket(tx, user)
		if err != nil {
			return err
		}
		return ub.Put(keyLast, v)
	})
	if err != nil {
		return fmt.Errorf("store: set last activity of %q: %w", user, err)
	}
	return nil
}

// BlockList returns the JIDs the user blocks (XEP-0191 §3.2), sorted.
func (s *Store) BlockList(user string) ([]string, error) {
	var jids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := userSub(tx, user, subBlocked)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			jids = append(jids, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: block list of %q: %w", user, err)
	}
	return jids, nil
}

// Block adds jids to the user's block list (XEP-0191 §3.3); blocking a JID
// twice is not an error.
func (s *Store) Block(user string, jids ...string) error {
	if user == "" {
		return errEmptyUser
	}
	if len(jids) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		_, b, err := createUserSub(tx, user, subBlocked)
		if err != nil {
			return err
		}
		for _, j := range jids {
			if j == "" {
				return errors.New("empty JID")
			}
			if err := b.Put([]byte(j), []byte{}); err != nil {
				return fmt.Errorf("%q: %w", j, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: block for %q: %w", user, err)
	}
	return nil
}

// Unblock removes jids from the user's block list; with no jids it empties
// the list (XEP-0191 §3.4 "unblock all").
func (s *Store) Unblock(user string, jids ...string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		ub := userBucket(tx, user)
		if ub == nil {
			return nil
		}
		if len(jids) == 0 {
			err := ub.DeleteBucket(subBlocked)
			if errors.Is(err, berrors.ErrBucketNotFound) {
				return nil
			}
			return err
		}
		b := ub.Bucket(subBlocked)
		if b == nil {
			return nil
		}
		for _, j := range jids {
			if j == "" {
				continue
			}
			if err := b.Delete([]byte(j)); err != nil {
				return fmt.Errorf("%q: %w", j, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: unblock for %q: %w", user, err)
	}
	return nil
}

// DeleteUser removes every per-user record above: roster and its version,
// offline queue, private XML, vCard, last activity and block list. It is
// one bucket deletion, for account removal and GDPR erasure. Data other
// packages keep in Put buckets is theirs to delete. Deleting an unknown
// user is not an error.
func (s *Store) DeleteUser(user string) error {
	if user == "" {
		return errEmptyUser
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketUsers).DeleteBucket([]byte(user))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete user %q: %w", user, err)
	}
	return nil
}
