package store

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestRosterItemRoundTrip(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		name string
		in   RosterItem
		want RosterItem // zero: same as in
	}{
		{name: "minimal", in: RosterItem{JID: "a@corp.example", Subscription: "none"}},
		{name: "empty subscription is none", in: RosterItem{JID: "b@corp.example"}, want: RosterItem{JID: "b@corp.example", Subscription: "none"}},
		{name: "to", in: RosterItem{JID: "c@corp.example", Subscription: "to", Name: "Cé"}},
		{name: "from", in: RosterItem{JID: "d@corp.example", Subscription: "from", Approved: true}},
		{name: "both with groups", in: RosterItem{JID: "e@corp.example", Subscription: "both", Groups: []string{"Friends", "", "Équipe ☃"}}},
		{name: "all flags", in: RosterItem{
			JID: "f@other.example", Name: "F", Subscription: "none", Ask: true, PendingIn: true, Approved: true,
			PendingInXML: []byte("<presence from='f@other.example' to='alice@corp.example' type='subscribe'/>"),
			Groups:       []string{"g"},
		}},
		{name: "long strings", in: RosterItem{JID: "g@corp.example", Subscription: "both", Name: strings.Repeat("n", 300), Groups: []string{strings.Repeat("x", 200)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want.JID == "" {
				want = tc.in
			}
			if _, err := s.PutRosterItem("alice", tc.in); err != nil {
				t.Fatal(err)
			}
			got, found, err := s.RosterItem("alice", tc.in.JID)
			if err != nil || !found {
				t.Fatalf("RosterItem = found %v, %v", found, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestRosterVersionBumps(t *testing.T) {
	s := newStore(t)
	const bob, carol = "bob@corp.example", "carol@corp.example"
	type step struct {
		name    string
		do      func() (uint64, error)
		wantVer uint64
	}
	put := func(it RosterItem) func() (uint64, error) {
		return func() (uint64, error) { return s.PutRosterItem("alice", it) }
	}
	del := func(jid string) func() (uint64, error) {
		return func() (uint64, error) { return s.DeleteRosterItem("alice", jid) }
	}
	update := func(jid string, f func(RosterItem, bool) (RosterItem, bool)) func() (uint64, error) {
		return func() (uint64, error) { _, v, err := s.UpdateRosterItem("alice", jid, f); return v, err }
	}
	steps := []step{
		{"delete absent on empty roster", del(bob), 0},
		{"add bob", put(RosterItem{JID: bob, Subscription: "none"}), 1},
		{"same item again", put(RosterItem{JID: bob, Subscription: "none"}), 1},
		{"rename bob", put(RosterItem{JID: bob, Subscription: "none", Name: "Bob"}), 2},
		{"add carol", put(RosterItem{JID: carol, Subscription: "to"}), 3},
		{"ask flag only", put(RosterItem{JID: carol, Subscription: "to", Ask: true}), 4},
		{"update no-op", update(carol, func(it RosterItem, _ bool) (RosterItem, bool) { return it, true }), 4},
		{"update groups", update(carol, func(it RosterItem, _ bool) (RosterItem, bool) {
			it.Groups = append(it.Groups, "Work")
			return it, true
		}), 5},
		{"update delete absent", update("nobody@x.example", func(it RosterItem, _ bool) (RosterItem, bool) { return it, false }), 5},
		{"delete bob", del(bob), 6},
		{"delete bob again", del(bob), 6},
		{"delete carol", del(carol), 7},
		{"re-add bob", put(RosterItem{JID: bob}), 8},
	}
	for _, st := range steps {
		ver, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if ver != st.wantVer {
			t.Errorf("%s: ver %d, want %d", st.name, ver, st.wantVer)
		}
		if got, _ := s.RosterVersion("alice"); got != st.wantVer {
			t.Errorf("%s: RosterVersion %d, want %d", st.name, got, st.wantVer)
		}
		if _, got, _ := s.Roster("alice"); got != st.wantVer {
			t.Errorf("%s: Roster ver %d, want %d", st.name, got, st.wantVer)
		}
	}
	// Other users' versions are independent.
	if v, _ := s.RosterVersion("bob"); v != 0 {
		t.Errorf("bob's version %d, want 0", v)
	}
}

func TestRosterOrderAndIsolation(t *testing.T) {
	s := newStore(t)
	for _, j := range []string{"zed@corp.example", "amy@corp.example", "max@other.example"} {
		if _, err := s.PutRosterItem("alice", RosterItem{JID: j}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutRosterItem("bob", RosterItem{JID: "alice@corp.example"}); err != nil {
		t.Fatal(err)
	}
	items, ver, err := s.Roster("alice")
	if err != nil {
		t.Fatal(err)
	}
	var jids []string
	for _, it := range items {
		jids = append(jids, it.JID)
	}
	if want := []string{"amy@corp.example", "max@other.example", "zed@corp.example"}; !reflect.DeepEqual(jids, want) || ver != 3 {
		t.Errorf("Roster = %q ver %d, want %q ver 3", jids, ver, want)
	}
	items, ver, err = s.Roster("nobody")
	if err != nil || len(items) != 0 || ver != 0 {
		t.Errorf("Roster(unknown) = %v, %d, %v", items, ver, err)
	}
	if _, found, err := s.RosterItem("alice", "alice@corp.example"); found || err != nil {
		t.Errorf("RosterItem(absent) = found %v, %v", found, err)
	}
	if _, found, err := s.RosterItem("nobody", "x@y"); found || err != nil {
		t.Errorf("RosterItem(unknown user) = found %v, %v", found, err)
	}
}

func TestRosterErrors(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		name string
		user string
		it   RosterItem
		want string
	}{
		{"empty user", "", RosterItem{JID: "a@b"}, "empty user"},
		{"empty jid", "alice", RosterItem{}, "without JID"},
		{"bad subscription", "alice", RosterItem{JID: "a@b", Subscription: "pending"}, `invalid subscription "pending"`},
		{"jid too long", "alice", RosterItem{JID: strings.Repeat("a", 40000)}, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.PutRosterItem(tc.user, tc.it)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("err = %v, want store: ...%s", err, tc.want)
			}
		})
	}
	if v, _ := s.RosterVersion("alice"); v != 0 {
		t.Errorf("failed puts bumped version to %d", v)
	}
}

func TestUpdateRosterItem(t *testing.T) {
	s := newStore(t)
	const bob = "bob@corp.example"
	it, ver, err := s.UpdateRosterItem("alice", bob, func(it RosterItem, found bool) (RosterItem, bool) {
		if found || it.JID != bob || it.Subscription != "" {
			t.Errorf("first call: it=%+v found=%v, want zero item with JID", it, found)
		}
		it.JID = "ignored@elsewhere" // forced back to bob
		it.PendingIn = true
		return it, true
	})
	if err != nil || ver != 1 || it.JID != bob || !it.PendingIn {
		t.Fatalf("UpdateRosterItem = %+v %d %v", it, ver, err)
	}
	if _, found, _ := s.RosterItem("alice", "ignored@elsewhere"); found {
		t.Error("fn changed the key")
	}
	_, _, err = s.UpdateRosterItem("alice", bob, func(it RosterItem, found bool) (RosterItem, bool) {
		if !found || !it.PendingIn || it.Subscription != "none" {
			t.Errorf("second call: it=%+v found=%v", it, found)
		}
		return it, false
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.RosterItem("alice", bob); found {
		t.Error("keep=false did not delete")
	}
	// A bad item from fn is an error and changes nothing.
	if _, _, err := s.UpdateRosterItem("alice", bob, func(it RosterItem, _ bool) (RosterItem, bool) {
		it.Subscription = "bogus"
		return it, true
	}); err == nil {
		t.Error("bad subscription from fn accepted")
	}
	if v, _ := s.RosterVersion("alice"); v != 2 {
		t.Errorf("version %d, want 2", v)
	}
}

// TestUpdateRosterItemAtomic has many goroutines increment a counter kept in
// an item's Name: a lost update would show as a smaller final count.
func TestUpdateRosterItemAtomic(t *testing.T) {
	s := newStore(t)
	const workers, each = 8, 25
	const jid = "counter@corp.example"
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, _, err := s.UpdateRosterItem("alice", jid, func(it RosterItem, _ bool) (RosterItem, bool) {
					n, _ := strconv.Atoi(it.Name)
					it.Name = strconv.Itoa(n + 1)
					it.Groups = append(it.Groups[:0:0], fmt.Sprint("w", w))
					return it, true
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	it, _, _ := s.RosterItem("alice", jid)
	ver, _ := s.RosterVersion("alice")
	if it.Name != strconv.Itoa(workers*each) || ver != workers*each {
		t.Errorf("after %d updates: Name %q, ver %d", workers*each, it.Name, ver)
	}
}

func TestRosterReturnsCopies(t *testing.T) {
	s := newStore(t)
	xml := []byte("<presence type='subscribe'/>")
	if _, err := s.PutRosterItem("alice", RosterItem{JID: "b@c", PendingIn: true, PendingInXML: xml, Groups: []string{"G"}}); err != nil {
		t.Fatal(err)
	}
	xml[0] = 'X' // the caller's buffer is not kept
	items, _, _ := s.Roster("alice")
	items[0].PendingInXML[1] = 'Y'
	// Churn the file so freed pages get reused.
	for i := range 200 {
		s.PutRosterItem("alice", RosterItem{JID: fmt.Sprintf("x%03d@c", i), Name: strings.Repeat("z", 100)})
	}
	it, _, _ := s.RosterItem("alice", "b@c")
	if string(it.PendingInXML) != "<presence type='subscribe'/>" || items[0].Groups[0] != "G" {
		t.Errorf("stored stanza changed: %q, groups %q", it.PendingInXML, items[0].Groups)
	}
}

func TestDecodeRosterItemCorrupt(t *testing.T) {
	good, err := appendRosterItem(nil, RosterItem{JID: "a@b", Name: "N", Groups: []string{"g1", "g2"}, PendingInXML: []byte("<x/>")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(good) {
		if _, _, err := decodeRosterItem([]byte("a@b"), good[:i], nil); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		}
	}
	for _, v := range [][]byte{
		{2, 0, 0, 0, 0, 0},                         // unknown version
		{1, 9, 0, 0, 0, 0},                         // bad subscription
		{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, // absurd group count
		append(append([]byte(nil), good...), 'x'),  // trailing garbage
	} {
		if _, _, err := decodeRosterItem([]byte("a@b"), v, nil); err == nil {
			t.Errorf("decode(%v): no error", v)
		}
	}
}

func FuzzDecodeRosterItem(f *testing.F) {
	for _, it := range []RosterItem{
		{},
		{Name: "n", Subscription: "both", Ask: true, Groups: []string{"a", "b"}, PendingInXML: []byte("<p/>")},
	} {
		v, _ := appendRosterItem(nil, it)
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		it, _, err := decodeRosterItem([]byte("j@d"), v, nil)
		if err != nil {
			return
		}
		// Whatever decodes must survive an encode/decode round trip.
		again, err := appendRosterItem(nil, it)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", it, err)
		}
		it2, _, err := decodeRosterItem([]byte("j@d"), again, nil)
		if err != nil || !reflect.DeepEqual(it, it2) {
			t.Errorf("round trip: %v -> %+v -> %v -> %+v (%v)", v, it, again, it2, err)
		}
	})
}

func BenchmarkRoster(b *testing.B) {
	s := newStore(b)
	for i := range 100 {
		it := RosterItem{
			JID:          fmt.Sprintf("contact%03d@corp.example", i),
			Name:         fmt.Sprintf("Contact Number %d", i),
			Subscription: "both",
			Groups:       []string{"Engineering", "Berlin"},
		}
		if _, err := s.PutRosterItem("alice", it); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		items, _, err := s.Roster("alice")
		if err != nil || len(items) != 100 {
			b.Fatal(len(items), err)
		}
	}
}
