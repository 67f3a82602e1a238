package xmppd

import (
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"testing"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// statusPresence sends an available presence with a unique status and
// returns the status; the sender's echo is the barrier that the server
// has routed it (goAvailable queues all recipients before the echo).
func statusPresence(c *client, status string) {
	c.tb.Helper()
	c.send(`<presence><status>` + status + `</status></presence>`)
	c.waitFor("own presence "+status, isPresenceWithStatus(c.jid, status))
}

func isPresenceWithStatus(from, status string) pred {
	return is("presence", "from", from, "type", "").and(func(el *wire.Element) bool {
		s := el.Child(nsClient, "status")
		return s != nil && s.Text() == status
	})
}

// reaches asserts that from's next presence arrives at each of to.
func reaches(t *testing.T, from *client, status string, to ...*client) {
	t.Helper()
	statusPresence(from, status)
	for _, c := range to {
		c.waitFor(from.name+"'s presence "+status, isPresenceWithStatus(from.jid, status))
	}
}

// missesPresence asserts that from's next presence does not arrive at to.
func missesPresence(t *testing.T, from *client, status string, to ...*client) {
	t.Helper()
	statusPresence(from, status)
	for _, c := range to {
		c.quiet(from.name+"'s presence "+status, isPresenceWithStatus(from.jid, status))
	}
}

// TestPresenceFollowsDirectorySync: the colleague lists presence routing
// keeps (rostercache.go) are dropped by a sync, so the first presence after
// it already goes to the new colleagues and no longer to the former ones,
// in both directions, and probes follow too.
func TestPresenceFollowsDirectorySync(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	carol := ts.online(t, "carol", "c", 0)
	for _, c := range []*client{alice, bob, carol} {
		c.drain()
	}
	// Every list is cached now.
	reaches(t, alice, "s1", bob)
	carol.quiet("alice's presence", is("presence", "from", alice.jid))
	reaches(t, carol, "s2")
	bob.quiet("carol's presence", is("presence", "from", carol.jid))

	// bob moves from Engineering to Sales.
	ts.dir.mu.Lock()
	u := ts.dir.users["bob"]
	u.groups = []string{"Sales"}
	ts.dir.users["bob"] = u
	ts.dir.mu.Unlock()
	ts.DirectoryChanged(DirectoryChange{RosterChanged: []string{"alice", "bob", "carol"},
		Contacts: []string{"bob"}, Regrouped: []string{"bob"}})
	for _, c := range []*client{alice, bob, carol} {
		c.drain()
	}

	missesPresence(t, alice, "s3", bob) // a former colleague stops receiving
	missesPresence(t, bob, "s4", alice) // ... and sending
	reaches(t, bob, "s5", carol)        // a new colleague receives at once
	reaches(t, carol, "s6", bob)        // ... and sends
	alice.send(`<presence to='bob@example.com' type='probe'/>`)
	alice.quiet("bob's presence after a probe", is("presence", "from", bob.jid))
	carol.send(`<presence to='bob@example.com' type='probe'/>`)
	carol.waitFor("bob's presence after a probe", is("presence", "from", bob.jid, "type", ""))
}

// TestPresenceFollowsBlocking: a block stops presence in both directions
// with the very next presence, an unblock restores it (XEP-0191 §3.3).
func TestPresenceFollowsBlocking(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	bob.drain()
	reaches(t, alice, "s1", bob)

	block(t, alice, "bob@example.com")
	bob.waitFor("alice's unavailable on the block", is("presence", "from", alice.jid, "type", "unavailable"))
	missesPresence(t, alice, "s2", bob)
	missesPresence(t, bob, "s3", alice)

	unblock(t, alice, "bob@example.com")
	alice.drain()
	bob.drain()
	reaches(t, alice, "s4", bob)
	reaches(t, bob, "s5", alice)
}

// TestPresenceFollowsSubscriptions: outside the directory groups, an
// approved subscription delivers the contact's next presence at once, and
// a cancelled one stops it at once (RFC 6121 §3.1.5, §3.2).
func TestPresenceFollowsSubscriptions(t *testing.T) {
	ts := newTestServer(t)
	carol := ts.online(t, "carol", "c", 0)
	dave := ts.online(t, "dave", "d", 0)
	carol.drain()
	dave.drain()
	missesPresence(t, carol, "s1", dave)

	dave.send(`<presence to='carol@example.com' type='subscribe'/>`)
	carol.waitFor("dave's request", is("presence", "from", "dave@example.com", "type", "subscribe"))
	carol.send(`<presence to='dave@example.com' type='subscribed'/>`)
	dave.waitFor("carol's approval", is("presence", "from", "carol@example.com", "type", "subscribed"))
	carol.drain()
	dave.drain()
	reaches(t, carol, "s2", dave)
	missesPresence(t, dave, "s3", carol) // subscription to, not from, on dave's side
	dave.send(`<presence to='carol@example.com' type='probe'/>`)
	dave.waitFor("carol's presence after a probe", is("presence", "from", carol.jid, "type", ""))

	carol.send(`<presence to='dave@example.com' type='unsubscribed'/>`)
	dave.waitFor("carol's cancellation", is("presence", "from", "carol@example.com", "type", "unsubscribed"))
	carol.drain()
	dave.drain()
	missesPresence(t, carol, "s4", dave)
	dave.send(`<presence to='carol@example.com' type='probe'/>`)
	dave.quiet("carol's presence after a probe", is("presence", "from", carol.jid, "type", ""))
}

func TestBuildColleagueSet(t *testing.T) {
	seed := maphash.MakeSeed()
	ps := func(names ...string) []Person {
		out := make([]Person, len(names))
		for i, n := range names {
			out[i] = Person{Username: n}
		}
		return out
	}
	tests := []struct {
		name       string
		user       string
		colleagues []Person
		want       []string // nil: no set
	}{
		{"none", "bob", nil, nil},
		{"self first", "a", ps("b", "c"), []string{"a", "b", "c"}},
		{"self middle", "b", ps("a", "c"), []string{"a", "b", "c"}},
		{"self last", "c", ps("a", "b"), []string{"a", "b", "c"}},
		{"unsorted directory", "b", ps("c", "a"), []string{"a", "b", "c"}},
		{"self and duplicates listed", "b", ps("a", "b", "c", "c"), []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := buildColleagueSet(tt.user, tt.colleagues, seed)
			if tt.want == nil {
				if cs != nil {
					t.Fatalf("got %v, want no set", cs.names)
				}
				return
			}
			if cs == nil || !slices.Equal(cs.names, tt.want) {
				t.Fatalf("got %v, want %v", cs, tt.want)
			}
			for _, n := range tt.want {
				if !cs.has(n) {
					t.Errorf("has(%q) = false", n)
				}
			}
			if cs.has("zz") || cs.has("") {
				t.Error("has reports a stranger")
			}
		})
	}
}

// TestColleagueCacheShares: people in the same groups share one list, so
// a 5,000-person group costs one list, not 5,000.
func TestColleagueCacheShares(t *testing.T) {
	s, _ := groupServer(t, 0)
	first := s.colleaguesOf(benchUser(0))
	for i := 1; i < benchGroupSize; i += 997 {
		if cs := s.colleaguesOf(benchUser(i)); cs != first {
			t.Fatalf("%s has its own list", benchUser(i))
		}
	}
	if got := s.feat.colleagues.names; got != benchGroupSize {
		t.Fatalf("%d names held, want %d", got, benchGroupSize)
	}
	if !s.isColleague(benchUser(0), benchUser(4999)+"@"+testDomain) || s.isColleague(benchUser(0), benchUser(0)+"@"+testDomain) ||
		s.isColleague(benchUser(0), benchUser(1)+"@other.example") {
		t.Fatal("isColleague")
	}
}

// TestColleagueCacheFillAcrossSync: a list read from the directory before
// a sync is not kept after it, and the bound on names held is kept.
func TestColleagueCacheFillAcrossSync(t *testing.T) {
	s := &Server{Directory: newFakeDir()}
	s.colleaguesOf("alice") // initializes the maps
	cc := &s.feat.colleagues
	cc.mu.Lock()
	gen := cc.gen
	cc.mu.Unlock()
	stale := buildColleagueSet("carol", []Person{{Username: "dave"}}, cc.seed)
	s.forgetColleagues()
	if got := cc.keep("carol", stale, gen); got != stale {
		t.Fatal("keep did not return the caller's set")
	}
	if _, ok := cc.users["carol"]; ok {
		t.Fatal("a list read before the sync was kept")
	}
	if cs := s.colleaguesOf("carol"); cs != nil {
		t.Fatalf("carol's colleagues: %v, want none", cs.names)
	}

	cc.names = maxCachedColleagueNames - 1
	cs := s.colleaguesOf("alice")
	if cs == nil || !cs.has("bob") {
		t.Fatal("alice's colleagues past the bound")
	}
	if _, ok := cc.users["alice"]; ok {
		t.Fatal("a list past the bound was kept")
	}
}

// TestColleagueCacheConcurrent runs reads, fills and syncs together for
// the race detector.
func TestColleagueCacheConcurrent(t *testing.T) {
	s := &Server{Directory: newFakeDir(), Domain: testDomain}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				if i == 0 && j%10 == 0 {
					s.forgetColleagues()
				}
				if !s.isColleague("alice", "bob@"+testDomain) || s.isColleague("alice", "carol@"+testDomain) {
					t.Error("wrong colleagues")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestPresenceView: the view gives each local contact once, with the
// directions of the effective roster (roster.go) — compared with it.
func TestPresenceView(t *testing.T) {
	ts := newTestServer(t)
	items := []store.RosterItem{
		{JID: "bob@example.com", Subscription: "none", Name: "personal item of a colleague"},
		{JID: "carol@example.com", Subscription: "to"},
		{JID: "dave@example.com", Subscription: "from"},
		{JID: "erin@example.com", Subscription: "both"},
		{JID: "frank@example.com", Subscription: "none", PendingIn: true, Hidden: true},
		{JID: "gina@remote.example", Subscription: "both"},
	}
	for _, it := range items {
		if _, err := ts.Store.PutRosterItem("alice", it); err != nil {
			t.Fatal(err)
		}
	}
	v, err := ts.presenceView("alice")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	v.contacts(testDomain, func(u string, from, to bool) {
		if _, dup := got[u]; dup {
			t.Errorf("%s twice", u)
		}
		got[u] = fmt.Sprint(from, to)
	})
	entries, _, err := ts.roster("alice")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range entries {
		if u, ok := ts.localUser(e.JID); ok && (e.subFrom() || e.subTo()) {
			want[u] = fmt.Sprint(e.subFrom(), e.subTo())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 4 {
		t.Fatalf("view %v, roster %v", got, want)
	}
	// presenceSub is what rosterEntry answered before it, without the
	// roster.
	for _, e := range entries {
		from, to := ts.presenceSub("alice", e.JID)
		if fmt.Sprint(from, to) != fmt.Sprint(e.subFrom(), e.subTo()) {
			t.Errorf("presenceSub(%s) = %v %v, roster says %v %v", e.JID, from, to, e.subFrom(), e.subTo())
		}
	}
	if from, to := ts.presenceSub("alice", "alice@example.com"); from || to {
		t.Error("presenceSub of oneself")
	}
}
