package store

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMain fails the package when a test leaks goroutines (bbolt's batch
// timers, a store left open).
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	code := m.Run()
	if code == 0 {
		var leaked []string
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if leaked = leakedGoroutines(); len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "store: %d goroutines leaked:\n\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of goroutines other than the caller's
// and those the runtime and the test or fuzz driver keep.
func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n")[1:] { // [0] is this goroutine
		if strings.Contains(g, "os/signal.signal_recv") || strings.Contains(g, "testing.(*F).Fuzz") ||
			strings.Contains(g, "testing.runFuzzTests") || strings.Contains(g, "runtime.goexit0") {
			continue
		}
		leaked = append(leaked, g)
	}
	return leaked
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "xmppd")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := filepath.Join(dir, "ownchat.db"); s.Path() != want {
		t.Errorf("Path() = %q, want %q", s.Path(), want)
	}
	for _, tc := range []struct {
		path string
		perm os.FileMode
	}{
		{dir, 0o700},
		{filepath.Dir(dir), 0o700},
		{s.Path(), 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.perm {
			t.Errorf("%s: mode %v, want %v", tc.path, got, tc.perm)
		}
	}
	if s.db.NoSync {
		t.Error("NoSync is set: acknowledged writes would not survive a crash")
	}
	if v, err := s.schemaVersion(); err != nil || v != SchemaVersion {
		t.Errorf("schema version = %d, %v; want %d", v, err, SchemaVersion)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("dir is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(f); err == nil || !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("Open(file) = %v, want store: error", err)
		}
	})
	t.Run("not a bbolt file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "store: open") {
			t.Errorf("Open(garbage) = %v, want store: open error", err)
		}
	})
}

func TestOpenLocked(t *testing.T) {
	s := newStore(t)
	start := time.Now()
	s2, err := Open(filepath.Dir(s.Path()))
	if err == nil {
		s2.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
	if !strings.Contains(err.Error(), "is locked by another xmppd") || !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("error %q does not say the file is locked", err)
	}
	if d := time.Since(start); d < lockTimeout/2 || d > 5*lockTimeout { // bbolt polls the flock every 50ms
		t.Errorf("gave up after %v, want about %v", d, lockTimeout)
	}
}

func TestSchemaNewerRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, appendU64(nil, SchemaVersion+41))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, err = Open(dir)
	if err == nil {
		t.Fatal("Open of a newer schema succeeded")
	}
	for _, want := range []string{fmt.Sprint(SchemaVersion + 41), fmt.Sprintf("up to version %d", SchemaVersion)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The refused Open must have released the lock.
	db, err = bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("lock not released after refused Open: %v", err)
	}
	db.Close()
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Date(2024, 5, 1, 12, 0, 0, 7, time.UTC)
	steps := []error{
		func() error {
			_, err := s.PutRosterItem("alice", RosterItem{JID: "bob@corp.example", Subscription: "both"})
			return err
		}(),
		s.PushOffline("alice", []byte("<message/>"), stamp, 10),
		s.SetVCard("alice", []byte("<vCard xmlns='vcard-temp'/>")),
		s.SetPrivate("alice", "{storage:bookmarks}storage", []byte("<storage/>")),
		s.SetLastActivity("alice", stamp, "gone"),
		s.Block("alice", "spam@evil.example"),
		s.Put("muc", "room@conference.corp.example", []byte("cfg")),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items, ver, err := s.Roster("alice")
	if err != nil || len(items) != 1 || ver != 1 || items[0].Subscription != "both" {
		t.Errorf("roster after reopen = %+v ver %d, %v", items, ver, err)
	}
	msgs, err := s.Offline("alice")
	if err != nil || len(msgs) != 1 || !msgs[0].Stamp.Equal(stamp) || string(msgs[0].Stanza) != "<message/>" {
		t.Errorf("offline after reopen = %+v, %v", msgs, err)
	}
	if v, _ := s.VCard("alice"); string(v) != "<vCard xmlns='vcard-temp'/>" {
		t.Errorf("vcard after reopen = %q", v)
	}
	if v, _ := s.Private("alice", "{storage:bookmarks}storage"); string(v) != "<storage/>" {
		t.Errorf("private after reopen = %q", v)
	}
	if ts, st, _ := s.LastActivity("alice"); !ts.Equal(stamp) || st != "gone" {
		t.Errorf("last activity after reopen = %v %q", ts, st)
	}
	if l, _ := s.BlockList("alice"); len(l) != 1 {
		t.Errorf("block list after reopen = %q", l)
	}
	if v, _ := s.Get("muc", "room@conference.corp.example"); string(v) != "cfg" {
		t.Errorf("kv after reopen = %q", v)
	}
}
