package store

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// countLimit is how many keys QueryArchive walks to count a filtered
// range; past it ArchivePage.Count is -1 (XEP-0059 §2.6 makes the count
// optional, and counting a huge range would cost more than the page).
const countLimit = 10_000

// forEachChunk for archives: records copied per read transaction, so an
// export of millions neither pins old pages nor blocks the file from
// growing while fn writes to its output.
const arcChunk = 512

// idCursor walks the ids under one prefix of arc (owner 0) or arcw
// (owner 0 with 0); every key is the prefix and 8 bytes of id.
type idCursor struct {
	c      *bolt.Cursor
	prefix []byte
	key    []byte
	val    []byte // the value at the cursor: the record itself when walking arc
}

func newIDCursor(tx *bolt.Tx, owner, with string) *idCursor {
	ic := &idCursor{}
	if with == "" {
		ic.c = tx.Bucket(bucketArc).Cursor()
		ic.prefix = append(append(make([]byte, 0, len(owner)+9), owner...), 0)
	} else {
		ic.c = tx.Bucket(bucketArcWith).Cursor()
		ic.prefix = append(append(append(append(make([]byte, 0, len(owner)+len(with)+10), owner...), 0), with...), 0)
	}
	ic.key = make([]byte, 0, len(ic.prefix)+8)
	return ic
}

func (ic *idCursor) id(k, v []byte) (ArchiveID, bool) {
	ic.val = v
	if len(k) != len(ic.prefix)+8 || !bytes.HasPrefix(k, ic.prefix) {
		return 0, false
	}
	return ArchiveID(getU64(k[len(ic.prefix):])), true
}

func (ic *idCursor) seekKey(id ArchiveID) []byte {
	ic.key = appendU64(append(ic.key[:0], ic.prefix...), uint64(id))
	return ic.key
}

// first is the smallest id >= lo.
func (ic *idCursor) first(lo ArchiveID) (ArchiveID, bool) {
	return ic.id(ic.c.Seek(ic.seekKey(lo)))
}

func (ic *idCursor) next() (ArchiveID, bool) {
	return ic.id(ic.c.Next())
}

// last is the largest id <= hi.
func (ic *idCursor) last(hi ArchiveID) (ArchiveID, bool) {
	key := ic.seekKey(hi)
	k, v := ic.c.Seek(key)
	if k == nil {
		k, v = ic.c.Last()
	} else if !bytes.Equal(k, key) {
		k, v = ic.c.Prev()
	}
	return ic.id(k, v)
}

func (ic *idCursor) prev() (ArchiveID, bool) {
	return ic.id(ic.c.Prev())
}

// filterBounds maps Start and End to inclusive id bounds; ok is false when
// nothing can match.
func (q *ArchiveQuery) filterBounds() (lo, hi ArchiveID, ok bool) {
	lo, hi = 1, math.MaxUint64
	if !q.Start.IsZero() && q.Start.After(time.Unix(0, 0)) {
		lo = max(lo, ArchiveIDAt(q.Start))
	}
	if !q.End.IsZero() {
		if q.End.Before(time.Unix(0, 1000)) {
			return 0, 0, false
		}
		hi = ArchiveIDAt(q.End)
	}
	return lo, hi, lo <= hi
}

// pageBounds narrows the filter bounds by AfterID and BeforeID.
func (q *ArchiveQuery) pageBounds() (lo, hi ArchiveID, ok bool) {
	lo, hi, ok = q.filterBounds()
	if q.AfterID != 0 {
		if q.AfterID == math.MaxUint64 {
			return 0, 0, false
		}
		lo = max(lo, q.AfterID+1)
	}
	if q.BeforeID != 0 {
		if q.BeforeID == 1 {
			return 0, 0, false
		}
		hi = min(hi, q.BeforeID-1)
	}
	return lo, hi, ok && lo <= hi
}

// withMatches is the With filter on a stored record: exact, or on the
// bare part when the query has no resource.
func withMatches(query string, with []byte) bool {
	if query == "" || string(with) == query {
		return true
	}
	if _, full := bareOf(query); full {
		return false
	}
	bare, _ := bareOf(string(with))
	return bare == query
}

// QueryArchive answers one page from the indexes without scanning the
// archive: a page is one cursor seek in arc (or, with With, in arcw) and
// at most Max+1 steps, whatever the archive's size.
func (s *Store) QueryArchive(q ArchiveQuery) (ArchivePage, error) {
	var page ArchivePage
	err := s.db.View(func(tx *bolt.Tx) error {
		var (
			ids  []ArchiveID
			vals [][]byte
			err  error
		)
		if q.IDs != nil {
			ids, page.Complete, page.Count = queryIDs(tx, &q)
		} else {
			ids, vals, page.Complete = queryRange(tx, &q)
			if q.Count {
				if page.Count, err = countArchive(tx, &q); err != nil {
					return err
				}
			}
		}
		page.Records, err = loadRecords(tx, q.Owner, ids, vals, nil)
		return err
	})
	if err != nil {
		return ArchivePage{}, fmt.Errorf("store: query archive of %q: %w", q.Owner, err)
	}
	if !q.Count {
		page.Count = 0
	}
	return page, nil
}

// queryRange returns the ids of one page, ascending, and whether no
// further id matches in the paging direction. Without With it walks arc
// itself and returns the values too (bbolt memory, valid in tx), which
// saves a lookup per record.
func queryRange(tx *bolt.Tx, q *ArchiveQuery) ([]ArchiveID, [][]byte, bool) {
	lo, hi, ok := q.pageBounds()
	if !ok {
		return nil, nil, true
	}
	ic := newIDCursor(tx, q.Owner, q.With)
	var (
		ids  []ArchiveID
		vals [][]byte
	)
	if q.Max > 0 {
		ids = make([]ArchiveID, 0, min(q.Max, 1024))
		if q.With == "" {
			vals = make([][]byte, 0, min(q.Max, 1024))
		}
	}
	take := func(id ArchiveID) {
		ids = append(ids, id)
		if q.With == "" {
			vals = append(vals, ic.val)
		}
	}
	complete := true
	if !q.Backward {
		for id, ok := ic.first(lo); ok && id <= hi; id, ok = ic.next() {
			if q.Max > 0 && len(ids) == q.Max {
				complete = false
				break
			}
			take(id)
		}
		return ids, vals, complete
	}
	for id, ok := ic.last(hi); ok && id >= lo; id, ok = ic.prev() {
		if q.Max > 0 && len(ids) == q.Max {
			complete = false
			break
		}
		take(id)
	}
	slices.Reverse(ids)
	slices.Reverse(vals)
	return ids, vals, complete
}

// queryIDs answers a query by ids (XEP-0313 #extended): direct gets, still
// filtered by With, Start/End and the paging ids.
func queryIDs(tx *bolt.Tx, q *ArchiveQuery) (ids []ArchiveID, complete bool, count int) {
	lo, hi, ok := q.pageBounds()
	if !ok {
		return nil, true, 0
	}
	want := slices.Clone(q.IDs)
	slices.Sort(want)
	want = slices.Compact(want)
	arc := tx.Bucket(bucketArc)
	var key []byte
	for _, id := range want {
		if id < lo || id > hi {
			continue
		}
		key = appendArcKey(key[:0], q.Owner, id)
		v := arc.Get(key)
		if v == nil {
			continue
		}
		if q.With != "" {
			if _, with, _, err := decodeArcValue(v); err != nil || !withMatches(q.With, with) {
				continue // a corrupt record surfaces in loadRecords only when asked for
			}
		}
		ids = append(ids, id)
	}
	count = len(ids)
	if q.Max > 0 && len(ids) > q.Max {
		if q.Backward {
			return ids[len(ids)-q.Max:], false, count
		}
		return ids[:q.Max], false, count
	}
	return ids, true, count
}

// countArchive counts the records matching the filters (not the paging):
// the owner's counter when nothing filters, else a key-only walk of at
// most countLimit keys.
func countArchive(tx *bolt.Tx, q *ArchiveQuery) (int, error) {
	if q.With == "" && q.Start.IsZero() && q.End.IsZero() {
		m, err := getArcOwner(tx.Bucket(bucketArcOwner), q.Owner)
		if err != nil {
			return 0, err
		}
		return int(m.count), nil
	}
	lo, hi, ok := q.filterBounds()
	if !ok {
		return 0, nil
	}
	ic := newIDCursor(tx, q.Owner, q.With)
	n := 0
	for id, ok := ic.first(lo); ok && id <= hi; id, ok = ic.next() {
		if n++; n > countLimit {
			return -1, nil
		}
	}
	return n, nil
}

// loadRecords reads the records of ids into recs, copying all stanzas into
// one buffer. vals, when not nil, are the records' values already found.
func loadRecords(tx *bolt.Tx, owner string, ids []ArchiveID, vals [][]byte, recs []ArchiveRecord) ([]ArchiveRecord, error) {
	if len(ids) == 0 {
		return recs, nil
	}
	if vals == nil {
		// One cursor for all: Bucket.Get makes a cursor per call.
		c := tx.Bucket(bucketArc).Cursor()
		vals = make([][]byte, len(ids))
		key := make([]byte, 0, len(owner)+9)
		for i, id := range ids {
			key = appendArcKey(key[:0], owner, id)
			k, v := c.Seek(key)
			if !bytes.Equal(k, key) {
				return nil, fmt.Errorf("archive record %v: index entry without record", id)
			}
			vals[i] = v
		}
	}
	size := 0
	for _, v := range vals {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	if recs == nil {
		recs = make([]ArchiveRecord, 0, len(ids))
	}
	for i, id := range ids {
		var err error
		var rec ArchiveRecord
		if rec, buf, err = decodeArcRecord(owner, id, vals[i], buf); err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// decodeArcRecord decodes an arc value, appending its stanza to buf.
func decodeArcRecord(owner string, id ArchiveID, v, buf []byte) (ArchiveRecord, []byte, error) {
	flags, with, stanza, err := decodeArcValue(v)
	if err != nil {
		return ArchiveRecord{}, buf, fmt.Errorf("archive record %v: %w", id, err)
	}
	start := len(buf)
	buf = append(buf, stanza...)
	return ArchiveRecord{
		Owner:    owner,
		ID:       id,
		With:     string(with),
		Outgoing: flags&arcFlagOutgoing != 0,
		Kind:     ArchiveKind(v[2]),
		Stanza:   buf[start:len(buf):len(buf)],
	}, buf, nil
}

// ForEachArchive streams every record matching q (Max and Backward are
// ignored) in ascending order, for exports. fn's record is valid only
// during the call.
//
// The walk copies chunks of records in short read transactions and calls
// fn outside them, so fn may take its time (and call the Store) without
// holding a transaction open. Records committed during the walk past its
// position are included.
func (s *Store) ForEachArchive(q ArchiveQuery, fn func(ArchiveRecord) error) error {
	q.Max, q.Backward = 0, false
	if q.IDs != nil {
		page, err := s.QueryArchive(q)
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	lo, hi, ok := q.pageBounds()
	if !ok {
		return nil
	}
	var (
		ids  = make([]ArchiveID, 0, arcChunk)
		recs = make([]ArchiveRecord, 0, arcChunk)
		done bool
	)
	for !done {
		ids, recs = ids[:0], recs[:0]
		err := s.db.View(func(tx *bolt.Tx) error {
			ic := newIDCursor(tx, q.Owner, q.With)
			id, ok := ic.first(lo)
			for ; ok && id <= hi && len(ids) < arcChunk; id, ok = ic.next() {
				ids = append(ids, id)
			}
			done = !ok || id > hi
			var err error
			recs, err = loadRecords(tx, q.Owner, ids, nil, recs)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: export archive of %q: %w", q.Owner, err)
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(ids) == 0 || ids[len(ids)-1] == math.MaxUint64 {
			break
		}
		lo = ids[len(ids)-1] + 1
	}
	return nil
}
