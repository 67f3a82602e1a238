// Package store keeps ownChat's durable state in one bbolt file,
// <data_dir>/ownchat.db: rosters, offline messages, small per-user
// documents, and a generic key/value space for other packages.
//
// # Durability
//
// bbolt fsyncs every commit (NoSync stays false), so a call that returned
// nil has survived kill -9 and power loss. Offline pushes, the one write on
// a hot path, go through bbolt's Batch so concurrent pushes share one
// commit and one fsync. Every []byte returned is a copy: bbolt memory is
// valid only inside its transaction.
//
// Only one process may hold the file: Open waits one second for bbolt's
// flock, then fails with "store: ... is locked by another xmppd".
//
// # Bucket layout
//
// Users are keyed by their normalized username (the JID localpart), roster
// and block list entries by bare JID; the store normalizes neither. All of
// a user's data lives in one nested bucket, so DeleteUser is a single
// bucket deletion.
//
//	path                       key              value
//	meta/                      "schema"         uint64 BE schema version
//	users/<user>/              "roster.ver"     uint64 BE roster version (RFC 6121 §2.6)
//	users/<user>/              "offline.len"    uint64 BE number of messages in offline/
//	users/<user>/              "vcard"          v1 | raw <vCard/> XML (XEP-0054)
//	users/<user>/              "last"           v1 | time | status (XEP-0012)
//	users/<user>/roster/       bare JID         v1 roster item, see below
//	users/<user>/offline/      Seq uint64 BE    v1 | time | stanza (XEP-0160)
//	users/<user>/private/      "{ns}local"      v1 | XML (XEP-0049)
//	users/<user>/blocked/      bare JID         empty (XEP-0191)
//	kv/<bucket>/               key              caller's bytes, unversioned
//
// "v1" is a leading version byte (1) so that a later encoding can coexist
// with old records. "time" is 12 bytes: Unix seconds (int64 BE) then
// nanoseconds (uint32 BE); times come back in UTC.
//
// A roster item is encoded without its JID, which is the key:
//
//	v1 | subscription (0 none, 1 to, 2 from, 3 both) | flags (1 ask, 2 pendingIn, 4 approved)
//	   | uvarint len | name | uvarint count | count × (uvarint len | group)
//	   | uvarint len | pending subscribe stanza
//
// Offline Seq comes from the offline bucket's own sequence
// (Bucket.NextSequence). The bucket is kept when it empties so that Seq
// never goes back while the user exists; "offline.len" is kept beside it
// so PushOffline checks the bound without walking the queue.
//
// # Schema versions
//
// The version in meta/schema is checked on every Open; older files are
// migrated in the same transaction that records the new version, newer
// files are refused.
//
//	0  empty file (never recorded)
//	1  initial layout above
package store
