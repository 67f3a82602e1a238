package store

import (
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestPrivate(t *testing.T) {
	s := newStore(t)
	const bm, notes = "{storage:bookmarks}storage", "{storage:rosternotes}storage"
	type step struct {
		user, key  string
		set        []byte // passed to SetPrivate when doSet
		doSet      bool
		wantSetErr string
		get        string // expected Private(user, key) after the step; "<nil>" for nil
	}
	for i, st := range []step{
		{user: "alice", key: bm, get: "<nil>"},
		{user: "alice", key: bm, doSet: true, set: []byte("<storage xmlns='storage:bookmarks'/>"), get: "<storage xmlns='storage:bookmarks'/>"},
		{user: "alice", key: notes, get: "<nil>"},
		{user: "bob", key: bm, get: "<nil>"},
		{user: "alice", key: bm, doSet: true, set: []byte("<storage xmlns='storage:bookmarks'><conference/></storage>"), get: "<storage xmlns='storage:bookmarks'><conference/></storage>"},
		{user: "alice", key: notes, doSet: true, set: []byte{}, get: ""},
		{user: "alice", key: bm, doSet: true, set: nil, get: "<nil>"},
		{user: "nobody", key: bm, doSet: true, set: nil, get: "<nil>"},
		{user: "", key: bm, doSet: true, set: []byte("<x/>"), wantSetErr: "empty user"},
		{user: "alice", key: "", doSet: true, set: []byte("<x/>"), wantSetErr: "without key"},
	} {
		if st.doSet {
			err := s.SetPrivate(st.user, st.key, st.set)
			if st.wantSetErr != "" {
				if err == nil || !strings.Contains(err.Error(), st.wantSetErr) {
					t.Errorf("step %d: SetPrivate err %v, want %q", i, err, st.wantSetErr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		got, err := s.Private(st.user, st.key)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if gs := string(got); (got == nil && st.get != "<nil>") || (got != nil && gs != st.get) {
			t.Errorf("step %d: Private = %q (nil %v), want %q", i, got, got == nil, st.get)
		}
	}
}

func TestVCard(t *testing.T) {
	s := newStore(t)
	for i, tc := range []struct {
		set  []byte
		want []byte
	}{
		{nil, nil},
		{[]byte("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>"), []byte("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")},
		{[]byte("<vCard xmlns='vcard-temp'/>"), []byte("<vCard xmlns='vcard-temp'/>")},
		{nil, nil},
	} {
		if err := s.SetVCard("alice", tc.set); err != nil {
			t.Fatal(err)
		}
		got, err := s.VCard("alice")
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("step %d: VCard = %q, %v; want %q", i, got, err, tc.want)
		}
	}
	if v, err := s.VCard("nobody"); v != nil || err != nil {
		t.Errorf("VCard(unknown) = %q, %v", v, err)
	}
	if err := s.SetVCard("", []byte("<vCard/>")); err == nil {
		t.Error("SetVCard for empty user accepted")
	}
}

func TestLastActivity(t *testing.T) {
	s := newStore(t)
	berlin := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name   string
		t      time.Time
		status string
	}{
		{"zero time", time.Time{}, ""},
		{"with status", time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC), "Gone fishing 🎣"},
		{"other zone", time.Date(2025, 3, 4, 5, 6, 7, 0, berlin), ""},
		{"before 1970", time.Date(1960, 1, 1, 0, 0, 0, 1, time.UTC), "old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.SetLastActivity("alice", tc.t, tc.status); err != nil {
				t.Fatal(err)
			}
			got, status, err := s.LastActivity("alice")
			if err != nil || !got.Equal(tc.t) || status != tc.status || got.Location() != time.UTC {
				t.Errorf("LastActivity = %v %q %v; want %v %q", got, status, err, tc.t, tc.status)
			}
		})
	}
	if ts, st, err := s.LastActivity("nobody"); !ts.IsZero() || st != "" || err != nil {
		t.Errorf("LastActivity(unknown) = %v %q %v", ts, st, err)
	}
}

func TestBlockList(t *testing.T) {
	s := newStore(t)
	for i, tc := range []struct {
		block, unblock []string
		unblockAll     bool
		want           []string
	}{
		{want: nil},
		{block: []string{"spam@evil.example", "a@b.example"}, want: []string{"a@b.example", "spam@evil.example"}},
		{block: []string{"a@b.example", "evil.example"}, want: []string{"a@b.example", "evil.example", "spam@evil.example"}},
		{unblock: []string{"a@b.example", "not@blocked.example"}, want: []string{"evil.example", "spam@evil.example"}},
		{unblockAll: true, want: nil},
		{unblockAll: true, want: nil},
		{block: []string{"x@y.example"}, want: []string{"x@y.example"}},
	} {
		if len(tc.block) > 0 {
			if err := s.Block("alice", tc.block...); err != nil {
				t.Fatal(err)
			}
		}
		if len(tc.unblock) > 0 || tc.unblockAll {
			if err := s.Unblock("alice", tc.unblock...); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.BlockList("alice")
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("step %d: BlockList = %q, %v; want %q", i, got, err, tc.want)
		}
	}
	if err := s.Block("alice", "ok@x", ""); err == nil {
		t.Error("empty JID accepted")
	}
	if got, _ := s.BlockList("alice"); !reflect.DeepEqual(got, []string{"x@y.example"}) {
		t.Errorf("failed Block changed the list: %q", got)
	}
	if err := s.Unblock("nobody"); err != nil {
		t.Errorf("Unblock(unknown) = %v", err)
	}
}

func TestDeleteUser(t *testing.T) {
	s := newStore(t)
	fill := func(user string) {
		t.Helper()
		now := time.Now()
		if _, err := s.PutRosterItem(user, RosterItem{JID: "x@corp.example"}); err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			s.PushOffline(user, []byte("<message/>"), now, 10),
			s.SetPrivate(user, "{a}b", []byte("<b xmlns='a'/>")),
			s.SetVCard(user, []byte("<vCard/>")),
			s.SetLastActivity(user, now, "bye"),
			s.Block(user, "spam@evil.example"),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	fill("alice")
	fill("bob")
	if err := s.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser("alice"); err != nil {
		t.Errorf("second DeleteUser = %v", err)
	}

	items, ver, _ := s.Roster("alice")
	msgs, _ := s.Offline("alice")
	n, _ := s.OfflineCount("alice")
	priv, _ := s.Private("alice", "{a}b")
	vc, _ := s.VCard("alice")
	ts, st, _ := s.LastActivity("alice")
	bl, _ := s.BlockList("alice")
	if len(items) != 0 || ver != 0 || len(msgs) != 0 || n != 0 || priv != nil || vc != nil || !ts.IsZero() || st != "" || len(bl) != 0 {
		t.Errorf("alice not erased: roster %v ver %d offline %v/%d private %q vcard %q last %v %q blocked %q",
			items, ver, msgs, n, priv, vc, ts, st, bl)
	}
	// Nothing of alice is left in the file at all.
	var left []string
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, _ []byte) error {
			left = append(left, string(k))
			return nil
		})
	})
	if !reflect.DeepEqual(left, []string{"bob"}) {
		t.Errorf("users left: %q, want [bob]", left)
	}
	// Bob is untouched.
	if items, _, _ := s.Roster("bob"); len(items) != 1 {
		t.Errorf("bob's roster: %v", items)
	}
	if n, _ := s.OfflineCount("bob"); n != 1 {
		t.Errorf("bob's offline count: %d", n)
	}
	if err := s.DeleteUser(""); err == nil {
		t.Error("DeleteUser(\"\") accepted")
	}
}
