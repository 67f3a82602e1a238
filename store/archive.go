package store

// This file is the archive's contract (XEP-0313 storage, retention
// deletion, legal holds): the types and ids. The writer is in
// archive_write.go, queries in archive_query.go, deletion in
// archive_expire.go, holds in hold.go, the audit log in audit.go and
// offline compaction in compact.go.

import (
	"errors"
	"fmt"
	"strconv"
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

// archiveIDLen is the width of ArchiveID.String: 16 hex digits hold any
// uint64, and a fixed width makes string order equal id order, which
// clients comparing stanza-ids as strings may rely on.
const archiveIDLen = 16

// String is the id as clients see it (fixed width, so it sorts).
func (id ArchiveID) String() string {
	var buf [archiveIDLen]byte
	return string(id.appendTo(buf[:0]))
}

// appendTo appends the 16 lowercase hex digits of id.
func (id ArchiveID) appendTo(dst []byte) []byte {
	const hex = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hex[(uint64(id)>>shift)&0xf])
	}
	return dst
}

// ParseArchiveID reverses String. It accepts exactly what String produces
// (16 lowercase hex digits, not zero), so one id has one spelling and a
// client cannot page from an id the archive never handed out.
func ParseArchiveID(s string) (ArchiveID, error) {
	if len(s) != archiveIDLen {
		return 0, fmt.Errorf("%w: %q is not %d hex digits", ErrNoArchiveID, s, archiveIDLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, fmt.Errorf("%w: %q is not %d lowercase hex digits", ErrNoArchiveID, s, archiveIDLen)
		}
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%w: %q", ErrNoArchiveID, s)
	}
	return ArchiveID(v), nil
}

// Time is when the message was accepted.
func (id ArchiveID) Time() time.Time { return time.UnixMicro(int64(id)).UTC() }

// ArchiveIDAt is the smallest id at t, for time bounds.
func ArchiveIDAt(t time.Time) ArchiveID { return ArchiveID(t.UnixMicro()) }

// NewArchiveID returns a fresh id: now, or one more than the last id handed
// out (also across restarts), whichever is larger.
//
// The last id lives in an atomic, seeded at Open from meta "arc.last" (the
// highest id ever committed), so ids keep increasing when the clock steps
// back, within a run and across restarts.
func (s *Store) NewArchiveID() ArchiveID {
	now := uint64(time.Now().UnixMicro())
	for {
		last := s.arcLast.Load()
		next := max(now, last+1)
		if s.arcLast.CompareAndSwap(last, next) {
			return ArchiveID(next)
		}
	}
}

// seenArchiveID makes sure NewArchiveID never hands out id, which a caller
// chose itself (imports, tests).
func (s *Store) seenArchiveID(id ArchiveID) {
	for {
		last := s.arcLast.Load()
		if uint64(id) <= last || s.arcLast.CompareAndSwap(last, uint64(id)) {
			return
		}
	}
}
