package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The archive writer. Archiving is on the 1:1 message path, so Archive
// only appends to an in-memory queue; one goroutine per Store takes
// everything queued, sorts it and commits it in one transaction (one
// fsync), then takes what arrived meanwhile. Under load the batches grow
// by themselves while a commit is in progress; a lone message is committed
// at once.

const (
	// arcQueueRecords and arcQueueBytes bound the queue. A full queue
	// blocks Archive (back pressure on the senders) instead of dropping a
	// message or growing without limit. 65,536 records is about 120 ms of
	// the target rate, so a commit never waits for a batch to fill.
	arcQueueRecords = 1 << 16
	arcQueueBytes   = 64 << 20

	// arcFill is the bbolt FillPercent for the archive buckets. Keys of one
	// owner only ever grow at the end of that owner's range, so a split
	// page is never written into again: full pages waste no space and cut
	// the pages (and bytes fsynced) per commit.
	arcFill = 0.95

	// arcRetries is how often the writer retries a failed commit before it
	// gives the batch up and reports the error through FlushArchive.
	arcRetries   = 3
	arcRetryWait = 100 * time.Millisecond

	arcFlagOutgoing = 1 // value flags byte
)

var (
	errArchiveClosed = errors.New("store: archive writer closed")
	emptyValue       = []byte{}
)

// arcEnt is one queued record. Its encoded value is vals[off:end] of the
// queue it sits in, so queueing a record allocates nothing: the strings are
// the caller's (immutable) and the stanza is copied into the shared buffer.
type arcEnt struct {
	owner, with string
	id          ArchiveID
	seq         uint32 // position in the queue: of two records with one key, the later wins
	off, end    uint32
}

// arcQueue is a batch of records and their encoded values back to back.
type arcQueue struct {
	ents []arcEnt
	vals []byte
}

func (q *arcQueue) reset() {
	q.ents = q.ents[:0]
	q.vals = q.vals[:0]
}

// add encodes r into the queue. id is r.ID or a fresh one.
func (q *arcQueue) add(r *ArchiveRecord, id ArchiveID) {
	off := len(q.vals)
	if need := off + arcValueMax(r); need > cap(q.vals) {
		// Double by hand: append grows large slices by 1.25x, which
		// copied the queue five times over on its way to full size.
		q.vals = append(make([]byte, 0, max(2*cap(q.vals), need, 1<<20)), q.vals...)
	}
	q.vals = appendArcValue(q.vals, r)
	q.ents = append(q.ents, arcEnt{
		owner: r.Owner, with: r.With, id: id,
		seq: uint32(len(q.ents)), off: uint32(off), end: uint32(len(q.vals)),
	})
}

func (q *arcQueue) full() bool {
	return len(q.ents) >= arcQueueRecords || len(q.vals) >= arcQueueBytes
}

// arcWriter is the queue and its goroutine. One mutex guards everything;
// the conds say what changed.
type arcWriter struct {
	s        *Store
	mu       sync.Mutex
	work     sync.Cond // the writer waits for records or stop
	notFull  sync.Cond // Archive waits for room in the queue
	done     sync.Cond // FlushArchive waits for commits
	q, spare *arcQueue
	queued   uint64 // records ever queued
	finished uint64 // records ever committed or given up
	err      error  // first failure since FlushArchive last returned one
	closed   bool
	exited   chan struct{}
}

func startArcWriter(s *Store) *arcWriter {
	w := &arcWriter{s: s, q: new(arcQueue), spare: new(arcQueue), exited: make(chan struct{})}
	w.work.L, w.notFull.L, w.done.L = &w.mu, &w.mu, &w.mu
	go w.run()
	return w
}

// fail records err for the next FlushArchive; the caller holds mu.
func (w *arcWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *arcWriter) run() {
	defer close(w.exited)
	var sc arcScratch
	w.mu.Lock()
	for {
		for len(w.q.ents) == 0 && !w.closed {
			w.work.Wait()
		}
		if len(w.q.ents) == 0 { // closed and drained
			w.mu.Unlock()
			return
		}
		b := w.q
		w.q, w.spare = w.spare, nil
		target := w.queued
		w.notFull.Broadcast()
		w.mu.Unlock()

		err := w.commit(b, &sc)
		b.reset()

		w.mu.Lock()
		w.spare = b
		w.finished = target
		if err != nil {
			w.fail(err)
		}
		w.done.Broadcast()
	}
}

func (w *arcWriter) commit(b *arcQueue, sc *arcScratch) error {
	var err error
	for try := 0; try < arcRetries; try++ {
		if try > 0 {
			time.Sleep(arcRetryWait)
		}
		err = w.s.db.Update(func(tx *bolt.Tx) error { return writeArchive(tx, b, sc) })
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("store: archive %d records: %w", len(b.ents), err)
}

// stop commits what is queued and ends the writer; it returns the last
// unreported failure.
func (w *arcWriter) stop() error {
	w.mu.Lock()
	w.closed = true
	w.work.Signal()
	w.notFull.Broadcast()
	w.mu.Unlock()
	<-w.exited
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	w.err = nil
	return err
}

// Archive queues records for the archive writer, which commits them in
// batches (one transaction and one fsync per batch). It returns at once
// unless the queue is full, then it waits: the archive slows senders down
// rather than lose a message.
//
// A record with ID 0 gets NewArchiveID. The Stanza bytes are copied, so
// the caller may reuse its buffer. Records without an owner, or with a NUL
// byte in Owner or With (the key separator), are not archived; the next
// FlushArchive reports them.
func (s *Store) Archive(recs ...ArchiveRecord) {
	w := s.arc
	w.mu.Lock()
	for i := range recs {
		r := &recs[i]
		for w.q.full() && !w.closed {
			w.work.Signal()
			w.notFull.Wait()
		}
		if w.closed {
			w.fail(fmt.Errorf("%w: %d records not archived", errArchiveClosed, len(recs)-i))
			break
		}
		if err := checkArchiveRecord(r); err != nil {
			w.fail(err)
			continue
		}
		id := r.ID
		if id == 0 {
			id = s.NewArchiveID()
		} else {
			s.seenArchiveID(id)
		}
		w.q.add(r, id)
		w.queued++
	}
	w.work.Signal()
	w.mu.Unlock()
}

// FlushArchive returns when every record queued before the call is
// committed (tests, shutdown, ctl commands). It returns the first failure
// since the last FlushArchive that returned one: a commit that failed
// (after retries) or a record that was refused.
func (s *Store) FlushArchive() error {
	w := s.arc
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.queued
	w.work.Signal()
	for w.finished < target {
		w.done.Wait()
	}
	if err := w.err; err != nil {
		w.err = nil
		return err
	}
	if w.closed {
		return errArchiveClosed
	}
	return nil
}

func checkArchiveRecord(r *ArchiveRecord) error {
	switch {
	case r.Owner == "":
		return fmt.Errorf("store: archive record %v: empty owner", r.ID)
	case strings.IndexByte(r.Owner, 0) >= 0 || strings.IndexByte(r.With, 0) >= 0:
		return fmt.Errorf("store: archive record %v of %q: NUL in owner or with", r.ID, r.Owner)
	}
	return nil
}

// PushOfflineArchived is PushOffline plus archive records in the same
// transaction: an offline message is never stored without its archive
// copies, nor the copies without it. With ErrOfflineFull neither is
// written. Records with ID 0 get NewArchiveID.
func (s *Store) PushOfflineArchived(user string, stanza []byte, stamp time.Time, max int, recs []ArchiveRecord) error {
	var q arcQueue
	for i := range recs {
		if err := checkArchiveRecord(&recs[i]); err != nil {
			return err
		}
		id := recs[i].ID
		if id == 0 {
			id = s.NewArchiveID()
		} else {
			s.seenArchiveID(id)
		}
		q.add(&recs[i], id)
	}
	var sc arcScratch
	_, err := s.pushOfflineWith(user, stanza, stamp, max, func(tx *bolt.Tx) error {
		if len(q.ents) == 0 {
			return nil
		}
		return writeArchive(tx, &q, &sc)
	})
	return err
}

// arcScratch is the writer's reusable memory for one commit.
type arcScratch struct {
	key    []byte           // the arc key being put (bbolt copies keys)
	arena  []byte           // one owner's index keys, until sorted and put
	wkeys  [][]byte         // slices of arena
	meta   []byte           // arco values, alive until commit (bbolt keeps values)
	groups map[string]int32 // owner -> index in runs
	runs   []arcRun
	next   []int32 // per entry: the next entry of the same owner, -1 at the end
	order  []int32 // one owner's entries in id order
}

// arcRun is one owner's entries in a batch, as a list through next.
type arcRun struct {
	owner       string
	first, last int32
	sorted      bool // ids ascending in queue order
}

// writeArchive puts the records of b, their index keys and their owners'
// counters in tx, each bucket in key order. It may run twice on the same
// batch (bbolt's Batch retries), so it does not change b.
//
// Sorting the whole batch by owner and id was a sixth of the writer's CPU,
// so it groups by owner instead (one map lookup per record), sorts only
// the owners and, rarely, an owner whose ids arrived out of order: ids
// come from one increasing counter, so queue order is nearly id order.
func writeArchive(tx *bolt.Tx, b *arcQueue, sc *arcScratch) error {
	arc, arcw, arco := tx.Bucket(bucketArc), tx.Bucket(bucketArcWith), tx.Bucket(bucketArcOwner)
	arc.FillPercent, arcw.FillPercent = arcFill, arcFill
	ents := b.ents
	if sc.groups == nil {
		sc.groups = make(map[string]int32)
	}
	clear(sc.groups)
	sc.runs, sc.meta = sc.runs[:0], sc.meta[:0]
	sc.next = slices.Grow(sc.next[:0], len(ents))[:len(ents)]
	for i := range ents {
		e := &ents[i]
		sc.next[i] = -1
		g, ok := sc.groups[e.owner]
		if !ok {
			g = int32(len(sc.runs))
			sc.groups[e.owner] = g
			sc.runs = append(sc.runs, arcRun{owner: e.owner, first: int32(i), last: int32(i), sorted: true})
			continue
		}
		r := &sc.runs[g]
		if ents[r.last].id > e.id {
			r.sorted = false
		}
		sc.next[r.last] = int32(i)
		r.last = int32(i)
	}
	slices.SortFunc(sc.runs, func(x, y arcRun) int { return strings.Compare(x.owner, y.owner) })

	var maxID ArchiveID
	for ri := range sc.runs {
		run := &sc.runs[ri]
		owner := run.owner
		sc.order = sc.order[:0]
		for i := run.first; i >= 0; i = sc.next[i] {
			sc.order = append(sc.order, i)
		}
		if !run.sorted {
			// Stable: of two entries with one id, the later stays later.
			slices.SortStableFunc(sc.order, func(x, y int32) int { return cmp.Compare(ents[x].id, ents[y].id) })
		}
		m, err := getArcOwner(arco, owner)
		if err != nil {
			return err
		}
		lastBefore := m.last
		sc.arena, sc.wkeys = sc.arena[:0], sc.wkeys[:0]
		for k, ei := range sc.order {
			e := &ents[ei]
			if k+1 < len(sc.order) && ents[sc.order[k+1]].id == e.id {
				continue // the same key queued again later: the later one wins
			}
			val := b.vals[e.off:e.end]
			sc.key = appendArcKey(sc.key[:0], owner, e.id)
			isNew := true
			if e.id <= lastBefore {
				// Not an append: the key may exist (a retried import).
				// Its old index keys go; the count stays.
				if old := arc.Get(sc.key); old != nil {
					isNew = false
					if err := deleteArcIndex(arcw, sc, owner, old, e.id); err != nil {
						return err
					}
					sc.key = appendArcKey(sc.key[:0], owner, e.id)
				}
			}
			if err := arc.Put(sc.key, val); err != nil {
				return err
			}
			m.add(e.id, ArchiveKind(val[2]), isNew)
			maxID = max(maxID, e.id)
			sc.addIndexKeys(owner, e.with, e.id)
		}
		// One owner's index keys: sorted by with, and by id within a with
		// already, so a small sort.
		slices.SortFunc(sc.wkeys, bytes.Compare)
		for _, k := range sc.wkeys {
			if err := arcw.Put(k, emptyValue); err != nil {
				return err
			}
		}
		start := len(sc.meta)
		sc.meta = m.appendTo(sc.meta)
		if err := arco.Put([]byte(owner), sc.meta[start:]); err != nil {
			return err
		}
	}
	return bumpArcLast(tx, maxID)
}

// addIndexKeys queues the arcw keys of one record: the full With, and the
// bare part too when With has a resource (room archives), so that both a
// full and a bare With query are one prefix seek in id order.
func (sc *arcScratch) addIndexKeys(owner, with string, id ArchiveID) {
	start := len(sc.arena)
	sc.arena = appendArcWithKey(sc.arena, owner, with, id)
	sc.wkeys = append(sc.wkeys, sc.arena[start:len(sc.arena):len(sc.arena)])
	if bare, ok := bareOf(with); ok {
		start = len(sc.arena)
		sc.arena = appendArcWithKey(sc.arena, owner, bare, id)
		sc.wkeys = append(sc.wkeys, sc.arena[start:len(sc.arena):len(sc.arena)])
	}
}

// deleteArcIndex deletes the arcw keys of the record whose arc value is val.
// It uses sc.key.
func deleteArcIndex(arcw *bolt.Bucket, sc *arcScratch, owner string, val []byte, id ArchiveID) error {
	_, with, _, err := decodeArcValue(val)
	if err != nil {
		return fmt.Errorf("archive record %s/%v: %w", owner, id, err)
	}
	w := string(with) // with aliases bbolt memory that the deletes may move
	sc.key = appendArcWithKey(sc.key[:0], owner, w, id)
	if err := arcw.Delete(sc.key); err != nil {
		return err
	}
	if bare, ok := bareOf(w); ok {
		sc.key = appendArcWithKey(sc.key[:0], owner, bare, id)
		return arcw.Delete(sc.key)
	}
	return nil
}

// bumpArcLast raises meta "arc.last" to id.
func bumpArcLast(tx *bolt.Tx, id ArchiveID) error {
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyArcLast); len(v) == 8 && getU64(v) >= uint64(id) {
		return nil
	}
	return meta.Put(keyArcLast, appendU64(nil, uint64(id)))
}

// loadArchiveLast seeds NewArchiveID from meta "arc.last".
func (s *Store) loadArchiveLast() error {
	return s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyArcLast); len(v) == 8 {
			s.seenArchiveID(ArchiveID(getU64(v)))
		}
		return nil
	})
}

// Keys and values.

func appendArcKey(dst []byte, owner string, id ArchiveID) []byte {
	dst = append(append(dst, owner...), 0)
	return appendU64(dst, uint64(id))
}

func appendArcWithKey(dst []byte, owner, with string, id ArchiveID) []byte {
	dst = append(append(dst, owner...), 0)
	dst = append(append(dst, with...), 0)
	return appendU64(dst, uint64(id))
}

// bareOf cuts the resource off a JID.
func bareOf(jid string) (string, bool) {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return jid[:i], true
	}
	return jid, false
}

// arcValueMax bounds the encoded size of r's value.
func arcValueMax(r *ArchiveRecord) int {
	return 3 + binary.MaxVarintLen64 + len(r.With) + len(r.Stanza)
}

// appendArcValue encodes v1 | flags | kind | uvarint len | with | stanza.
func appendArcValue(dst []byte, r *ArchiveRecord) []byte {
	var flags byte
	if r.Outgoing {
		flags |= arcFlagOutgoing
	}
	kind := r.Kind
	if kind == 0 {
		kind = KindChat
	}
	dst = append(dst, encV1, flags, byte(kind))
	dst = binary.AppendUvarint(dst, uint64(len(r.With)))
	dst = append(dst, r.With...)
	return append(dst, r.Stanza...)
}

// decodeArcValue splits an arc value; with and stanza alias v.
func decodeArcValue(v []byte) (flags byte, with, stanza []byte, err error) {
	if len(v) < 4 || v[0] != encV1 {
		return 0, nil, nil, fmt.Errorf("unknown encoding %v", versionOf(v))
	}
	n, w := binary.Uvarint(v[3:])
	if w <= 0 || uint64(len(v)-3-w) < n {
		return 0, nil, nil, fmt.Errorf("corrupt archive value (%d bytes)", len(v))
	}
	rest := v[3+w:]
	return v[1], rest[:n], rest[n:], nil
}

// arcOwner is the arco value: v1 | count | first | last (uint64 BE) | kind
// | uvarint n | n × (uvarint len | group). groups stays encoded (raw) on
// the write path so that counting a batch allocates nothing.
type arcOwner struct {
	count       uint64
	first, last ArchiveID
	kind        ArchiveKind
	groups      []byte // uvarint n | n × (uvarint len | group), or nil
}

const arcOwnerFixed = 1 + 8 + 8 + 8 + 1

// getArcOwner decodes owner's meta; groups aliases bbolt memory.
func getArcOwner(arco *bolt.Bucket, owner string) (arcOwner, error) {
	return decodeArcOwner(arco.Get([]byte(owner)))
}

func decodeArcOwner(v []byte) (arcOwner, error) {
	if v == nil {
		return arcOwner{}, nil
	}
	if len(v) < arcOwnerFixed || v[0] != encV1 {
		return arcOwner{}, fmt.Errorf("archive owner: unknown encoding %v", versionOf(v))
	}
	return arcOwner{
		count: getU64(v[1:]), first: ArchiveID(getU64(v[9:])), last: ArchiveID(getU64(v[17:])),
		kind: ArchiveKind(v[25]), groups: v[arcOwnerFixed:],
	}, nil
}

func (m *arcOwner) add(id ArchiveID, kind ArchiveKind, isNew bool) {
	if isNew {
		m.count++
	}
	if m.first == 0 || id < m.first {
		m.first = id
	}
	m.last = max(m.last, id)
	if m.kind == 0 {
		m.kind = kind
	}
}

func (m *arcOwner) appendTo(dst []byte) []byte {
	dst = append(dst, encV1)
	dst = appendU64(appendU64(appendU64(dst, m.count), uint64(m.first)), uint64(m.last))
	dst = append(dst, byte(m.kind))
	if len(m.groups) == 0 {
		return append(dst, 0)
	}
	return append(dst, m.groups...)
}

func encodeGroups(groups []string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(groups)))
	for _, g := range groups {
		b = binary.AppendUvarint(b, uint64(len(g)))
		b = append(b, g...)
	}
	return b
}

func decodeGroups(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, errors.New("archive owner: corrupt groups")
	}
	b = b[w:]
	var groups []string
	for range n {
		l, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < l {
			return nil, errors.New("archive owner: corrupt groups")
		}
		groups = append(groups, string(b[w:w+int(l)]))
		b = b[w+int(l):]
	}
	return groups, nil
}
