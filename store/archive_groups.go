package store

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// RecordArchiveGroups records the directory groups of several archive
// owners (bare JID -> groups) where they differ, as a set, from what is
// recorded, and returns how many it changed. Retention applies group rules
// with these groups once the directory no longer knows the person, so they
// must be the last groups the directory gave, whoever asks first.
//
// It is meant to be called often: the comparison is one read transaction,
// and the write transaction (with its fsync) happens only when something
// changed. With create false an owner without an archive is left alone (a
// directory sync names many people who never wrote a message); the message
// path passes true, since the owner's first record may still be queued in
// the archive writer, which keeps the recorded groups when it adds it.
func (s *Store) RecordArchiveGroups(groups map[string][]string, create bool) (int, error) {
	var changed []string
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		changed, err = groupsToRecord(tx.Bucket(bucketArcOwner), groups, create, changed)
		return err
	})
	if err != nil || len(changed) == 0 {
		return 0, wrapGroupsErr(err)
	}
	n := 0
	err = s.db.Update(func(tx *bolt.Tx) error {
		arco := tx.Bucket(bucketArcOwner)
		// Again under the write lock: a purge or an erasure may have
		// changed the meta since the read.
		todo, err := groupsToRecord(arco, groups, create, changed[:0])
		if err != nil {
			return err
		}
		n = 0
		for _, owner := range todo {
			m, err := getArcOwner(arco, owner)
			if err != nil {
				return fmt.Errorf("%s: %w", owner, err)
			}
			m.groups = encodeGroups(groups[owner])
			if err := arco.Put([]byte(owner), m.appendTo(nil)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, wrapGroupsErr(err)
	}
	return n, nil
}

func wrapGroupsErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: record archive groups: %w", err)
}

// groupsToRecord appends to dst the owners whose recorded groups differ
// from groups, sorted so that a run is reproducible.
func groupsToRecord(arco *bolt.Bucket, groups map[string][]string, create bool, dst []string) ([]string, error) {
	for owner, want := range groups {
		if owner == "" {
			return nil, errEmptyUser
		}
		v := arco.Get([]byte(owner))
		if v == nil {
			// Nothing recorded and nothing to record is no change either.
			if create && len(want) > 0 {
				dst = append(dst, owner)
			}
			continue
		}
		m, err := decodeArcOwner(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", owner, err)
		}
		have, err := decodeGroups(m.groups)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", owner, err)
		}
		if !sameGroups(have, want) {
			dst = append(dst, owner)
		}
	}
	slices.Sort(dst)
	return dst, nil
}

// sameGroups compares two group lists as sets: directories do not promise
// an order, and a reordering is no change of membership.
func sameGroups(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if slices.Equal(a, b) {
		return true
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
