package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The audit log is audit/<seq uint64 BE> -> v1 | time | actor | action |
// detail | prev | hash (each string uvarint len | bytes). meta
// "audit.head" holds the seq and hash of the last record appended, so
// deleting the newest records is detected as well as changing or
// deleting any other: the chain alone cannot tell a log whose end was cut
// off from a shorter log.

// auditHash is the hex SHA-256 of the canonical encoding of a record:
// seq (uint64 BE), then time (RFC 3339 with nanoseconds, UTC), actor,
// action, detail and prev, each as uvarint length | bytes. Lengths make
// the encoding unambiguous: no two different records hash the same bytes.
func auditHash(r *AuditRecord) string {
	b := appendU64(make([]byte, 0, 128), r.Seq)
	b = appendString(b, r.Time.UTC().Format(time.RFC3339Nano))
	b = appendString(b, r.Actor)
	b = appendString(b, r.Action)
	b = appendString(b, r.Detail)
	b = appendString(b, r.Prev)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// AppendAudit appends a record to the audit log in one transaction with
// the hash of the record before it; concurrent appends serialize on
// bbolt's write lock, so the chain never forks.
func (s *Store) AppendAudit(at time.Time, actor, action, detail string) (AuditRecord, error) {
	rec := AuditRecord{Time: at.UTC().Round(0), Actor: actor, Action: action, Detail: detail}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		rec.Seq, rec.Prev = 1, ""
		if head := meta.Get(keyAuditHead); len(head) > 8 {
			rec.Seq, rec.Prev = getU64(head)+1, string(head[8:])
		}
		rec.Hash = auditHash(&rec)
		val := appendTime([]byte{encV1}, rec.Time)
		for _, f := range []string{rec.Actor, rec.Action, rec.Detail, rec.Prev, rec.Hash} {
			val = appendString(val, f)
		}
		if err := tx.Bucket(bucketAudit).Put(appendU64(nil, rec.Seq), val); err != nil {
			return err
		}
		return meta.Put(keyAuditHead, append(appendU64(nil, rec.Seq), rec.Hash...))
	})
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit %q by %q: %w", action, actor, err)
	}
	return rec, nil
}

func decodeAudit(k, v []byte) (AuditRecord, error) {
	if len(k) != 8 {
		return AuditRecord{}, fmt.Errorf("audit key %x is not a sequence number", k)
	}
	rec := AuditRecord{Seq: getU64(k)}
	if len(v) < 1+timeLen || v[0] != encV1 {
		return rec, fmt.Errorf("audit record %d: unknown encoding %v", rec.Seq, versionOf(v))
	}
	rec.Time = getTime(v[1:])
	rest := v[1+timeLen:]
	for _, f := range []*string{&rec.Actor, &rec.Action, &rec.Detail, &rec.Prev, &rec.Hash} {
		var ok bool
		if *f, rest, ok = getString(rest); !ok {
			return rec, fmt.Errorf("audit record %d: truncated", rec.Seq)
		}
	}
	return rec, nil
}

// AuditRecords lists the audit log in order.
func (s *Store) AuditRecords() ([]AuditRecord, error) {
	var recs []AuditRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			rec, err := decodeAudit(k, v)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit records: %w", err)
	}
	return recs, nil
}

// VerifyAudit recomputes the chain and reports every record that was
// changed, removed or inserted; nil means the log is intact.
//
// Each broken thing is reported once: a record whose hash does not match
// its content, a record whose Prev is not the hash of the record before
// it, a gap in the sequence (records removed in the middle or at the
// start; the record after a gap is not also blamed for its Prev), and a
// head that does not match the last record (records removed at the end).
func (s *Store) VerifyAudit() ([]AuditProblem, error) {
	var probs []AuditProblem
	err := s.db.View(func(tx *bolt.Tx) error {
		var (
			want     uint64 = 1
			prevHash string
			prevOK   = true // prevHash is known
			lastSeq  uint64
			lastHash string
		)
		err := tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			rec, err := decodeAudit(k, v)
			if err != nil {
				probs = append(probs, AuditProblem{Seq: rec.Seq, Reason: err.Error()})
				want, prevOK = rec.Seq+1, false
				lastSeq, lastHash = rec.Seq, ""
				return nil
			}
			switch {
			case rec.Seq > want:
				probs = append(probs, AuditProblem{Seq: rec.Seq, Reason: gapReason(want, rec.Seq-1)})
			case prevOK && rec.Prev != prevHash:
				probs = append(probs, AuditProblem{Seq: rec.Seq, Reason: fmt.Sprintf("prev does not match the hash of record %d", rec.Seq-1)})
			}
			if auditHash(&rec) != rec.Hash {
				probs = append(probs, AuditProblem{Seq: rec.Seq, Reason: "hash does not match the record's content"})
			}
			want, prevHash, prevOK = rec.Seq+1, rec.Hash, true
			lastSeq, lastHash = rec.Seq, rec.Hash
			return nil
		})
		if err != nil {
			return err
		}
		var headSeq uint64
		var headHash string
		if head := tx.Bucket(bucketMeta).Get(keyAuditHead); len(head) > 8 {
			headSeq, headHash = getU64(head), string(head[8:])
		}
		switch {
		case headSeq > lastSeq:
			probs = append(probs, AuditProblem{Seq: headSeq, Reason: fmt.Sprintf("%s: the log ends at %d but its head is %d", gapReason(lastSeq+1, headSeq), lastSeq, headSeq)})
		case headSeq != lastSeq || headHash != lastHash:
			probs = append(probs, AuditProblem{Seq: lastSeq, Reason: fmt.Sprintf("the head (record %d) does not match the last record", headSeq)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: verify audit: %w", err)
	}
	return probs, nil
}

func gapReason(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("record %d is missing", from)
	}
	return fmt.Sprintf("records %d to %d are missing", from, to)
}
