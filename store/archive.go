package store

// This file is the archive's contract (XEP-0313 storage, retention
// deletion, legal holds). Bodies marked "TODO(archive)" are being written.

import (
	"context"
	"errors"
	"time"
)

// ArchiveID identifies one archived message within its owner's archive and
// is the XEP-0359 stanza-id the archive hands out. It is the time the
// message was accepted in microseconds since the Unix epoch, bumped by one
// where two messages share a microsecond, so ids are unique for the whole
// store, strictly increasing, and a time maps to an id range without an
// index.
type ArchiveID uint64

// ArchiveKind tells 1:1 archives from room archives for retention rules.
type ArchiveKind byte

const (
	KindChat      ArchiveKind = 'c' // a user's archive: chat/normal messages
	KindGroupchat ArchiveKind = 'g' // a room's archive (MUC MAM)
)

// ArchiveRecord is one archived message in one owner's archive. A 1:1
// message is two records: one in the sender's archive (Outgoing) and one in
// the recipient's.
type ArchiveRecord struct {
	Owner    string // bare JID of the archive: user@domain or room@conference.domain
	ID       ArchiveID
	With     string // bare JID of the other party; in a room archive the occupant JID room@service/nick
	Outgoing bool   // sent by Owner
	Kind     ArchiveKind
	Stanza   []byte // the <message/> as delivered (jabber:client, with from and to)
}

// ArchiveQuery selects records of one owner. Zero fields do not filter.
type ArchiveQuery struct {
	Owner      string
	With       string    // exact match on ArchiveRecord.With, or on its bare part when With has no resource
	Start, End time.Time // inclusive
	AfterID    ArchiveID // exclusive
	BeforeID   ArchiveID // exclusive
	IDs        []ArchiveID
	Max        int  // page size; <= 0 means no limit
	Backward   bool // the page nearest the end (RSM <before/>); records still come back ascending
	Count      bool // fill ArchivePage.Count
}

// ArchivePage is the answer to a query.
type ArchivePage struct {
	Records  []ArchiveRecord // ascending by ID
	Complete bool            // nothing more matches beyond this page in the query's direction
	// Count is the number of records matching the filters (ignoring Max and
	// the paging ids), -1 when counting would have meant scanning too many
	// keys (XEP-0059 makes count optional).
	Count int
}

// ArchiveOwner is what the store knows about one archive.
type ArchiveOwner struct {
	JID    string
	Kind   ArchiveKind
	Count  uint64
	First  ArchiveID // 0 when empty
	Last   ArchiveID
	Groups []string // directory groups last recorded with SetArchiveGroups (for leavers)
}

// Hold is one legal hold: the archive of Subject (a user or room bare JID)
// is exempt from expiry and erasure until its case is released.
type Hold struct {
	Case    string
	Subject string
	Reason  string
	Created time.Time
	By      string
}

// AuditRecord is one entry of the tamper-evident audit log. Hash is the hex
// SHA-256 of Prev and the record's other fields, so changing or removing
// a record breaks the chain.
type AuditRecord struct {
	Seq    uint64
	Time   time.Time
	Actor  string
	Action string
	Detail string
	Prev   string
	Hash   string
}

// AuditProblem is one broken link found by VerifyAudit.
type AuditProblem struct {
	Seq    uint64
	Reason string
}

// ErrNoArchiveID is returned for a malformed id string.
var ErrNoArchiveID = errors.New("store: not an archive id")

var errTODO = errors.New("store: archive not implemented yet")

// String is the id as clients see it (fixed width, so it sorts).
func (id ArchiveID) String() string { return "" } // TODO(archive)

// ParseArchiveID reverses String.
func ParseArchiveID(s string) (ArchiveID, error) { return 0, errTODO } // TODO(archive)

// Time is when the message was accepted.
func (id ArchiveID) Time() time.Time { return time.UnixMicro(int64(id)).UTC() }

// ArchiveIDAt is the smallest id at t, for time bounds.
func ArchiveIDAt(t time.Time) ArchiveID { return ArchiveID(t.UnixMicro()) }

// NewArchiveID returns a fresh id: now, or one more than the last id handed
// out (also across restarts), whichever is larger.
func (s *Store) NewArchiveID() ArchiveID { return 0 } // TODO(archive)

// Archive queues records for the archive writer, which commits them in
// batches (one transaction and one fsync per batch). It returns at once
// unless the queue is full, then it waits: the archive slows senders down
// rather than lose a message.
func (s *Store) Archive(recs ...ArchiveRecord) {} // TODO(archive)

// FlushArchive returns when every record queued before the call is
// committed (tests, shutdown, ctl commands).
func (s *Store) FlushArchive() error { return errTODO } // TODO(archive)

// PushOfflineArchived is PushOffline plus archive records in the same
// transaction: an offline message is never stored without its archive
// copies, nor the copies without it.
func (s *Store) PushOfflineArchived(user string, stanza []byte, stamp time.Time, max int, recs []ArchiveRecord) error {
	return errTODO // TODO(archive)
}

// QueryArchive answers one page from the indexes without scanning the
// archive.
func (s *Store) QueryArchive(q ArchiveQuery) (ArchivePage, error) { return ArchivePage{}, errTODO } // TODO(archive)

// ForEachArchive streams every record matching q (Max and Backward are
// ignored) in ascending order, for exports. fn's record is valid only
// during the call.
func (s *Store) ForEachArchive(q ArchiveQuery, fn func(ArchiveRecord) error) error { return errTODO } // TODO(archive)

// ArchiveOwners lists every archive, sorted by JID.
func (s *Store) ArchiveOwners() ([]ArchiveOwner, error) { return nil, errTODO } // TODO(archive)

// SetArchiveGroups records owner's directory groups so retention can still
// apply group rules after the person left the directory.
func (s *Store) SetArchiveGroups(owner string, groups []string) error { return errTODO } // TODO(archive)

// CountArchiveBefore counts owner's records older than before (dry runs).
func (s *Store) CountArchiveBefore(owner string, before time.Time) (int, error) { return 0, errTODO } // TODO(archive)

// ExpireArchive deletes owner's records older than before, at most batch
// per transaction, sleeping pause between transactions so that other
// writers get the lock; it returns how many it deleted.
func (s *Store) ExpireArchive(ctx context.Context, owner string, before time.Time, batch int, pause time.Duration) (int, error) {
	return 0, errTODO // TODO(archive)
}

// DeleteArchive deletes owner's whole archive (erasure); it returns how
// many records it deleted.
func (s *Store) DeleteArchive(ctx context.Context, owner string) (int, error) { return 0, errTODO } // TODO(archive)

// ExpireOffline deletes user's offline messages stored before before.
func (s *Store) ExpireOffline(user string, before time.Time) (int, error) { return 0, errTODO } // TODO(archive)

// AddHold stores a hold durably.
func (s *Store) AddHold(h Hold) error { return errTODO } // TODO(archive)

// Holds lists every hold, sorted by case then subject.
func (s *Store) Holds() ([]Hold, error) { return nil, errTODO } // TODO(archive)

// ReleaseHold removes every hold of a case; it returns how many.
func (s *Store) ReleaseHold(caseName string) (int, error) { return 0, errTODO } // TODO(archive)

// HeldBy lists the cases holding subject's archive (nil: not held).
func (s *Store) HeldBy(subject string) ([]string, error) { return nil, errTODO } // TODO(archive)

// AppendAudit appends a record to the audit log in one transaction with
// the hash of the record before it.
func (s *Store) AppendAudit(at time.Time, actor, action, detail string) (AuditRecord, error) {
	return AuditRecord{}, errTODO // TODO(archive)
}

// AuditRecords lists the audit log in order.
func (s *Store) AuditRecords() ([]AuditRecord, error) { return nil, errTODO } // TODO(archive)

// VerifyAudit recomputes the chain and reports every record that was
// changed, removed or inserted; nil means the log is intact.
func (s *Store) VerifyAudit() ([]AuditProblem, error) { return nil, errTODO } // TODO(archive)

// CompactFile rewrites the store in dir into a fresh file without free
// pages (deleted data is then gone from disk) and replaces the old file.
// The server must not be running (the file lock is checked).
func CompactFile(dir string) (before, after int64, err error) { return 0, 0, errTODO } // TODO(archive)
