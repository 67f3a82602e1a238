package xmppd

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	"github.com/ownchat/ownchat/store"
)

// Presence routing needs, for every broadcast, probe and directed presence,
// who shares a directory group with the user. Asking the directory builds
// a []Person of the whole group (5,000 people: about 650 KB and 2.5 ms per
// call, measured in presence_bench_test.go), and merging it into the
// effective roster doubles that, so presence routing keeps the colleague
// lists here instead.
//
// Only the directory's answer is kept. The personal roster (one small store
// read) and the block lists (blockCache) are read fresh each time, so a
// subscription or block change can never meet a stale entry: the one thing
// that invalidates this cache is a directory sync (DirectoryChanged).
//
// Memory: a list holds the usernames of the group including the user, so
// everyone in the same groups shares one list (5,000 people in one group:
// one list of 80 KB, not 5,000 of them). The lists held are bounded by
// maxCachedColleagueNames; past it, users are answered from the directory
// uncached, as before the cache.

// maxCachedColleagueNames bounds the usernames held in all lists: 1<<20
// string headers are 16 MiB (the strings belong to the directory).
const maxCachedColleagueNames = 1 << 20

// colleagueSet is one shared list: a user and their colleagues, sorted.
type colleagueSet struct {
	names []string
	hash  uint64
}

// has reports whether u is in the set.
func (cs *colleagueSet) has(u string) bool {
	_, ok := slices.BinarySearch(cs.names, u)
	return ok
}

// colleagueCache maps a username to their colleague set. A nil set means
// no colleagues.
type colleagueCache struct {
	mu    sync.Mutex
	gen   uint64 // bumped by forget: a fill begun before it is not stored
	users map[string]*colleagueSet
	sets  map[uint64][]*colleagueSet // interned by hash of names
	names int                        // total len(names) over sets
	seed  maphash.Seed
}

// colleaguesOf returns user's colleague set (which contains user; nil when
// user has no colleagues).
func (s *Server) colleaguesOf(user string) *colleagueSet {
	cc := &s.feat.colleagues
	cc.mu.Lock()
	if cc.users == nil {
		cc.seed = maphash.MakeSeed()
		cc.users = make(map[string]*colleagueSet)
		cc.sets = make(map[uint64][]*colleagueSet)
	}
	cs, ok := cc.users[user]
	gen, seed := cc.gen, cc.seed
	cc.mu.Unlock()
	if ok {
		return cs
	}
	// The directory is asked without the lock: other users' presence
	// must not wait for it.
	return cc.keep(user, buildColleagueSet(user, s.Directory.Colleagues(user), seed), gen)
}

// buildColleagueSet sorts user and colleagues into one list. The directory
// returns them sorted already, so this is usually one copy.
func buildColleagueSet(user string, colleagues []Person, seed maphash.Seed) *colleagueSet {
	if len(colleagues) == 0 {
		return nil
	}
	names := make([]string, 0, len(colleagues)+1)
	self := false
	for _, p := range colleagues {
		if !self && p.Username > user {
			names = append(names, user)
			self = true
		}
		if p.Username != user {
			names = append(names, p.Username)
		}
	}
	if !self {
		names = append(names, user)
	}
	if !slices.IsSorted(names) {
		slices.Sort(names)
	}
	names = slices.Compact(names)
	var h maphash.Hash
	h.SetSeed(seed)
	for _, n := range names {
		h.WriteString(n)
		h.WriteByte(0)
	}
	return &colleagueSet{names: names, hash: h.Sum64()}
}

// keep remembers cs for user unless the cache was cleared since gen, and
// returns the interned equal set if there is one.
func (cc *colleagueCache) keep(user string, cs *colleagueSet, gen uint64) *colleagueSet {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return cs // a sync ran meanwhile: cs may predate it
	}
	if cs == nil {
		cc.users[user] = nil
		return nil
	}
	for _, other := range cc.sets[cs.hash] {
		if slices.Equal(other.names, cs.names) {
			cc.users[user] = other
			return other
		}
	}
	if cc.names+len(cs.names) > maxCachedColleagueNames {
		return cs
	}
	cc.sets[cs.hash] = append(cc.sets[cs.hash], cs)
	cc.names += len(cs.names)
	cc.users[user] = cs
	return cs
}

// forgetColleagues drops every colleague list. DirectoryChanged calls it
// before anything else, so the first presence routed after a sync already
// sees the new groups.
func (s *Server) forgetColleagues() {
	cc := &s.feat.colleagues
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	clear(cc.users)
	clear(cc.sets)
	cc.names = 0
}

// isColleague reports whether the bare JID contactBare is a local user who
// shares a directory group with user.
func (s *Server) isColleague(user, contactBare string) bool {
	cu, ok := s.localUser(contactBare)
	if !ok || cu == user {
		return false
	}
	cs := s.colleaguesOf(user)
	return cs != nil && cs.has(cu)
}

// presenceView is what presence routing needs of a user's effective roster
// (roster.go): the personal items and the colleagues, who all have
// subscription both. Building it costs one store read.
type presenceView struct {
	user       string
	colleagues *colleagueSet
	items      []store.RosterItem
}

func (s *Server) presenceView(user string) (presenceView, error) {
	items, _, err := s.Store.Roster(user)
	if err != nil {
		return presenceView{}, err
	}
	return presenceView{user: user, colleagues: s.colleaguesOf(user), items: items}, nil
}

// contacts calls fn for every local contact of the view, each once, with
// the subscription directions of the effective roster: colleagues both,
// others their personal item's. Contacts with neither are skipped.
func (v *presenceView) contacts(domain string, fn func(u string, from, to bool)) {
	for i := range v.items {
		it := &v.items[i]
		u, ok := localPart(it.JID, domain)
		if !ok || u == v.user || v.colleagues != nil && v.colleagues.has(u) {
			continue
		}
		from := it.Subscription == "from" || it.Subscription == "both"
		to := it.Subscription == "to" || it.Subscription == "both"
		if from || to {
			fn(u, from, to)
		}
	}
	if v.colleagues != nil {
		for _, u := range v.colleagues.names {
			if u != v.user {
				fn(u, true, true)
			}
		}
	}
}

// presenceSub reports the subscription directions of user's effective
// roster item for contactBare, without building the roster.
func (s *Server) presenceSub(user, contactBare string) (from, to bool) {
	if s.isColleague(user, contactBare) {
		return true, true
	}
	it, ok, err := s.Store.RosterItem(user, contactBare)
	if err != nil {
		s.Logger.Error("presence: roster item", "user", user, "contact", contactBare, "err", err)
		return false, false
	}
	if !ok {
		return false, false
	}
	return it.Subscription == "from" || it.Subscription == "both", it.Subscription == "to" || it.Subscription == "both"
}

// localPart is Server.localUser for a given domain.
func localPart(bare, domain string) (string, bool) {
	at := strings.IndexByte(bare, '@')
	if at <= 0 || bare[at+1:] != domain {
		return "", false
	}
	return bare[:at], true
}
