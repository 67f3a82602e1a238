package store

import (
	"slices"
	"testing"
)

func TestRecordArchiveGroups(t *testing.T) {
	s := newStore(t)
	const (
		ann  = "ann@corp.example"  // has an archive
		ben  = "ben@corp.example"  // no archive yet
		cleo = "cleo@corp.example" // no archive, no groups
	)
	s.Archive(ArchiveRecord{Owner: ann, With: ben, Kind: KindChat, Stanza: []byte("<message/>")})
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	recorded := func(owner string) ([]string, bool) {
		t.Helper()
		owners, err := s.ArchiveOwners()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range owners {
			if o.JID == owner {
				return o.Groups, true
			}
		}
		return nil, false
	}
	for _, c := range []struct {
		name   string
		groups map[string][]string
		create bool
		want   int      // owners changed
		owner  string   // checked afterwards
		listed bool     // owner has an archive record (meta) afterwards
		after  []string // owner's recorded groups afterwards
	}{
		{"first record", map[string][]string{ann: {"Legal", "Sales"}}, false, 1, ann, true, []string{"Legal", "Sales"}},
		{"same set, other order", map[string][]string{ann: {"Sales", "Legal"}}, false, 0, ann, true, []string{"Legal", "Sales"}},
		{"changed", map[string][]string{ann: {"Legal"}}, false, 1, ann, true, []string{"Legal"}},
		{"no archive, sync path", map[string][]string{ben: {"Legal"}}, false, 0, ben, false, nil},
		{"no archive, no groups, message path", map[string][]string{cleo: nil}, true, 0, cleo, false, nil},
		{"no archive, message path", map[string][]string{ben: {"Legal"}, cleo: nil}, true, 1, ben, true, []string{"Legal"}},
		{"left every group", map[string][]string{ann: nil}, false, 1, ann, true, nil},
	} {
		n, err := s.RecordArchiveGroups(c.groups, c.create)
		if err != nil || n != c.want {
			t.Errorf("%s: RecordArchiveGroups = %d, %v; want %d", c.name, n, err, c.want)
		}
		got, listed := recorded(c.owner)
		if listed != c.listed || !slices.Equal(got, c.after) {
			t.Errorf("%s: %s recorded %q (listed %v); want %q (listed %v)", c.name, c.owner, got, listed, c.after, c.listed)
		}
	}

	// Nothing changed: no write transaction at all (it is asked on the
	// message path and after every directory sync).
	writes := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }
	before := writes()
	if n, err := s.RecordArchiveGroups(map[string][]string{ann: nil, ben: {"Legal"}}, true); err != nil || n != 0 {
		t.Fatalf("unchanged: %d, %v", n, err)
	}
	if w := writes() - before; w != 0 {
		t.Errorf("an unchanged record wrote %d pages", w)
	}
	if n, err := s.RecordArchiveGroups(map[string][]string{ann: {"HR"}}, false); err != nil || n != 1 {
		t.Fatalf("changed: %d, %v", n, err)
	}
	if writes() == before {
		t.Error("a changed record wrote nothing the stats saw: the check above proves nothing")
	}

	// ben's first message lands after his groups: they stay, and his
	// archive is a normal 1:1 archive.
	s.Archive(ArchiveRecord{Owner: ben, With: ann, Kind: KindChat, Stanza: []byte("<message/>")})
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	owners, err := s.ArchiveOwners()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range owners {
		if o.JID == ben && (o.Count != 1 || o.Kind != KindChat || !slices.Equal(o.Groups, []string{"Legal"})) {
			t.Errorf("ben after his first record = %+v", o)
		}
	}
	if _, err := s.RecordArchiveGroups(map[string][]string{"": {"Legal"}}, true); err == nil {
		t.Error("an empty owner was accepted")
	}
}
