package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OfflinePush is one message for PushOfflineBatch.
type OfflinePush struct {
	User   string
	Stanza []byte
	Stamp  time.Time
}

// offlineBatchMax bounds the messages of one PushOfflineBatch transaction,
// so that a very large batch does not hold the writer lock (and every
// other writer) for the whole of it.
const offlineBatchMax = 1000

// PushOfflineBatch stores msgs in as few transactions as it can (one per
// offlineBatchMax messages, each one fsync). Every message is bounded by
// max per user exactly like PushOffline: full[i] reports that msgs[i] was
// not stored because its user's queue was full (ErrOfflineFull for
// PushOffline). The messages of one user are stored in their order in msgs.
// done is how many of msgs, from the first, were decided (stored durably or
// refused as full): len(msgs) unless err is not nil, and then the messages
// from done on, those of the failed transaction and after it, are not
// stored.
//
// PushOffline's Batch shares fsyncs between concurrent callers only when
// they arrive within its short delay; a caller that has many messages at
// hand at once (Shutdown ending thousands of parked sessions) gets one
// commit per offlineBatchMax messages here however they would have arrived.
func (s *Store) PushOfflineBatch(msgs []OfflinePush, max int) (full []bool, done int, err error) {
	full = make([]bool, len(msgs))
	for i := range msgs {
		if msgs[i].User == "" {
			return full, 0, fmt.Errorf("store: push offline batch, message %d: %w", i, errEmptyUser)
		}
	}
	for start := 0; start < len(msgs); start += offlineBatchMax {
		end := min(start+offlineBatchMax, len(msgs))
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := start; i < end; i++ {
				stored, err := putOffline(tx, msgs[i], max)
				if err != nil {
					return fmt.Errorf("message %d for %q: %w", i, msgs[i].User, err)
				}
				full[i] = !stored
			}
			return nil
		})
		if err != nil {
			clear(full[start:])
			return full, start, fmt.Errorf("store: push offline batch: %w", err)
		}
	}
	return full, len(msgs), nil
}

// putOffline appends m to its user's offline queue in tx unless the queue
// holds max messages already; it reports whether it stored m.
func putOffline(tx *bolt.Tx, m OfflinePush, max int) (bool, error) {
	if max <= 0 {
		return false, nil
	}
	ub, ob, err := createUserSub(tx, m.User, subOffline)
	if err != nil {
		return false, err
	}
	n := readU64(ub, keyOfflineLen)
	if n >= uint64(max) {
		return false, nil
	}
	seq, err := ob.NextSequence()
	if err != nil {
		return false, err
	}
	// bbolt keeps keys and values until commit: fresh memory for each.
	val := make([]byte, 0, 1+timeLen+len(m.Stanza))
	val = appendTime(append(val, encV1), m.Stamp)
	val = append(val, m.Stanza...)
	kc := make([]byte, 0, 16)
	kc = appendU64(appendU64(kc, seq), n+1)
	if err := ob.Put(kc[:8], val); err != nil {
		return false, err
	}
	return true, ub.Put(keyOfflineLen, kc[8:])
}
