package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Holds are keyed case 0 subject, so one case's holds are one prefix
// (ReleaseHold) and adding the same case and subject again updates the
// reason. The value is v1 | time | uvarint len | reason | uvarint len | by.
// There are few holds, so HeldBy walks them all rather than keep a second
// index that could disagree.

var errBadHold = errors.New("store: hold needs a case and a subject without NUL bytes")

// AddHold stores a hold durably. A zero Created is now.
func (s *Store) AddHold(h Hold) error {
	if h.Case == "" || h.Subject == "" || strings.IndexByte(h.Case, 0) >= 0 || strings.IndexByte(h.Subject, 0) >= 0 {
		return errBadHold
	}
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	key := append(append([]byte(h.Case), 0), h.Subject...)
	val := appendTime([]byte{encV1}, h.Created)
	val = appendString(val, h.Reason)
	val = appendString(val, h.By)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHolds).Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("store: add hold %q on %q: %w", h.Case, h.Subject, err)
	}
	return nil
}

// Holds lists every hold, sorted by case then subject.
func (s *Store) Holds() ([]Hold, error) {
	var holds []Hold
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHolds).ForEach(func(k, v []byte) error {
			h, err := decodeHold(k, v)
			if err != nil {
				return err
			}
			holds = append(holds, h)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: holds: %w", err)
	}
	return holds, nil
}

// ReleaseHold removes every hold of a case; it returns how many.
func (s *Store) ReleaseHold(caseName string) (int, error) {
	prefix := append([]byte(caseName), 0)
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		c := tx.Bucket(bucketHolds).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: release hold %q: %w", caseName, err)
	}
	return n, nil
}

// HeldBy lists the cases holding subject's archive (nil: not held).
func (s *Store) HeldBy(subject string) ([]string, error) {
	var cases []string
	err := s.db.View(func(tx *bolt.Tx) error {
		cases = heldBy(tx, subject)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: holds on %q: %w", subject, err)
	}
	return cases, nil
}

func heldBy(tx *bolt.Tx, subject string) []string {
	var cases []string
	c := tx.Bucket(bucketHolds).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if i := bytes.IndexByte(k, 0); i >= 0 && string(k[i+1:]) == subject {
			cases = append(cases, string(k[:i]))
		}
	}
	return cases
}

func decodeHold(k, v []byte) (Hold, error) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(v) < 1+timeLen || v[0] != encV1 {
		return Hold{}, fmt.Errorf("hold %q: unknown encoding %v", k, versionOf(v))
	}
	h := Hold{Case: string(k[:i]), Subject: string(k[i+1:]), Created: getTime(v[1:])}
	rest := v[1+timeLen:]
	var ok bool
	if h.Reason, rest, ok = getString(rest); !ok {
		return Hold{}, fmt.Errorf("hold %q: corrupt reason", k)
	}
	if h.By, _, ok = getString(rest); !ok {
		return Hold{}, fmt.Errorf("hold %q: corrupt author", k)
	}
	return h, nil
}

// appendString appends uvarint len | s.
func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// getString reads what appendString wrote.
func getString(b []byte) (string, []byte, bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
}
