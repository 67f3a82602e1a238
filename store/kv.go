package store

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The generic key/value space is kv/<bucket>/<key>: nested under one
// top-level bucket so names chosen by other packages (muc, ldapsync, the
// SCRAM cache) can never collide with this package's own buckets.

var errEmptyBucket = errors.New("store: empty bucket name")

func kvBucket(tx *bolt.Tx, bucket string) *bolt.Bucket {
	return tx.Bucket(bucketKV).Bucket([]byte(bucket))
}

// Get returns a copy of the value under key in bucket, nil when absent. A
// stored empty value comes back as a non-nil empty slice.
func (s *Store) Get(bucket, key string) ([]byte, error) {
	var val []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := kvBucket(tx, bucket); b != nil {
			val = bytes.Clone(b.Get([]byte(key)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: get %s/%s: %w", bucket, key, err)
	}
	return val, nil
}

// Put stores val under key in bucket, creating the bucket on first use.
func (s *Store) Put(bucket, key string, val []byte) error {
	if bucket == "" {
		return errEmptyBucket
	}
	if val == nil {
		val = []byte{} // bbolt stores nil as empty anyway; be explicit
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketKV).CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), val)
	})
	if err != nil {
		return fmt.Errorf("store: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Delete removes key from bucket; an absent key is not an error.
func (s *Store) Delete(bucket, key string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if b := kvBucket(tx, bucket); b != nil {
			return b.Delete([]byte(key))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// forEachChunk is how many entries ForEach copies per read transaction.
const forEachChunk = 256

// ForEach calls fn for each key of bucket in key order, stopping at the
// first error, which it returns. val is a copy that fn may keep.
//
// fn runs outside any transaction, so it may call the Store, including
// Put and Delete on the same bucket. The walk reads chunks of entries in
// short read transactions rather than one snapshot: a long walk then never
// pins old pages nor blocks the file from growing. Keys present for the
// whole walk are visited exactly once; keys added or removed during it may
// or may not be.
func (s *Store) ForEach(bucket string, fn func(key string, val []byte) error) error {
	type entry struct {
		key string
		val []byte
	}
	var (
		chunk = make([]entry, 0, forEachChunk)
		after []byte // last key visited; the next chunk starts past it
		done  bool
	)
	for !done {
		chunk = chunk[:0]
		err := s.db.View(func(tx *bolt.Tx) error {
			b := kvBucket(tx, bucket)
			if b == nil {
				done = true
				return nil
			}
			c := b.Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && len(chunk) < forEachChunk; k, v = c.Next() {
				if v == nil { // a nested bucket, not a value
					continue
				}
				chunk = append(chunk, entry{string(k), bytes.Clone(v)})
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: for each in %s: %w", bucket, err)
		}
		for _, e := range chunk {
			if err := fn(e.key, e.val); err != nil {
				return err
			}
		}
		if len(chunk) > 0 {
			after = []byte(chunk[len(chunk)-1].key)
		}
	}
	return nil
}
