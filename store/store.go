package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the database file inside the data directory.
const FileName = "ownchat.db"

// SchemaVersion is the bucket layout this binary reads and writes. See the
// history in doc.go; bump it together with a new entry in migrations.
const SchemaVersion = 2

// lockTimeout bounds how long Open waits for bbolt's exclusive flock. A
// second xmppd on the same data_dir must fail fast and say why, not hang.
const lockTimeout = time.Second

// batchDelay is how long a PushOffline waits for others to share its
// commit (bbolt's MaxBatchDelay, 10ms by default). The commit itself, two
// fsyncs, already lets the next batch fill up, so a short delay keeps a
// lone push fast without losing throughput under load; 1ms measured best
// of 0, 1, 3 and 10ms from 2 to 200 concurrent pushers (see
// BenchmarkPushOfflineParallel).
const batchDelay = time.Millisecond

// initialMmap is bbolt's first mapping of the file. On Linux it is
// address space only, neither memory nor disk, and mapping 1 GiB up front
// spares the remaps (each waits for every open transaction) while an
// archive grows. Elsewhere bbolt may grow the file to the mapping, so the
// default stays.
var initialMmap = func() int {
	if runtime.GOOS == "linux" {
		return 1 << 30
	}
	return 0
}()

// Top-level bucket names.
var (
	bucketMeta  = []byte("meta")
	bucketUsers = []byte("users")
	bucketKV    = []byte("kv")

	// The message archive (schema 2; see doc.go).
	bucketArc      = []byte("arc")
	bucketArcWith  = []byte("arcw")
	bucketArcOwner = []byte("arco")
	bucketHolds    = []byte("holds")
	bucketAudit    = []byte("audit")

	keySchema    = []byte("schema")
	keyArcLast   = []byte("arc.last")
	keyAuditHead = []byte("audit.head")
)

// Store is the durable state of one server: a single bbolt file. All
// methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string

	arc     *arcWriter    // the archive's queue and writer goroutine
	arcLast atomic.Uint64 // the last ArchiveID handed out (NewArchiveID)
}

// Open creates dir (0700) if needed and opens or creates dir/ownchat.db
// (0600). It creates or checks the schema version in bucket "meta" and runs
// the migrations up to SchemaVersion; a file written by a newer binary is
// refused rather than misread.
//
// Every commit is fsynced (bbolt's NoSync stays false), so a write that
// returned nil survives kill -9 and power loss.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, InitialMmapSize: initialMmap})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is locked by another xmppd (waited %v): %w", path, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	s := &Store{db: db, path: path}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadArchiveLast(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: archive ids: %w", path, err)
	}
	s.arc = startArcWriter(s)
	return s, nil
}

// Close commits what the archive writer still holds, then releases the
// file lock. Calls in flight finish first.
func (s *Store) Close() error {
	werr := s.arc.stop()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	if werr != nil {
		return fmt.Errorf("store: close %s: %w", s.path, werr)
	}
	return nil
}

// Path is the database file, for logs and backups.
func (s *Store) Path() string { return s.path }

// migrations[v] upgrades a file at schema version v to v+1 inside the same
// write transaction that records the new version, so an interrupted upgrade
// leaves the old version intact. Version 0 is a new, empty file.
var migrations = []func(tx *bolt.Tx) error{
	0: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketUsers, bucketKV} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	},
	1: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketArc, bucketArcWith, bucketArcOwner, bucketHolds, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	},
}

func (s *Store) migrate() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		var v uint64
		if raw := meta.Get(keySchema); raw != nil {
			if len(raw) != 8 {
				return fmt.Errorf("schema version record is %d bytes, want 8", len(raw))
			}
			v = getU64(raw)
		}
		if v > SchemaVersion {
			return fmt.Errorf("%s has schema version %d but this xmppd only knows up to version %d; run a newer xmppd", s.path, v, SchemaVersion)
		}
		if v == SchemaVersion {
			return nil
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		return meta.Put(keySchema, appendU64(nil, v))
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// schemaVersion reads the recorded version; for tests and diagnostics.
func (s *Store) schemaVersion() (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketMeta).Get(keySchema); len(raw) == 8 {
			v = getU64(raw)
		}
		return nil
	})
	return v, err
}
