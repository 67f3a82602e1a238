package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Names inside a per-user bucket users/<user>. Keys and sub-bucket names
// share one namespace in bbolt, so they must all differ.
var (
	subRoster  = []byte("roster")  // bucket: bare JID -> roster item (v1)
	subOffline = []byte("offline") // bucket: big-endian Seq -> offline message (v1)
	subPrivate = []byte("private") // bucket: "{ns}local" -> v1 XML
	subBlocked = []byte("blocked") // bucket: bare JID -> empty

	keyRosterVer  = []byte("roster.ver")  // uint64 BE
	keyOfflineLen = []byte("offline.len") // uint64 BE, messages in subOffline
	keyVCard      = []byte("vcard")       // v1 XML
	keyLast       = []byte("last")        // v1 time + status
)

// encV1 is the leading version byte of every value this package encodes
// (except the empty markers in subBlocked), so a later format can be told
// apart without a migration of old records.
const encV1 = 1

var errEmptyUser = errors.New("store: empty user")

// userBucket returns users/<user>, or nil when the user has no data.
func userBucket(tx *bolt.Tx, user string) *bolt.Bucket {
	return tx.Bucket(bucketUsers).Bucket([]byte(user))
}

// createUserBucket returns users/<user>, creating it on first write.
func createUserBucket(tx *bolt.Tx, user string) (*bolt.Bucket, error) {
	b, err := bucketIn(tx.Bucket(bucketUsers), []byte(user))
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", user, err)
	}
	return b, nil
}

// userSub returns users/<user>/<name>, or nil.
func userSub(tx *bolt.Tx, user string, name []byte) *bolt.Bucket {
	if ub := userBucket(tx, user); ub != nil {
		return ub.Bucket(name)
	}
	return nil
}

// createUserSub returns users/<user> and users/<user>/<name>, creating them
// on first write.
func createUserSub(tx *bolt.Tx, user string, name []byte) (*bolt.Bucket, *bolt.Bucket, error) {
	ub, err := createUserBucket(tx, user)
	if err != nil {
		return nil, nil, err
	}
	b, err := bucketIn(ub, name)
	if err != nil {
		return nil, nil, fmt.Errorf("user %q: %s: %w", user, name, err)
	}
	return ub, b, nil
}

// bucketIn opens or creates parent/name. It looks first because
// CreateBucketIfNotExists copies the name and searches twice even when the
// bucket exists, which on the PushOffline path was a quarter of all
// allocations.
func bucketIn(parent *bolt.Bucket, name []byte) (*bolt.Bucket, error) {
	if b := parent.Bucket(name); b != nil {
		return b, nil
	}
	return parent.CreateBucketIfNotExists(name)
}

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }
func getU64(b []byte) uint64                { return binary.BigEndian.Uint64(b) }

// readU64 decodes an optional counter; absent means 0.
func readU64(b *bolt.Bucket, key []byte) uint64 {
	if b == nil {
		return 0
	}
	if v := b.Get(key); len(v) == 8 {
		return getU64(v)
	}
	return 0
}

// timeLen is the encoded size of a time: Unix seconds then nanoseconds.
// Seconds rather than UnixNano so that the zero time (year 1) round-trips.
const timeLen = 12

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

func getTime(b []byte) time.Time {
	return time.Unix(int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint32(b[8:]))).UTC()
}

// encodeDoc prefixes a small document with its version byte.
func encodeDoc(doc []byte) []byte {
	v := make([]byte, 0, 1+len(doc))
	return append(append(v, encV1), doc...)
}

// decodeDoc copies a small document out of bbolt memory.
func decodeDoc(what string, v []byte) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if len(v) < 1 || v[0] != encV1 {
		return nil, fmt.Errorf("%s: unknown encoding %v", what, versionOf(v))
	}
	return append([]byte{}, v[1:]...), nil
}

func versionOf(v []byte) any {
	if len(v) == 0 {
		return "(empty)"
	}
	return v[0]
}
