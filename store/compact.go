package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// compactTxBytes bounds one transaction of the copy, so compacting a large
// archive does not hold it all in memory.
const compactTxBytes = 64 << 20

// CompactFile rewrites the store in dir into a fresh file without free
// pages (deleted data is then gone from disk) and replaces the old file.
// The server must not be running (the file lock is checked).
//
// bbolt reuses freed pages but never returns them to the file system and
// never overwrites their old content until reused, so after an erasure the
// deleted messages may still be readable in the file; this copy writes
// only live pages. The new file is fsynced, renamed over the old one while
// the old one is still locked, and the directory is fsynced, so a crash
// leaves either the old or the new file, never a mix.
func CompactFile(dir string) (before, after int64, err error) {
	path := filepath.Join(dir, FileName)
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	before = fi.Size()
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: false})
	if errors.Is(err, berrors.ErrTimeout) {
		return 0, 0, fmt.Errorf("store: compact: %s is locked: the server is running; stop xmppd first: %w", path, err)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: open %s: %w", path, err)
	}
	defer src.Close()

	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("store: compact: remove stale %s: %w", tmp, err)
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: create %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, src, compactTxBytes); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: close %s: %w", tmp, err)
	}
	if err := syncPath(tmp); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: replace %s: %w", path, err)
	}
	if err := syncPath(dir); err != nil {
		return 0, 0, err
	}
	if fi, err = os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	return before, fi.Size(), nil
}

// syncPath fsyncs a file or directory.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: compact: sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: compact: sync %s: %w", path, err)
	}
	return nil
}
