package ldapsync

import (
	"slices"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/sharedroster"
)

// Person is one user as the server and colleagues see them.
type Person struct {
	Username    string // normalized JID localpart
	DisplayName string
	// Groups are the user's shared-roster groups (RosterGroups), sorted;
	// nested groups are expanded. Shared with the Directory: do not modify.
	Groups                         []string
	Mail, Title, Phone, Department string
	// GivenName and Surname are the vCard's N; Nickname its NICKNAME,
	// the given name unless NicknameAttr says otherwise.
	GivenName, Surname, Nickname string
	// Photo is the image itself; only Profile fills it, so that the
	// photos of 50,000 people stay in the store, not in memory.
	Photo     []byte
	PhotoType string // MIME type, e.g. "image/jpeg"
	PhotoHash string // SHA-1 of Photo in hex, as XEP-0153 wants it; "" without a photo
}

// userRec is one user entry as last read from the directory. Records are
// never modified once built; snapshots share them.
type userRec struct {
	id       string // stable identity (entryUUID, objectGUID)
	dn       string
	ndn      string // normDN(dn)
	raw      string // the username attribute as the directory has it
	username string // normalized; "" when raw is not a valid localpart
	display  string
	mail     string
	title    string
	phone    string
	dept     string
	photo    string // SHA-1 hex of the photo, "" without one
	photoTyp string
	given    string
	surname  string
	nick     string   // NicknameAttr only; Person.Nickname falls back to given
	aliases  []string // normalized alternative login names
	disabled bool     // matched DisabledFilter
	expires  int64    // Unix seconds the account expires; 0: never
	change   string   // ChangeAttr value
	pgroup   string   // SID of the primary group (PrimaryGroupAttr), "" without
}

// groupRec is one group entry: its direct members, unresolved.
type groupRec struct {
	id      string
	dn      string
	ndn     string
	name    string
	members []string // normalized member DNs: users or groups
	uids    []string // normalized usernames from memberUid
	change  string
	sid     string // objectSid as S-1-5-..., with PrimaryGroupAttr only
}

// snapshot is the directory as of one sync, with the indexes the server
// reads. Immutable once built: the Directory swaps whole snapshots.
type snapshot struct {
	users     []userRec // every entry the user filter matched, by id
	groups    []groupRec
	userByID  map[string]int32
	groupByID map[string]int32

	people []person         // the active users, sorted by username
	byName map[string]int32 // username -> index in people
	alias  map[string]int32 // alias -> index in people

	// Shared-roster groups in name order. members[g] lists the people in
	// group g (nested groups expanded), ascending, hence by username;
	// oneGroup[g] is []string{groupNames[g]} for colleagues sharing only g.
	groupNames []string
	members    [][]int32
	oneGroup   [][]string

	inactive map[string]string // id -> why an entry cannot log in (for logs, Check)
	disabled int

	meta snapMeta
}

// snapMeta is what the next sync needs to know about the last one.
type snapMeta struct {
	url       string    // server the snapshot was read from (uSNChanged is per server)
	userMark  string    // highest ChangeAttr value seen among users
	groupMark string    // same for groups
	fullAt    time.Time // last full sync
	syncedAt  time.Time // last sync of any kind
}

type person struct {
	Person
	rec      int32   // index in snapshot.users
	groupIDs []int32 // ascending, matching Person.Groups
	viewIDs  []int32 // groups whose members this person sees (sharedroster.PersonView)
}

// Reasons an entry that matched the user filter cannot log in.
const (
	whyDisabled  = "disabled"
	whyExpired   = "account expired"
	whyBadName   = "username is not a valid XMPP localpart"
	whyDuplicate = "username held by more than one entry"
)

// normUsername maps a directory username to the JID localpart it logs in
// as: PRECIS UsernameCaseMapped (RFC 7622 §3.3.1), so "JSmith" is "jsmith".
func normUsername(u string) (string, bool) {
	j, err := jid.New(u, "example.com", "")
	if err != nil || j.Localpart() == "" {
		return "", false
	}
	return j.Localpart(), true
}

// build indexes users and groups as of now. users and groups are sorted by
// id in place.
func build(s *settings, users []userRec, groups []groupRec, meta snapMeta, now time.Time) *snapshot {
	slices.SortFunc(users, func(a, b userRec) int { return strings.Compare(a.id, b.id) })
	slices.SortFunc(groups, func(a, b groupRec) int { return strings.Compare(a.id, b.id) })
	sn := &snapshot{
		users:     users,
		groups:    groups,
		userByID:  make(map[string]int32, len(users)),
		groupByID: make(map[string]int32, len(groups)),
		inactive:  map[string]string{},
		meta:      meta,
	}
	for i := range users {
		sn.userByID[users[i].id] = int32(i)
	}
	for i := range groups {
		sn.groupByID[groups[i].id] = int32(i)
	}

	// Who may log in. A username two entries normalize to is refused for
	// both: either could be the one logging in.
	holders := make(map[string]int, len(users))
	for i := range users {
		u := &users[i]
		switch {
		case u.username == "":
			sn.inactive[u.id] = whyBadName
		case u.disabled:
			sn.inactive[u.id] = whyDisabled
			sn.disabled++
		case u.expires > 0 && u.expires <= now.Unix():
			sn.inactive[u.id] = whyExpired
			sn.disabled++
		default:
			holders[u.username]++
		}
	}
	active := make([]int32, 0, len(holders))
	for i := range users {
		u := &users[i]
		if _, out := sn.inactive[u.id]; out {
			continue
		}
		if holders[u.username] > 1 {
			sn.inactive[u.id] = whyDuplicate
			continue
		}
		active = append(active, int32(i))
	}
	slices.SortFunc(active, func(a, b int32) int { return strings.Compare(users[a].username, users[b].username) })

	sn.people = make([]person, len(active))
	sn.byName = make(map[string]int32, len(active))
	byNDN := make(map[string]int32, len(active))
	for pi, ui := range active {
		u := &users[ui]
		sn.people[pi] = person{rec: ui, Person: Person{
			Username: u.username, DisplayName: u.display, Mail: u.mail, Title: u.title,
			Phone: u.phone, Department: u.dept, PhotoType: u.photoTyp, PhotoHash: u.photo,
			GivenName: u.given, Surname: u.surname, Nickname: or(u.nick, u.given),
		}}
		sn.byName[u.username] = int32(pi)
		byNDN[u.ndn] = int32(pi)
	}
	// Aliases never shadow a username, and one held twice is dropped.
	sn.alias = map[string]int32{}
	taken := map[string]bool{}
	for pi := range sn.people {
		for _, a := range users[sn.people[pi].rec].aliases {
			if _, isName := sn.byName[a]; isName || taken[a] {
				continue
			}
			if other, dup := sn.alias[a]; dup && other != int32(pi) {
				delete(sn.alias, a)
				taken[a] = true
				continue
			}
			sn.alias[a] = int32(pi)
		}
	}

	sn.indexGroups(s, byNDN)
	return sn
}

// indexGroups resolves group members (user DNs, nested group DNs,
// memberUid names) and lists the members of each shared-roster group.
// Nesting is followed client-side with a visited set per group, so cycles
// end; AD's LDAP_MATCHING_RULE_IN_CHAIN would give the same sets at the
// price of one search per group.
func (sn *snapshot) indexGroups(s *settings, byNDN map[string]int32) {
	groups := sn.groups
	gByNDN := make(map[string]int32, len(groups))
	gBySID := map[string]int32{}
	for i := range groups {
		gByNDN[groups[i].ndn] = int32(i)
		if groups[i].sid != "" {
			gBySID[groups[i].sid] = int32(i)
		}
	}
	direct := make([][]int32, len(groups)) // people
	nested := make([][]int32, len(groups)) // groups
	if len(gBySID) > 0 {
		// AD's primary group membership is in no member attribute. Only
		// for groups named in RosterGroups or RosterRules: the primary
		// group is normally "Domain Users", everyone, which "*" must not
		// put into every roster.
		for pi := range sn.people {
			g, ok := gBySID[sn.users[sn.people[pi].rec].pgroup]
			if !ok {
				continue
			}
			if key := strings.ToLower(groups[g].name); s.roster[key] || s.ruleGroups[key] {
				direct[g] = append(direct[g], int32(pi))
			}
		}
	}
	for i := range groups {
		g := &groups[i]
		for _, m := range g.members {
			if p, ok := byNDN[m]; ok {
				direct[i] = append(direct[i], p)
			} else if sub, ok := gByNDN[m]; ok && sub != int32(i) {
				nested[i] = append(nested[i], sub)
			}
		}
		for _, u := range g.uids {
			if p, ok := sn.byName[u]; ok {
				direct[i] = append(direct[i], p)
			}
		}
	}

	// Shared-roster groups by case-folded name: two groups with one name
	// (in different OUs) are one roster group.
	type rg struct {
		name    string
		members []int32
	}
	byKey := map[string]*rg{}
	var seenG []uint32 // epoch marks, reused across roots
	var seenP []uint32
	seenG = make([]uint32, len(groups))
	seenP = make([]uint32, len(sn.people))
	epoch := uint32(0)
	queue := make([]int32, 0, 16)
	for i := range groups {
		g := &groups[i]
		key := strings.ToLower(g.name)
		if g.name == "" || !s.allGroups && !s.roster[key] && !s.ruleGroups[key] {
			continue
		}
		r := byKey[key]
		if r == nil {
			r = &rg{name: g.name}
			byKey[key] = r
		} else if g.name < r.name {
			r.name = g.name // deterministic display name
		}
		epoch++
		// People already in r from a same-named group keep their mark.
		for _, p := range r.members {
			seenP[p] = epoch
		}
		queue = append(queue[:0], int32(i))
		seenG[i] = epoch
		for len(queue) > 0 {
			gi := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			for _, p := range direct[gi] {
				if seenP[p] != epoch {
					seenP[p] = epoch
					r.members = append(r.members, p)
				}
			}
			for _, sub := range nested[gi] {
				if seenG[sub] != epoch {
					seenG[sub] = epoch
					queue = append(queue, sub)
				}
			}
		}
	}

	keys := make([]*rg, 0, len(byKey))
	for _, r := range byKey {
		if len(r.members) > 0 {
			keys = append(keys, r)
		}
	}
	slices.SortFunc(keys, func(a, b *rg) int { return strings.Compare(a.name, b.name) })
	sn.groupNames = make([]string, len(keys))
	sn.members = make([][]int32, len(keys))
	sn.oneGroup = make([][]string, len(keys))
	for gi, r := range keys {
		slices.Sort(r.members)
		sn.groupNames[gi] = r.name
		sn.members[gi] = slices.Clip(r.members)
		sn.oneGroup[gi] = []string{r.name}
		for _, p := range r.members {
			sn.people[p].groupIDs = append(sn.people[p].groupIDs, int32(gi)) // gi ascends
		}
	}
	views := sharedroster.Views(sn.groupNames, func(g int32) bool {
		return s.allGroups || s.roster[strings.ToLower(sn.groupNames[g])]
	}, s.RosterRules)
	for pi := range sn.people {
		p := &sn.people[pi]
		p.viewIDs = sharedroster.PersonView(p.groupIDs, views)
	}
	// One backing array for all Person.Groups slices.
	total := 0
	for pi := range sn.people {
		total += len(sn.people[pi].groupIDs)
	}
	names := make([]string, 0, total)
	for pi := range sn.people {
		p := &sn.people[pi]
		if len(p.groupIDs) == 1 {
			p.Groups = sn.oneGroup[p.groupIDs[0]]
			continue
		}
		start := len(names)
		for _, g := range p.groupIDs {
			names = append(names, sn.groupNames[g])
		}
		p.Groups = names[start:len(names):len(names)]
	}
}

// lookup returns the person called username (not an alias).
func (sn *snapshot) lookup(username string) *person {
	if sn == nil {
		return nil
	}
	i, ok := sn.byName[username]
	if !ok {
		return nil
	}
	return &sn.people[i]
}

// colleagues returns everyone who shares at least one shared-roster group
// with username, sorted by username, each with only the groups they share.
// The group index is built with the snapshot, so a call costs the size of
// username's groups and two allocations, whatever the directory size.
func (sn *snapshot) colleagues(username string) []Person {
	if sn == nil {
		return nil
	}
	id, ok := sn.byName[username]
	if !ok {
		return nil
	}
	return sharedroster.Colleagues(id, sn.people[id].viewIDs, sn.members, sn.oneGroup,
		func(m int32, groups []string) Person {
			p := sn.people[m].Person
			p.Groups = groups
			return p
		})
}
