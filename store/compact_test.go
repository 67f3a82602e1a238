package store

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCompactFileRemovesExpiredData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const marker = "MARKER-7f3e9c-expired-body"
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []ArchiveRecord
	for i := range 10_000 {
		recs = append(recs, ArchiveRecord{Owner: alice, ID: ArchiveIDAt(t0) + ArchiveID(i), With: "bob@corp.example",
			Stanza: []byte("<message><body>" + marker + "</body></message>")})
	}
	s.Archive(recs...)
	s.Archive(ArchiveRecord{Owner: alice, With: "bob@corp.example", Stanza: []byte("<message><body>kept</body></message>")})
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireArchive(context.Background(), alice, t0.Add(time.Hour), 1000, 0); err != nil || n != 10_000 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(s.Path())
	// Precondition: bbolt leaves freed pages as they were, which is the
	// reason CompactFile exists; without it this test would prove nothing.
	if !bytes.Contains(raw, []byte(marker)) {
		t.Fatal("marker not in the file before compaction")
	}

	before, after, err := CompactFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before {
		t.Errorf("compaction %d -> %d bytes", before, after)
	}
	raw, err = os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Error("expired message still in the file after CompactFile")
	}
	if fi, _ := os.Stat(s.Path()); fi.Mode().Perm() != 0o600 {
		t.Errorf("compacted file mode %v", fi.Mode().Perm())
	}
	if _, err := os.Stat(s.Path() + ".compact"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	page, err := s.QueryArchive(ArchiveQuery{Owner: alice, Count: true})
	if err != nil || page.Count != 1 || len(page.Records) != 1 || !bytes.Contains(page.Records[0].Stanza, []byte("kept")) {
		t.Errorf("after compaction: %+v, %v", page, err)
	}
	if id := s.NewArchiveID(); id <= page.Records[0].ID {
		t.Errorf("NewArchiveID %v after compaction, last %v", id, page.Records[0].ID)
	}
}

func TestCompactFileRefusesRunningServer(t *testing.T) {
	s := newStore(t)
	dir := s.Path()[:len(s.Path())-len(FileName)-1]
	_, _, err := CompactFile(dir)
	if err == nil || !strings.Contains(err.Error(), "server is running") {
		t.Errorf("CompactFile on an open store = %v", err)
	}
}
