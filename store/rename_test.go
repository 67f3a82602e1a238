package store

import (
	"slices"
	"testing"
	"time"
)

// TestRenameUser: grace becomes ghopper; everything that was grace's is
// ghopper's, in her own bucket, in others' rosters and block lists, in the
// archive and in holds; other users' data is untouched.
func TestRenameUser(t *testing.T) {
	s := newStore(t)
	const old, neu = "grace@corp.example", "ghopper@corp.example"
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.PutRosterItem("grace", RosterItem{JID: "carol@corp.example", Subscription: "both", Groups: []string{"Friends"}})
	must(err)
	_, err = s.PutRosterItem("carol", RosterItem{JID: old, Name: "Grace", Subscription: "both"})
	must(err)
	_, err = s.PutRosterItem("carol", RosterItem{JID: "dave@corp.example", Subscription: "to"})
	must(err)
	must(s.PushOffline("grace", []byte("<message>one</message>"), now, 10))
	must(s.PushOffline("grace", []byte("<message>two</message>"), now, 10))
	must(s.SetVCard("grace", []byte("<vCard xmlns='vcard-temp'/>")))
	must(s.Block("dave", old, "eve@corp.example"))
	must(s.AddHold(Hold{Case: "case-1", Subject: old, Reason: "audit", Created: now, By: "legal"}))
	s.Archive(
		ArchiveRecord{Owner: old, With: "carol@corp.example", Outgoing: true, Kind: KindChat, Stanza: []byte("<message>hi</message>")},
		ArchiveRecord{Owner: "carol@corp.example", With: old, Kind: KindChat, Stanza: []byte("<message>hi</message>")},
	)
	must(s.FlushArchive())
	must(s.SetArchiveGroups(old, []string{"Sales"}))
	carolVer, err := s.RosterVersion("carol")
	must(err)

	must(s.RenameUser(old, neu))

	if items, _, _ := s.Roster("grace"); len(items) != 0 {
		t.Errorf("grace still has a roster: %+v", items)
	}
	items, _, err := s.Roster("ghopper")
	must(err)
	if len(items) != 1 || items[0].JID != "carol@corp.example" || !slices.Equal(items[0].Groups, []string{"Friends"}) {
		t.Errorf("ghopper's roster: %+v", items)
	}
	msgs, err := s.Offline("ghopper")
	must(err)
	if len(msgs) != 2 || string(msgs[1].Stanza) != "<message>two</message>" {
		t.Errorf("ghopper's offline messages: %+v", msgs)
	}
	if n, _ := s.OfflineCount("ghopper"); n != 2 {
		t.Errorf("offline count %d", n)
	}
	// The queue continues: a new message sorts after the moved ones.
	must(s.PushOffline("ghopper", []byte("<message>three</message>"), now, 10))
	if msgs, _ = s.Offline("ghopper"); len(msgs) != 3 || msgs[2].Seq <= msgs[1].Seq {
		t.Errorf("after a new push: %+v", msgs)
	}
	if v, _ := s.VCard("ghopper"); string(v) != "<vCard xmlns='vcard-temp'/>" {
		t.Errorf("vCard %q", v)
	}

	cr, ver, err := s.Roster("carol")
	must(err)
	var jids []string
	for _, it := range cr {
		jids = append(jids, it.JID+":"+it.Name)
	}
	if !slices.Equal(jids, []string{"dave@corp.example:", neu + ":Grace"}) {
		t.Errorf("carol's roster: %v", jids)
	}
	if ver <= carolVer {
		t.Errorf("carol's roster version %d not bumped from %d", ver, carolVer)
	}
	if bl, _ := s.BlockList("dave"); !slices.Equal(bl, []string{"eve@corp.example", neu}) {
		t.Errorf("dave's block list: %v", bl)
	}

	page, err := s.QueryArchive(ArchiveQuery{Owner: neu})
	must(err)
	if len(page.Records) != 1 || page.Records[0].Owner != neu || page.Records[0].With != "carol@corp.example" {
		t.Errorf("ghopper's archive: %+v", page.Records)
	}
	page, err = s.QueryArchive(ArchiveQuery{Owner: neu, With: "carol@corp.example"})
	must(err)
	if len(page.Records) != 1 {
		t.Errorf("the with-index did not move: %+v", page)
	}
	if page, _ = s.QueryArchive(ArchiveQuery{Owner: old}); len(page.Records) != 0 {
		t.Errorf("grace's archive remains: %+v", page.Records)
	}
	owners, err := s.ArchiveOwners()
	must(err)
	for _, o := range owners {
		if o.JID == old {
			t.Errorf("owner meta of %s remains", old)
		}
		if o.JID == neu && (o.Count != 1 || !slices.Equal(o.Groups, []string{"Sales"})) {
			t.Errorf("owner meta of %s: %+v", neu, o)
		}
	}
	if cases, _ := s.HeldBy(neu); !slices.Equal(cases, []string{"case-1"}) {
		t.Errorf("holds on %s: %v", neu, cases)
	}
	if cases, _ := s.HeldBy(old); len(cases) != 0 {
		t.Errorf("holds on %s: %v", old, cases)
	}
}

// TestRenameUserOntoExisting: data the new name already has wins; the old
// offline messages queue after the new ones.
func TestRenameUserOntoExisting(t *testing.T) {
	s := newStore(t)
	now := time.Now()
	if err := s.PushOffline("new", []byte("<message>new</message>"), now, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.PushOffline("old", []byte("<message>old</message>"), now, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVCard("new", []byte("<vCard>new</vCard>")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVCard("old", []byte("<vCard>old</vCard>")); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameUser("old@d", "new@d"); err != nil {
		t.Fatal(err)
	}
	msgs, _ := s.Offline("new")
	if len(msgs) != 2 || string(msgs[0].Stanza) != "<message>new</message>" || string(msgs[1].Stanza) != "<message>old</message>" {
		t.Errorf("offline: %+v", msgs)
	}
	if v, _ := s.VCard("new"); string(v) != "<vCard>new</vCard>" {
		t.Errorf("vCard %q", v)
	}
	for _, bad := range [][2]string{{"old", "new@d"}, {"@d", "new@d"}, {"a@d", "b\x00@d"}} {
		if err := s.RenameUser(bad[0], bad[1]); err == nil {
			t.Errorf("RenameUser(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
