package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func appendAudits(t *testing.T, s *Store, n int) []AuditRecord {
	t.Helper()
	t0 := time.Date(2025, 4, 1, 10, 0, 0, 123456789, time.FixedZone("CEST", 7200))
	var recs []AuditRecord
	for i := range n {
		r, err := s.AppendAudit(t0.Add(time.Duration(i)*time.Minute), "officer@corp.example", "export", fmt.Sprintf("user=u%d@corp.example", i))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestAuditChain(t *testing.T) {
	s := newStore(t)
	recs := appendAudits(t, s, 5)
	for i, r := range recs {
		if r.Seq != uint64(i+1) || len(r.Hash) != 64 || r.Time.Location() != time.UTC {
			t.Errorf("record %d = %+v", i, r)
		}
		if i == 0 && r.Prev != "" || i > 0 && r.Prev != recs[i-1].Hash {
			t.Errorf("record %d prev %q", i, r.Prev)
		}
	}
	got, err := s.AuditRecords()
	if err != nil || len(got) != 5 {
		t.Fatalf("AuditRecords = %d, %v", len(got), err)
	}
	for i := range got {
		if got[i] != recs[i] && !(got[i].Time.Equal(recs[i].Time) && got[i].Hash == recs[i].Hash) {
			t.Errorf("stored %+v, appended %+v", got[i], recs[i])
		}
	}
	if probs, err := s.VerifyAudit(); err != nil || probs != nil {
		t.Errorf("VerifyAudit of an intact log = %+v, %v", probs, err)
	}
}

func TestAuditConcurrentAppendsChain(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := range 10 {
				if _, err := s.AppendAudit(time.Now(), fmt.Sprint("actor", w), "purge", fmt.Sprint(i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	recs, _ := s.AuditRecords()
	if probs, err := s.VerifyAudit(); err != nil || probs != nil || len(recs) != 200 {
		t.Errorf("%d records, problems %+v, %v", len(recs), probs, err)
	}
}

// TestAuditTamper changes the stored log behind the store's back, as an
// attacker with the file would, and expects VerifyAudit to name the record.
func TestAuditTamper(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(tx *bolt.Tx) error
		seq    uint64
		reason string
	}{
		{"one byte of the detail", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketAudit)
			v := append([]byte(nil), b.Get(appendU64(nil, 3))...)
			i := strings.Index(string(v), "u2@")
			v[i] = 'x'
			return b.Put(appendU64(nil, 3), v)
		}, 3, "hash does not match"},
		{"one byte of the time", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketAudit)
			v := append([]byte(nil), b.Get(appendU64(nil, 2))...)
			v[8]++ // low byte of the seconds
			return b.Put(appendU64(nil, 2), v)
		}, 2, "hash does not match"},
		{"rewritten with a fresh hash", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketAudit)
			r, _ := decodeAudit(appendU64(nil, 2), b.Get(appendU64(nil, 2)))
			r.Detail = "nothing to see"
			r.Hash = auditHash(&r)
			val := appendTime([]byte{encV1}, r.Time)
			for _, f := range []string{r.Actor, r.Action, r.Detail, r.Prev, r.Hash} {
				val = appendString(val, f)
			}
			return b.Put(appendU64(nil, 2), val)
		}, 3, "prev does not match"},
		{"middle record deleted", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAudit).Delete(appendU64(nil, 3))
		}, 4, "record 3 is missing"},
		{"first record deleted", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAudit).Delete(appendU64(nil, 1))
		}, 2, "record 1 is missing"},
		{"last record deleted", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAudit).Delete(appendU64(nil, 5))
		}, 5, "record 5 is missing"},
		{"last two deleted", func(tx *bolt.Tx) error {
			tx.Bucket(bucketAudit).Delete(appendU64(nil, 5))
			return tx.Bucket(bucketAudit).Delete(appendU64(nil, 4))
		}, 5, "records 4 to 5 are missing"},
		{"last deleted and head rewound", func(tx *bolt.Tx) error {
			tx.Bucket(bucketAudit).Delete(appendU64(nil, 5))
			r, _ := decodeAudit(appendU64(nil, 4), tx.Bucket(bucketAudit).Get(appendU64(nil, 4)))
			return tx.Bucket(bucketMeta).Put(keyAuditHead, append(appendU64(nil, 4), r.Hash+"0"...))
		}, 4, "head (record 4) does not match"},
		{"record appended without head", func(tx *bolt.Tx) error {
			r := AuditRecord{Seq: 6, Time: time.Now().UTC(), Actor: "mallory"}
			r.Hash = auditHash(&r)
			val := appendTime([]byte{encV1}, r.Time)
			for _, f := range []string{r.Actor, r.Action, r.Detail, r.Prev, r.Hash} {
				val = appendString(val, f)
			}
			return tx.Bucket(bucketAudit).Put(appendU64(nil, 6), val)
		}, 6, "prev does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			appendAudits(t, s, 5)
			if err := s.db.Update(tc.tamper); err != nil {
				t.Fatal(err)
			}
			probs, err := s.VerifyAudit()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range probs {
				found = found || p.Seq == tc.seq && strings.Contains(p.Reason, tc.reason)
			}
			if !found {
				t.Errorf("VerifyAudit = %+v, want seq %d %q", probs, tc.seq, tc.reason)
			}
		})
	}
}

func TestAuditAppendAfterTamperStaysBroken(t *testing.T) {
	s := newStore(t)
	appendAudits(t, s, 3)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAudit).Delete(appendU64(nil, 3)) }); err != nil {
		t.Fatal(err)
	}
	// A new record must not paper over the removal.
	appendAudits(t, s, 1)
	if probs, _ := s.VerifyAudit(); len(probs) == 0 {
		t.Error("removal of the last record hidden by a later append")
	}
}
