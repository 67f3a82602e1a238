package muc

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ownchat/ownchat/store"
	bolt "go.etcd.io/bbolt"
)

// manyRooms is the scale target: persistent rooms in the store.
const manyRooms = 100_000

// fillRooms writes n persistent room records straight into the store file
// in one bbolt transaction: through store.Put that would be n fsyncs
// (minutes), and only the records matter here. The layout kv/<bucket>/<key>
// is store's generic key/value space (store/kv.go).
func fillRooms(t testing.TB, dir string, n int) {
	t.Helper()
	fillRoomsOf(t, dir, svcJID, n)
}

// fillRoomsOf is fillRooms for the service domain svc.
func fillRoomsOf(t testing.TB, dir, svc string, n int) {
	t.Helper()
	st, err := store.Open(dir) // creates the file and its schema
	if err != nil {
		t.Fatal(err)
	}
	path := st.Path()
	st.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(Config{Domain: svc}, nil, newFake(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket([]byte("kv")).CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		for i := range n {
			r := newRoom(s, "room"+strconv.Itoa(i)+"@"+svc)
			r.cfg.Persistent, r.cfg.Name = true, "Room "+strconv.Itoa(i)
			r.affs["owner"+strconv.Itoa(i%1000)+"@example.com"] = Owner
			if err := b.Put([]byte(r.jid), r.encode()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFillRoomStore is the store generator for measurements with the real
// binary (e2e TestMUCRoomsAtScale). It runs only when
// OWNCHAT_FILL_ROOMS_DIR names a data_dir: it writes OWNCHAT_FILL_ROOMS
// (default 100,000) persistent rooms room0..roomN-1 of the service
// OWNCHAT_FILL_ROOMS_SERVICE (default conference.example.com) into it.
func TestFillRoomStore(t *testing.T) {
	dir := os.Getenv("OWNCHAT_FILL_ROOMS_DIR")
	if dir == "" {
		t.Skip("set OWNCHAT_FILL_ROOMS_DIR to fill a data_dir with rooms")
	}
	n := manyRooms
	if v := os.Getenv("OWNCHAT_FILL_ROOMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			t.Fatalf("OWNCHAT_FILL_ROOMS=%q: want a count", v)
		}
	}
	svc := os.Getenv("OWNCHAT_FILL_ROOMS_SERVICE")
	if svc == "" {
		svc = svcJID
	}
	fillRoomsOf(t, dir, svc, n)
	t.Logf("%d rooms of %s in %s", n, svc, dir)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestStartupWithManyRooms: with 100,000 persistent rooms in the store,
// New costs what it costs with none (rooms load on first use), and the
// heap grows with the rooms in use, not with the rooms stored. Figures are
// logged (go test -v -run StartupWithManyRooms ./muc).
func TestStartupWithManyRooms(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100,000-room store")
	}
	dir := t.TempDir()
	fillRooms(t, dir, manyRooms)
	if fi, err := os.Stat(dir + "/ownchat.db"); err == nil {
		t.Logf("store file with %d rooms: %.1f MiB", manyRooms, float64(fi.Size())/(1<<20))
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	before := heapInUse()
	start := time.Now()
	s, err := New(Config{Domain: svcJID}, st, newFake(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if err := s.SyncBoundRooms(); err != nil { // no bound rooms: must not walk the rooms
		t.Fatal(err)
	}
	afterNew := heapInUse()
	t.Logf("muc.New with %d stored rooms: %v, heap +%d KiB", manyRooms, took, (int64(afterNew)-int64(before))/1024)
	s.mu.Lock()
	if n := len(s.rooms); n != 0 {
		t.Errorf("%d rooms loaded at start", n)
	}
	s.mu.Unlock()
	if grew := int64(afterNew) - int64(before); grew > 1<<20 {
		t.Errorf("heap grew %d bytes at start with %d stored rooms", grew, manyRooms)
	}

	// Using 100 rooms loads 100; the others stay in the store.
	for i := range 100 {
		r, _, cond := s.room("room"+strconv.Itoa(i*997)+"@"+svcJID, false, "")
		if r == nil || cond != "" {
			t.Fatalf("room %d: %v %q", i*997, r, cond)
		}
	}
	s.mu.Lock()
	loaded := len(s.rooms)
	s.mu.Unlock()
	afterUse := heapInUse()
	t.Logf("100 rooms in use: %d loaded, heap +%d KiB over start", loaded, (int64(afterUse)-int64(afterNew))/1024)
	if loaded != 100 {
		t.Errorf("%d rooms loaded, want 100", loaded)
	}
}

// BenchmarkNewWithManyRooms measures muc.New over a 100,000-room store.
func BenchmarkNewWithManyRooms(b *testing.B) {
	dir := b.TempDir()
	fillRooms(b, dir, manyRooms)
	st, err := store.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(Config{Domain: svcJID}, st, newFake(b), nil); err != nil {
			b.Fatal(err)
		}
	}
}
