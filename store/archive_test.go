package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestArchiveIDString(t *testing.T) {
	for _, tc := range []struct {
		id   ArchiveID
		want string
	}{
		{1, "0000000000000001"},
		{0x5f3a_1b2c_3d4e, "00005f3a1b2c3d4e"},
		{math.MaxUint64, "ffffffffffffffff"},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", uint64(tc.id), got, tc.want)
		}
		if back, err := ParseArchiveID(tc.want); err != nil || back != tc.id {
			t.Errorf("ParseArchiveID(%q) = %d, %v", tc.want, back, err)
		}
	}
	// Fixed width: string order is id order.
	if a, b := ArchiveID(9).String(), ArchiveID(10).String(); a >= b {
		t.Errorf("%q >= %q", a, b)
	}
	for _, bad := range []string{"", "1", "000000000000000g", "00000000000000001", "000000000000000A", "0000000000000000", " 000000000000001", "+000000000000001"} {
		if _, err := ParseArchiveID(bad); !errors.Is(err, ErrNoArchiveID) {
			t.Errorf("ParseArchiveID(%q) = %v, want ErrNoArchiveID", bad, err)
		}
	}
}

func TestNewArchiveIDIncreasesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.NewArchiveID(), s.NewArchiveID()
	if b <= a {
		t.Fatalf("ids %v then %v", a, b)
	}
	// A record from a clock an hour ahead: after a restart with the clock
	// back to normal, ids must still be larger.
	future := ArchiveIDAt(time.Now().Add(time.Hour))
	s.Archive(ArchiveRecord{Owner: "alice@corp.example", ID: future, With: "bob@corp.example", Stanza: []byte("<message/>")})
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id := s.NewArchiveID(); id <= future {
		t.Errorf("after restart NewArchiveID = %v, want > %v", id, future)
	}
}

func TestNewArchiveIDConcurrentUnique(t *testing.T) {
	s := newStore(t)
	const workers, per = 8, 2000
	ids := make([][]ArchiveID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range per {
				ids[w] = append(ids[w], s.NewArchiveID())
			}
		})
	}
	wg.Wait()
	all := slices.Concat(ids...)
	slices.Sort(all)
	if len(slices.Compact(all)) != workers*per {
		t.Error("NewArchiveID handed out an id twice")
	}
}

// fixture is a small archive with ids that are easy to reason about:
// alice's 1:1 archive alternates bob and carol (bob on odd ids), the room
// archive alternates two occupants, and neighbours whose keys sort right
// next to alice's must never leak into her results.
type fixture struct {
	s    *Store
	base ArchiveID
}

const (
	alice = "alice@corp.example"
	room  = "room@conference.corp.example"
	nAli  = 40
	nRoom = 30
)

func newFixture(t *testing.T) *fixture {
	s := newStore(t)
	base := ArchiveIDAt(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var recs []ArchiveRecord
	for i := range nAli {
		with := "carol@corp.example"
		if i%2 == 1 {
			with = "bob@corp.example"
		}
		recs = append(recs, ArchiveRecord{Owner: alice, ID: base + ArchiveID(i)*1_000_000, With: with, Outgoing: i%3 == 0,
			Kind: KindChat, Stanza: fmt.Appendf(nil, "<message id='a%d'/>", i)})
	}
	for i := range nRoom {
		recs = append(recs, ArchiveRecord{Owner: room, ID: base + ArchiveID(i)*1_000_000 + 7, With: fmt.Sprintf("%s/nick%d", room, i%2),
			Kind: KindGroupchat, Stanza: fmt.Appendf(nil, "<message id='r%d'/>", i)})
	}
	// Neighbours: "alice@corp.example." sorts right after alice's keys;
	// "alice@corp.exampl" right before them.
	for _, o := range []string{"alice@corp.example.", "alice@corp.exampl", "bob@corp.example"} {
		for i := range 5 {
			recs = append(recs, ArchiveRecord{Owner: o, ID: base + ArchiveID(i)*1_000_000, With: "bob@corp.example", Stanza: []byte("<message/>")})
		}
	}
	// Queue in reverse so the writer must sort.
	slices.Reverse(recs)
	s.Archive(recs...)
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, base: base}
}

func (f *fixture) id(i int) ArchiveID { return f.base + ArchiveID(i)*1_000_000 }

// aliceIdx returns the indexes of alice's records with id index in [lo, hi)
// and keep(i).
func span(lo, hi int, keep func(int) bool) []int {
	var out []int
	for i := lo; i < hi; i++ {
		if keep == nil || keep(i) {
			out = append(out, i)
		}
	}
	return out
}

func odd(i int) bool  { return i%2 == 1 }
func even(i int) bool { return i%2 == 0 }

func TestQueryArchive(t *testing.T) {
	f := newFixture(t)
	at := func(i int) time.Time { return f.id(i).Time() }
	roomID := func(i int) ArchiveID { return f.id(i) + 7 }
	for _, tc := range []struct {
		name     string
		q        ArchiveQuery
		want     []int // record indexes (alice: a<i>, room: r<i>)
		complete bool
		count    int
	}{
		{"all", ArchiveQuery{Owner: alice, Count: true}, span(0, nAli, nil), true, nAli},
		{"unknown owner", ArchiveQuery{Owner: "nobody@corp.example", Count: true}, nil, true, 0},
		{"max forward", ArchiveQuery{Owner: alice, Max: 5, Count: true}, span(0, 5, nil), false, nAli},
		{"max backward", ArchiveQuery{Owner: alice, Max: 5, Backward: true, Count: true}, span(nAli-5, nAli, nil), false, nAli},
		{"max exactly all forward", ArchiveQuery{Owner: alice, Max: nAli}, span(0, nAli, nil), true, 0},
		{"max exactly all backward", ArchiveQuery{Owner: alice, Max: nAli, Backward: true}, span(0, nAli, nil), true, 0},
		{"with bob", ArchiveQuery{Owner: alice, With: "bob@corp.example", Count: true}, span(0, nAli, odd), true, nAli / 2},
		{"with bob max backward", ArchiveQuery{Owner: alice, With: "bob@corp.example", Max: 3, Backward: true}, []int{35, 37, 39}, false, 0},
		{"with bob resource matches nothing", ArchiveQuery{Owner: alice, With: "bob@corp.example/phone", Count: true}, nil, true, 0},
		{"with unknown", ArchiveQuery{Owner: alice, With: "dave@corp.example", Count: true}, nil, true, 0},
		{"start", ArchiveQuery{Owner: alice, Start: at(30), Count: true}, span(30, nAli, nil), true, 10},
		{"end inclusive", ArchiveQuery{Owner: alice, End: at(4), Count: true}, span(0, 5, nil), true, 5},
		{"start end", ArchiveQuery{Owner: alice, Start: at(10), End: at(19), Count: true}, span(10, 20, nil), true, 10},
		{"start end sub-microsecond", ArchiveQuery{Owner: alice, Start: at(10).Add(-time.Nanosecond), End: at(11).Add(999 * time.Nanosecond)}, []int{10, 11}, true, 0},
		{"start after end", ArchiveQuery{Owner: alice, Start: at(20), End: at(10), Count: true}, nil, true, 0},
		{"end before epoch", ArchiveQuery{Owner: alice, End: time.Unix(-5, 0), Count: true}, nil, true, 0},
		{"start before epoch", ArchiveQuery{Owner: alice, Start: time.Unix(-5, 0), Max: 1}, []int{0}, false, 0},
		{"start end with carol max", ArchiveQuery{Owner: alice, With: "carol@corp.example", Start: at(10), End: at(30), Max: 4, Count: true}, []int{10, 12, 14, 16}, false, 11},
		{"after id", ArchiveQuery{Owner: alice, AfterID: f.id(35), Count: true}, span(36, nAli, nil), true, nAli},
		{"before id", ArchiveQuery{Owner: alice, BeforeID: f.id(3), Count: true}, span(0, 3, nil), true, nAli},
		{"before id backward max", ArchiveQuery{Owner: alice, BeforeID: f.id(20), Max: 2, Backward: true}, []int{18, 19}, false, 0},
		{"before first id backward", ArchiveQuery{Owner: alice, BeforeID: f.id(0), Max: 2, Backward: true}, nil, true, 0},
		{"after last id", ArchiveQuery{Owner: alice, AfterID: f.id(nAli - 1), Max: 2}, nil, true, 0},
		{"between ids", ArchiveQuery{Owner: alice, AfterID: f.id(5), BeforeID: f.id(9)}, []int{6, 7, 8}, true, 0},
		{"after id not stored", ArchiveQuery{Owner: alice, AfterID: f.id(5) + 1, Max: 1}, []int{6}, false, 0},
		{"before id 1", ArchiveQuery{Owner: alice, BeforeID: 1}, nil, true, 0},
		{"after max id", ArchiveQuery{Owner: alice, AfterID: math.MaxUint64}, nil, true, 0},
		{"ids", ArchiveQuery{Owner: alice, IDs: []ArchiveID{f.id(7), f.id(3), f.id(3), f.id(100), 12345}, Count: true}, []int{3, 7}, true, 2},
		{"ids with", ArchiveQuery{Owner: alice, With: "bob@corp.example", IDs: []ArchiveID{f.id(2), f.id(3), f.id(4), f.id(5)}, Count: true}, []int{3, 5}, true, 2},
		{"ids start end", ArchiveQuery{Owner: alice, Start: at(3), End: at(4), IDs: []ArchiveID{f.id(2), f.id(3), f.id(4), f.id(5)}}, []int{3, 4}, true, 0},
		{"ids max", ArchiveQuery{Owner: alice, Max: 2, IDs: []ArchiveID{f.id(2), f.id(3), f.id(4)}, Count: true}, []int{2, 3}, false, 3},
		{"ids max backward", ArchiveQuery{Owner: alice, Max: 2, Backward: true, IDs: []ArchiveID{f.id(2), f.id(3), f.id(4)}}, []int{3, 4}, false, 0},
		{"ids of another owner", ArchiveQuery{Owner: "alice@corp.example.", IDs: []ArchiveID{f.id(7)}}, nil, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := f.s.QueryArchive(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var want []ArchiveID
			for _, i := range tc.want {
				want = append(want, f.id(i))
			}
			checkPage(t, page, want, tc.complete, tc.count)
			for _, r := range page.Records {
				i := int((r.ID - f.base) / 1_000_000)
				if r.Owner != alice || string(r.Stanza) != fmt.Sprintf("<message id='a%d'/>", i) || r.Outgoing != (i%3 == 0) || r.Kind != KindChat {
					t.Errorf("record %v = %+v (stanza %q)", r.ID, r, r.Stanza)
				}
				if wantWith := map[bool]string{true: "bob@corp.example", false: "carol@corp.example"}[odd(i)]; r.With != wantWith {
					t.Errorf("record %v with %q, want %q", r.ID, r.With, wantWith)
				}
			}
		})
	}

	// Room archives: With with a resource is one occupant, the bare room
	// JID every occupant.
	for _, tc := range []struct {
		name  string
		q     ArchiveQuery
		want  []int
		count int
	}{
		{"room all", ArchiveQuery{Owner: room, Count: true}, span(0, nRoom, nil), nRoom},
		{"room bare with", ArchiveQuery{Owner: room, With: room, Count: true}, span(0, nRoom, nil), nRoom},
		{"room full with", ArchiveQuery{Owner: room, With: room + "/nick1", Count: true}, span(0, nRoom, odd), nRoom / 2},
		{"room full with backward", ArchiveQuery{Owner: room, With: room + "/nick0", Max: 2, Backward: true, Count: true}, []int{26, 28}, nRoom / 2},
		{"room nick prefix is not a match", ArchiveQuery{Owner: room, With: room + "/nick", Count: true}, nil, 0},
		{"room ids bare with", ArchiveQuery{Owner: room, With: room, IDs: []ArchiveID{roomID(1), roomID(2)}}, []int{1, 2}, 2},
		{"room ids full with", ArchiveQuery{Owner: room, With: room + "/nick0", IDs: []ArchiveID{roomID(1), roomID(2)}}, []int{2}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := f.s.QueryArchive(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var want []ArchiveID
			for _, i := range tc.want {
				want = append(want, roomID(i))
			}
			wantCount := 0
			if tc.q.Count {
				wantCount = tc.count
			}
			checkPage(t, page, want, page.Complete, wantCount)
			for _, r := range page.Records {
				i := int((r.ID - 7 - f.base) / 1_000_000)
				if r.Kind != KindGroupchat || r.With != fmt.Sprintf("%s/nick%d", room, i%2) || string(r.Stanza) != fmt.Sprintf("<message id='r%d'/>", i) {
					t.Errorf("room record %+v", r)
				}
			}
		})
	}
}

func checkPage(t *testing.T, page ArchivePage, want []ArchiveID, complete bool, count int) {
	t.Helper()
	var got []ArchiveID
	for _, r := range page.Records {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ids = %v\nwant  %v", got, want)
	}
	if page.Complete != complete {
		t.Errorf("Complete = %v, want %v", page.Complete, complete)
	}
	if page.Count != count {
		t.Errorf("Count = %d, want %d", page.Count, count)
	}
}

// TestQueryArchivePaging pages through filtered ranges with RSM after/before
// ids, the way a MAM client does, until Complete.
func TestQueryArchivePaging(t *testing.T) {
	f := newFixture(t)
	for _, q := range []ArchiveQuery{
		{Owner: alice},
		{Owner: alice, With: "bob@corp.example"},
		{Owner: alice, Start: f.id(7).Time(), End: f.id(33).Time()},
		{Owner: room, With: room + "/nick0"},
		{Owner: room, With: room},
	} {
		for _, max := range []int{1, 3, 7, 100} {
			all := q
			whole, err := f.s.QueryArchive(all)
			if err != nil {
				t.Fatal(err)
			}
			want := recIDs(whole.Records)
			if len(want) == 0 {
				t.Fatalf("%+v matches nothing", q)
			}
			for _, backward := range []bool{false, true} {
				var got []ArchiveID
				p := q
				p.Max, p.Backward = max, backward
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("%+v: no end after %d pages", p, pages)
					}
					page, err := f.s.QueryArchive(p)
					if err != nil {
						t.Fatal(err)
					}
					if len(page.Records) > max {
						t.Fatalf("page of %d, max %d", len(page.Records), max)
					}
					ids := recIDs(page.Records)
					if !slices.IsSorted(ids) {
						t.Fatalf("page not ascending: %v", ids)
					}
					if backward {
						got = append(ids, got...)
						if len(ids) > 0 {
							p.BeforeID = ids[0]
						}
					} else {
						got = append(got, ids...)
						if len(ids) > 0 {
							p.AfterID = ids[len(ids)-1]
						}
					}
					if page.Complete {
						break
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%+v max %d backward %v: paged %v\nwant %v", q, max, backward, got, want)
				}
			}
		}
	}
}

func recIDs(recs []ArchiveRecord) []ArchiveID {
	ids := make([]ArchiveID, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestQueryArchiveCountLimit(t *testing.T) {
	s := newStore(t)
	base := ArchiveIDAt(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	recs := make([]ArchiveRecord, countLimit+1)
	for i := range recs {
		recs[i] = ArchiveRecord{Owner: alice, ID: base + ArchiveID(i), With: "bob@corp.example", Stanza: []byte("<m/>")}
	}
	s.Archive(recs...)
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    ArchiveQuery
		want int
	}{
		{ArchiveQuery{Owner: alice, Count: true, Max: 1}, countLimit + 1}, // the counter, no walk
		{ArchiveQuery{Owner: alice, With: "bob@corp.example", Count: true, Max: 1}, -1},
		{ArchiveQuery{Owner: alice, Start: base.Time(), Count: true, Max: 1}, -1},
		{ArchiveQuery{Owner: alice, Start: (base + 1).Time(), Count: true, Max: 1}, countLimit},
	} {
		page, err := s.QueryArchive(tc.q)
		if err != nil || page.Count != tc.want {
			t.Errorf("%+v: Count = %d, %v; want %d", tc.q, page.Count, err, tc.want)
		}
	}
}

func TestForEachArchive(t *testing.T) {
	f := newFixture(t)
	// More than one chunk.
	var recs []ArchiveRecord
	for i := range 3*arcChunk + 5 {
		recs = append(recs, ArchiveRecord{Owner: "big@corp.example", ID: f.base + ArchiveID(i), With: "x@corp.example", Stanza: []byte(strconv.Itoa(i))})
	}
	f.s.Archive(recs...)
	if err := f.s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    ArchiveQuery
		want int
	}{
		{ArchiveQuery{Owner: "big@corp.example", Max: 3, Backward: true}, len(recs)},
		{ArchiveQuery{Owner: alice, With: "bob@corp.example"}, nAli / 2},
		{ArchiveQuery{Owner: alice, IDs: []ArchiveID{f.id(1), f.id(2)}}, 2},
		{ArchiveQuery{Owner: alice, Start: f.id(10).Time(), End: f.id(12).Time()}, 3},
	} {
		page, err := f.s.QueryArchive(ArchiveQuery{Owner: tc.q.Owner, With: tc.q.With, IDs: tc.q.IDs, Start: tc.q.Start, End: tc.q.End})
		if err != nil {
			t.Fatal(err)
		}
		var got []ArchiveID
		err = f.s.ForEachArchive(tc.q, func(r ArchiveRecord) error {
			got = append(got, r.ID)
			if r.Owner != tc.q.Owner || len(r.Stanza) == 0 {
				t.Errorf("record %+v", r)
			}
			return nil
		})
		if err != nil || len(got) != tc.want || !slices.Equal(got, recIDs(page.Records)) {
			t.Errorf("%+v: ForEachArchive gave %d records (%v), want %d", tc.q, len(got), err, tc.want)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := f.s.ForEachArchive(ArchiveQuery{Owner: "big@corp.example"}, func(ArchiveRecord) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Errorf("ForEachArchive after fn error: %v after %d", err, n)
	}
}

func TestArchiveConcurrentWriters(t *testing.T) {
	s := newStore(t)
	const writers, per = 50, 400
	var wg sync.WaitGroup
	buf := make([][]byte, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				// Reuse the buffer, as the server does: Archive must copy.
				buf[w] = fmt.Appendf(buf[w][:0], "<message id='%d-%d'/>", w, i)
				s.Archive(ArchiveRecord{Owner: fmt.Sprintf("u%d@corp.example", w%10), With: "peer@corp.example", Stanza: buf[w]})
			}
		})
	}
	wg.Wait()
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	owners, err := s.ArchiveOwners()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	seen := map[string]bool{}
	for _, o := range owners {
		total += int(o.Count)
		err := s.ForEachArchive(ArchiveQuery{Owner: o.JID}, func(r ArchiveRecord) error {
			seen[string(r.Stanza)] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		page, _ := s.QueryArchive(ArchiveQuery{Owner: o.JID, Max: 1})
		if o.First != page.Records[0].ID || o.Kind != KindChat {
			t.Errorf("owner %+v, first record %v", o, page.Records[0].ID)
		}
	}
	if len(owners) != 10 || total != writers*per || len(seen) != writers*per {
		t.Errorf("%d owners, count %d, %d distinct stanzas; want 10, %d, %d", len(owners), total, len(seen), writers*per, writers*per)
	}
}

func TestArchiveBackPressure(t *testing.T) {
	s := newStore(t)
	// One call with more records than the queue holds must not deadlock.
	recs := make([]ArchiveRecord, arcQueueRecords+100)
	for i := range recs {
		recs[i] = ArchiveRecord{Owner: alice, With: "bob@corp.example", Stanza: []byte("<m/>")}
	}
	s.Archive(recs...)
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	if page, err := s.QueryArchive(ArchiveQuery{Owner: alice, Max: 1, Count: true}); err != nil || page.Count != len(recs) {
		t.Errorf("count %d, %v; want %d", page.Count, err, len(recs))
	}
}

func TestArchiveOverwriteKeepsCountAndIndex(t *testing.T) {
	s := newStore(t)
	rec := ArchiveRecord{Owner: alice, ID: 1000, With: "bob@corp.example", Stanza: []byte("<a/>")}
	s.Archive(rec, ArchiveRecord{Owner: alice, ID: 2000, With: "bob@corp.example", Stanza: []byte("<b/>")})
	// The same key again, in one batch and in a later one, with another With.
	rec.With, rec.Stanza = "carol@corp.example", []byte("<a2/>")
	s.Archive(rec, rec)
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	rec.With, rec.Stanza = "dave@corp.example", []byte("<a3/>")
	s.Archive(rec)
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	for with, want := range map[string]int{"": 2, "bob@corp.example": 1, "carol@corp.example": 0, "dave@corp.example": 1} {
		page, err := s.QueryArchive(ArchiveQuery{Owner: alice, With: with, Count: true})
		if err != nil || page.Count != want || len(page.Records) != want {
			t.Errorf("with %q: count %d, %d records, %v; want %d", with, page.Count, len(page.Records), err, want)
		}
	}
	page, _ := s.QueryArchive(ArchiveQuery{Owner: alice, IDs: []ArchiveID{1000}})
	if len(page.Records) != 1 || string(page.Records[0].Stanza) != "<a3/>" {
		t.Errorf("record 1000 = %+v", page.Records)
	}
}

func TestArchiveRefusesBadRecords(t *testing.T) {
	s := newStore(t)
	s.Archive(ArchiveRecord{With: "bob@corp.example"}, ArchiveRecord{Owner: "a\x00b"}, ArchiveRecord{Owner: alice, Stanza: []byte("<ok/>")})
	if err := s.FlushArchive(); err == nil {
		t.Error("FlushArchive after bad records = nil")
	}
	if err := s.FlushArchive(); err != nil {
		t.Errorf("second FlushArchive = %v, the error was already reported", err)
	}
	if page, _ := s.QueryArchive(ArchiveQuery{Owner: alice}); len(page.Records) != 1 {
		t.Errorf("the good record was not archived: %+v", page)
	}
}

func TestPushOfflineArchived(t *testing.T) {
	s := newStore(t)
	recs := func(tag string) []ArchiveRecord {
		return []ArchiveRecord{
			{Owner: alice, With: "bob@corp.example", Outgoing: true, Stanza: []byte(tag)},
			{Owner: "bob@corp.example", With: alice, Stanza: []byte(tag)},
		}
	}
	stamp := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := s.PushOfflineArchived("bob", []byte("<m1/>"), stamp, 1, recs("<m1/>")); err != nil {
		t.Fatal(err)
	}
	if err := s.PushOfflineArchived("bob", []byte("<m2/>"), stamp, 1, recs("<m2/>")); !errors.Is(err, ErrOfflineFull) {
		t.Fatalf("push over the bound = %v, want ErrOfflineFull", err)
	}
	for _, owner := range []string{alice, "bob@corp.example"} {
		page, err := s.QueryArchive(ArchiveQuery{Owner: owner, Count: true})
		if err != nil || page.Count != 1 || len(page.Records) != 1 || string(page.Records[0].Stanza) != "<m1/>" || page.Records[0].ID == 0 {
			t.Errorf("archive of %s = %+v, %v; want only <m1/>", owner, page, err)
		}
	}
	if msgs, _ := s.Offline("bob"); len(msgs) != 1 {
		t.Errorf("offline = %d messages, want 1", len(msgs))
	}
}

func TestExpireArchive(t *testing.T) {
	f := newFixture(t)
	s := f.s
	ctx := context.Background()
	cut := f.id(25).Time()
	if n, err := s.CountArchiveBefore(alice, cut); err != nil || n != 25 {
		t.Fatalf("CountArchiveBefore = %d, %v; want 25", n, err)
	}
	n, err := s.ExpireArchive(ctx, alice, cut, 4, time.Microsecond)
	if err != nil || n != 25 {
		t.Fatalf("ExpireArchive = %d, %v; want 25", n, err)
	}
	page, err := s.QueryArchive(ArchiveQuery{Owner: alice, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, page, idsOf(f, span(25, nAli, nil)), true, nAli-25)
	// The index went with the records.
	page, _ = s.QueryArchive(ArchiveQuery{Owner: alice, With: "bob@corp.example", Count: true})
	checkPage(t, page, idsOf(f, span(25, nAli, odd)), true, 8)
	// Neighbours untouched.
	for _, o := range []string{"alice@corp.example.", "alice@corp.exampl"} {
		if p, _ := s.QueryArchive(ArchiveQuery{Owner: o, Count: true}); p.Count != 5 || len(p.Records) != 5 {
			t.Errorf("neighbour %s lost records: %+v", o, p)
		}
	}
	owners, _ := s.ArchiveOwners()
	for _, o := range owners {
		if o.JID == alice && (o.Count != nAli-25 || o.First != f.id(25) || o.Last != f.id(nAli-1)) {
			t.Errorf("owner after expiry = %+v", o)
		}
	}

	// Room: the bare-with index entries go too.
	if n, err := s.ExpireArchive(ctx, room, time.Now(), 1000, 0); err != nil || n != nRoom {
		t.Fatalf("expire room = %d, %v", n, err)
	}
	if p, _ := s.QueryArchive(ArchiveQuery{Owner: room, With: room, Count: true}); p.Count != 0 || len(p.Records) != 0 {
		t.Errorf("room after expiry: %+v", p)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketArcWith).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if strings.HasPrefix(string(k), room) {
				t.Errorf("index key left behind: %q", k)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	owners, _ = s.ArchiveOwners()
	for _, o := range owners {
		if o.JID == room && (o.Count != 0 || o.First != 0) {
			t.Errorf("empty room owner = %+v", o)
		}
	}

	// Cancelled: nothing, or one batch, goes.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := s.ExpireArchive(cctx, alice, time.Now(), 1, 0); !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("cancelled expiry = %d, %v", n, err)
	}
}

func idsOf(f *fixture, idx []int) []ArchiveID {
	var ids []ArchiveID
	for _, i := range idx {
		ids = append(ids, f.id(i))
	}
	return ids
}

func TestHoldsBlockExpiryAndErasure(t *testing.T) {
	f := newFixture(t)
	s := f.s
	ctx := context.Background()
	created := time.Date(2025, 2, 1, 9, 0, 0, 0, time.UTC)
	for _, h := range []Hold{
		{Case: "case-7", Subject: alice, Reason: "litigation", Created: created, By: "officer"},
		{Case: "case-7", Subject: room, Reason: "first", Created: created, By: "officer"},
		{Case: "case-7", Subject: room, Reason: "updated", Created: created, By: "officer"}, // same key: update
		{Case: "case-1", Subject: alice, Created: created},
	} {
		if err := s.AddHold(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddHold(Hold{Case: "", Subject: alice}); err == nil {
		t.Error("hold without a case accepted")
	}
	holds, err := s.Holds()
	if err != nil || len(holds) != 3 || holds[0].Case != "case-1" || holds[2].Subject != room || holds[2].Reason != "updated" ||
		holds[1].By != "officer" || !holds[1].Created.Equal(created) {
		t.Fatalf("Holds = %+v, %v", holds, err)
	}
	if cases, _ := s.HeldBy(alice); !slices.Equal(cases, []string{"case-1", "case-7"}) {
		t.Errorf("HeldBy(alice) = %q", cases)
	}
	if cases, _ := s.HeldBy("bob@corp.example"); cases != nil {
		t.Errorf("HeldBy(bob) = %q, want nil", cases)
	}
	if n, err := s.ExpireArchive(ctx, alice, time.Now(), 10, 0); err != nil || n != 0 {
		t.Errorf("expiry of a held archive = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.DeleteArchive(ctx, room); !errors.Is(err, ErrHeld) || n != 0 {
		t.Errorf("erasure of a held archive = %d, %v; want ErrHeld", n, err)
	}
	if n, err := s.ReleaseHold("case-7"); err != nil || n != 2 {
		t.Errorf("ReleaseHold = %d, %v; want 2", n, err)
	}
	if n, err := s.DeleteArchive(ctx, room); err != nil || n != nRoom {
		t.Errorf("erasure after release = %d, %v; want %d", n, err, nRoom)
	}
	if n, err := s.ExpireArchive(ctx, alice, time.Now(), 10, 0); err != nil || n != 0 {
		t.Errorf("alice still held by case-1, expired %d, %v", n, err)
	}
	owners, _ := s.ArchiveOwners()
	for _, o := range owners {
		if o.JID == room {
			t.Errorf("erased room still listed: %+v", o)
		}
	}
}

func TestArchiveGroups(t *testing.T) {
	f := newFixture(t)
	if err := f.s.SetArchiveGroups(alice, []string{"Legal", "Sales"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetArchiveGroups("leaver@corp.example", []string{"Legal"}); err != nil {
		t.Fatal(err)
	}
	// More records must keep the groups.
	f.s.Archive(ArchiveRecord{Owner: alice, With: "bob@corp.example", Stanza: []byte("<m/>")})
	if err := f.s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	owners, err := f.s.ArchiveOwners()
	if err != nil {
		t.Fatal(err)
	}
	var jids []string
	for _, o := range owners {
		jids = append(jids, o.JID)
		switch o.JID {
		case alice:
			if !slices.Equal(o.Groups, []string{"Legal", "Sales"}) || o.Count != nAli+1 {
				t.Errorf("alice = %+v", o)
			}
		case "leaver@corp.example":
			if !slices.Equal(o.Groups, []string{"Legal"}) || o.Count != 0 {
				t.Errorf("leaver = %+v", o)
			}
		case room:
			if o.Kind != KindGroupchat || o.Count != nRoom {
				t.Errorf("room = %+v", o)
			}
		}
	}
	if !slices.IsSorted(jids) || len(jids) != 6 {
		t.Errorf("owners = %q", jids)
	}
}

func TestExpireOffline(t *testing.T) {
	s := newStore(t)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		if err := s.PushOffline("bob", []byte("<m/>"), t0.Add(time.Duration(i)*time.Hour), 10); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.ExpireOffline("bob", t0.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("ExpireOffline = %d, %v; want 2", n, err)
	}
	msgs, _ := s.Offline("bob")
	if c, _ := s.OfflineCount("bob"); c != 3 || len(msgs) != 3 || !msgs[0].Stamp.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after expiry count %d, messages %+v", c, msgs)
	}
	if n, err := s.ExpireOffline("nobody", time.Now()); n != 0 || err != nil {
		t.Errorf("ExpireOffline(nobody) = %d, %v", n, err)
	}
}

func TestMigrateSchema1To2(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		users, _ := tx.CreateBucket(bucketUsers)
		tx.CreateBucket(bucketKV)
		users.CreateBucket([]byte("alice"))
		return meta.Put(keySchema, appendU64(nil, 1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.schemaVersion(); v != 2 {
		t.Errorf("schema %d after migration, want 2", v)
	}
	s.Archive(ArchiveRecord{Owner: alice, With: "bob@corp.example", Stanza: []byte("<m/>")})
	if err := s.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(time.Now(), "op", "test", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.AddHold(Hold{Case: "c", Subject: alice}); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFlushesArchive(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		s.Archive(ArchiveRecord{Owner: alice, With: "bob@corp.example", Stanza: fmt.Appendf(nil, "<m%d/>", i)})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushArchive(); err == nil {
		t.Error("FlushArchive after Close = nil")
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if page, _ := s.QueryArchive(ArchiveQuery{Owner: alice, Count: true, Max: 1}); page.Count != 1000 {
		t.Errorf("after Close and reopen %d records, want 1000", page.Count)
	}
}

// Kill safety: a child process archives as fast as it can and prints each
// batch of ids after FlushArchive returned; the parent kills it with
// SIGKILL mid-stream and checks that every printed id survived.

const arcCrashEnv = "OWNCHAT_ARCHIVE_CRASH_CHILD"

func TestArchiveCrashChild(t *testing.T) {
	dir := os.Getenv(arcCrashEnv)
	if dir == "" {
		t.Skip("child of TestArchiveCrashKeepsFlushedRecords")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		var ids []ArchiveID
		for i := range 200 {
			id := s.NewArchiveID()
			ids = append(ids, id)
			s.Archive(ArchiveRecord{Owner: fmt.Sprintf("u%d@corp.example", i%7), ID: id, With: "peer@corp.example", Stanza: []byte("<message><body>crash</body></message>")})
		}
		if err := s.FlushArchive(); err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			fmt.Fprintf(out, "u%d@corp.example %d\n", i%7, uint64(id))
		}
		out.Flush()
	}
}

func TestArchiveCrashKeepsFlushedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestArchiveCrashChild$")
	cmd.Env = append(os.Environ(), arcCrashEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string][]ArchiveID{}
	sc := bufio.NewScanner(stdout)
	n := 0
	for sc.Scan() && n < 20_000 {
		owner, idText, ok := strings.Cut(sc.Text(), " ")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil {
			continue // go test's own output
		}
		acked[owner] = append(acked[owner], ArchiveID(id))
		n++
	}
	cmd.Process.Kill()
	cmd.Wait()
	if n < 20_000 {
		t.Fatalf("child acknowledged only %d records", n)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for owner, ids := range acked {
		page, err := s.QueryArchive(ArchiveQuery{Owner: owner, IDs: ids, Count: true})
		if err != nil || page.Count != len(ids) {
			t.Errorf("%s: %d of %d acknowledged records survived (%v)", owner, page.Count, len(ids), err)
		}
	}
}
