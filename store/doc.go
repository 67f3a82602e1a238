// Package store keeps ownChat's durable state in one bbolt file,
// <data_dir>/ownchat.db: rosters, offline messages, small per-user
// documents, the message archive with its legal holds and audit log, and
// a generic key/value space for other packages.
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
//	meta/                      "arc.last"       uint64 BE highest archive id committed
//	meta/                      "audit.head"     uint64 BE seq | hex hash of the last audit record
//	arc/                       owner 0 id       v1 | flags | kind | uvarint len | with | stanza
//	arcw/                      owner 0 with 0 id  empty (index for With queries)
//	arco/                      owner            v1 | count | first | last | kind | groups
//	holds/                     case 0 subject   v1 | time | uvarint len | reason | uvarint len | by
//	audit/                     seq uint64 BE    v1 | time | actor | action | detail | prev | hash
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
// # Message archive (schema 2)
//
// XEP-0313 archives are three flat buckets rather than a bucket per owner,
// so that bbolt's page cache, free pages and fill factor work for all
// archives at once. Every key starts with the owner's bare JID and a NUL
// byte, which no JID contains: one owner's keys are one contiguous range
// and never interleave with another's ("a@x" 0 ... sorts before "a@x." 0).
// The id is 8 bytes big-endian microseconds (ArchiveID), so each range is in
// time order and a time bound is a seek.
//
//   - arc holds the records. flags bit 0 is Outgoing; kind is 'c' or 'g'.
//   - arcw is the With index, key only. A record whose With has a resource
//     (room archives: room@service/nick) has two entries, one for the full
//     With and one for its bare part, so that a With query with or without
//     a resource is one prefix seek in id order. A page of 50 is a seek
//     and 50 steps in arcw (or arc), then 50 gets in arc.
//   - arco is per owner: count (exact, updated in the transaction that
//     writes or deletes), first and last id, kind, and the directory groups
//     given to SetArchiveGroups (uvarint n | n × (uvarint len | group)),
//     which retention needs after a person left the directory.
//   - meta "arc.last" is the highest id ever committed; Open starts
//     NewArchiveID past it, so ids increase across restarts even when the
//     clock went back.
//
// Records reach arc through one writer goroutine (archive_write.go) that
// commits whatever is queued in one transaction and one fsync, inserting
// each bucket in key order. Deletion (expiry, erasure) goes in
// transactions of a bounded number of records; bbolt then reuses the
// freed pages but leaves their old bytes in the file until reused, which
// is why CompactFile exists (xmppd ctl compact, server stopped).
//
// holds/ and audit/ are small: legal holds, checked by every deleting
// transaction, and the hash-chained audit log. Its hash is the hex SHA-256
// of seq (uint64 BE) followed by time (RFC 3339 nano, UTC), actor, action,
// detail and prev, each as uvarint len | bytes; meta "audit.head" lets
// VerifyAudit see records cut off the end.
//
// # Schema versions
//
// The version in meta/schema is checked on every Open; older files are
// migrated in the same transaction that records the new version, newer
// files are refused.
//
//	0  empty file (never recorded)
//	1  initial layout above
//	2  message archive: buckets arc, arcw, arco, holds, audit (created empty)
//
// # PEP nodes (pep.go)
//
// XEP-0163 nodes live inside the user's bucket, so DeleteUser removes
// them; the buckets are created on first publish, which needs no schema
// version of its own.
//
//	path                              key           value
//	users/<user>/pep/<node>/          "config"      v1 | access | send_last | uvarint max_items | persist byte | uvarint n | n × group
//	users/<user>/pep/<node>/          "len"         uint64 BE items in items/
//	users/<user>/pep/<node>/items/    Seq uint64 BE v1 | time | id | publisher | payload XML (the rest)
//	users/<user>/pep/<node>/ids/      item id       Seq uint64 BE of the item
//
// Strings are uvarint len | bytes. Seq is items/' own sequence, so key
// order is publish order; a republished id gets a new Seq (it becomes the
// newest) and max_items trims from the front.
package store
