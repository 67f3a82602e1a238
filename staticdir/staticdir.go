// Package staticdir is the user directory of `backend = "static"`: the
// users listed in xmppd.toml. It authenticates them and answers who their
// colleagues are; the LDAP directory will offer the same methods.
//
// A Directory is built once by New and never changes, so it needs no locks.
// Usernames are compared exactly: callers pass them already in PRECIS
// UsernameCaseMapped form (RFC 8265 §3.3), as conf and the SASL layer
// produce them.
package staticdir

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/ownchat/ownchat/sharedroster"
)

// ErrBadCredentials is returned for an unknown user and for a wrong
// password alike, so a client cannot tell them apart.
var ErrBadCredentials = errors.New("staticdir: bad credentials")

// User is one configured user. Exactly one of PasswordHash (an argon2id PHC
// string from HashPassword) and Password (plaintext, for demos) is set.
type User struct {
	Name, DisplayName string
	Groups            []string
	PasswordHash      string
	Password          string
	// GivenName, Surname and Nickname are the vCard's N and NICKNAME, as
	// LDAP's givenName and sn; Nickname defaults to GivenName.
	GivenName, Surname, Nickname string
}

// Person is what colleagues may see of a user.
type Person struct {
	Username, DisplayName string
	// Groups are sorted. They are shared with the Directory: do not modify.
	Groups []string
}

// Names are a user's vCard N and NICKNAME, empty when not configured.
// They are not part of Person: Colleagues copies Persons for every roster,
// and names are only needed for a vCard.
type Names struct {
	Given, Surname string
	Nickname       string // the given name unless configured
}

// Directory is an immutable set of users; safe for concurrent use.
type Directory struct {
	users  []entry          // sorted by username; index = user id
	byName map[string]int32 // username -> id

	// members[g] lists the ids in group g, ascending, hence sorted by
	// username. Group ids follow group names in sorted order.
	members [][]int32
	// oneGroup[g] is []string{name of g}: the shared-groups slice of a
	// colleague who shares only g, so most results need no allocation.
	oneGroup [][]string

	scramReady bool
	decoyKey   []byte // HMAC key of DecoySaltedPassword

	// Verifications in flight: Argon2id costs tens of MiB and milliseconds
	// each, so a login flood must queue rather than exhaust memory.
	sem   chan struct{}
	dummy *phc      // verified for unknown users, to spend the same time
	idKey idKeyFunc // argon2.IDKey; tests substitute a counting one
}

type entry struct {
	person   Person
	names    Names
	groupIDs []int32 // ascending, matching person.Groups
	viewIDs  []int32 // groups whose members this user sees (sharedroster.PersonView)
	hash     *phc    // nil for a plaintext user
	password string  // plaintext, or empty
	scram    [len(scramMechs)]scramSecret
}

// New builds a Directory, checking every user. All problems are reported,
// each naming its user. Every group's members see each other; rules add
// "members of X see members of Y" (sharedroster.Rule).
func New(users []User, rules ...sharedroster.Rule) (*Directory, error) {
	d := &Directory{
		users:  make([]entry, 0, len(users)),
		byName: make(map[string]int32, len(users)),
		sem:    make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		idKey:  argon2.IDKey,
	}

	sorted := slices.Clone(users)
	slices.SortStableFunc(sorted, func(a, b User) int { return strings.Compare(a.Name, b.Name) })

	var errs []error
	groupSet := map[string]struct{}{}
	cost := map[params]int{} // how many users have each set of hash parameters
	for i, u := range sorted {
		if i > 0 && u.Name == sorted[i-1].Name {
			errs = append(errs, fmt.Errorf("staticdir: user %q: defined twice", u.Name))
			continue
		}
		id := len(d.users)
		d.users = d.users[:id+1] // entries hold a sync.Once: fill them in place
		e := &d.users[id]
		if err := e.init(u); err != nil {
			errs = append(errs, err)
			*e = entry{} // init may have set some fields
			d.users = d.users[:id]
			continue
		}
		if e.hash != nil {
			cost[e.hash.params()]++
		}
		for _, g := range e.person.Groups {
			groupSet[g] = struct{}{}
		}
		d.byName[u.Name] = int32(id)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	d.indexGroups(groupSet, rules)

	d.scramReady = true
	for i := range d.users {
		d.scramReady = d.scramReady && d.users[i].hash == nil
	}
	d.decoyKey = make([]byte, 32)
	if _, err := rand.Read(d.decoyKey); err != nil {
		return nil, fmt.Errorf("staticdir: %w", err)
	}
	dummy, err := dummyHash(cost)
	if err != nil {
		return nil, err
	}
	d.dummy = dummy
	return d, nil
}

// init fills a zero entry from u.
func (e *entry) init(u User) error {
	switch {
	case u.Name == "":
		return errors.New("staticdir: a user has an empty name")
	case u.Password != "" && u.PasswordHash != "":
		return fmt.Errorf("staticdir: user %q: both a password and a password hash", u.Name)
	case u.Password == "" && u.PasswordHash == "":
		return fmt.Errorf("staticdir: user %q: no password or password hash", u.Name)
	}
	if u.PasswordHash != "" {
		h, err := parsePHC(u.PasswordHash)
		if err != nil {
			return fmt.Errorf("staticdir: user %q: password hash: %w", u.Name, err)
		}
		e.hash = h
	}
	groups := slices.Clone(u.Groups) // the caller keeps its slice
	slices.Sort(groups)
	groups = slices.Compact(groups)
	if len(groups) > 0 && groups[0] == "" {
		return fmt.Errorf("staticdir: user %q: empty group name", u.Name)
	}
	e.password = u.Password
	e.person = Person{Username: u.Name, DisplayName: u.DisplayName, Groups: slices.Clip(groups)}
	e.names = Names{Given: u.GivenName, Surname: u.Surname, Nickname: u.Nickname}
	if e.names.Nickname == "" {
		e.names.Nickname = u.GivenName // what colleagues call each other, as with LDAP
	}
	return nil
}

// indexGroups numbers the groups in name order and lists their members.
func (d *Directory) indexGroups(set map[string]struct{}, rules []sharedroster.Rule) {
	names := make([]string, 0, len(set))
	for g := range set {
		names = append(names, g)
	}
	slices.Sort(names)
	ids := make(map[string]int32, len(names))
	d.members = make([][]int32, len(names))
	d.oneGroup = make([][]string, len(names))
	for i, g := range names {
		ids[g] = int32(i)
		d.oneGroup[i] = []string{g}
	}
	for id := range d.users {
		e := &d.users[id]
		e.groupIDs = make([]int32, len(e.person.Groups))
		for j, g := range e.person.Groups {
			gid := ids[g]
			e.groupIDs[j] = gid
			d.members[gid] = append(d.members[gid], int32(id)) // ids ascend: lists stay sorted
		}
	}
	for g := range d.members {
		d.members[g] = slices.Clip(d.members[g])
	}
	views := sharedroster.Views(names, func(int32) bool { return true }, rules)
	for id := range d.users {
		e := &d.users[id]
		e.viewIDs = sharedroster.PersonView(e.groupIDs, views)
	}
}

// dummyHash makes the hash unknown users are verified against, with the
// parameters most users have, so that a failed login costs the same
// whether or not the name exists. Its key matches no password.
func dummyHash(cost map[params]int) (*phc, error) {
	p := params{memory: hashMemory, time: hashTime, threads: hashThreads, keyLen: keyLen}
	best := 0
	for q, n := range cost {
		if n > best || n == best && cheaper(q, p) { // deterministic on ties
			p, best = q, n
		}
	}
	h := &phc{memory: p.memory, time: p.time, threads: p.threads,
		salt: make([]byte, saltLen), key: make([]byte, p.keyLen)}
	if _, err := rand.Read(h.salt); err != nil {
		return nil, fmt.Errorf("staticdir: %w", err)
	}
	if _, err := rand.Read(h.key); err != nil {
		return nil, fmt.Errorf("staticdir: %w", err)
	}
	return h, nil
}

func cheaper(a, b params) bool {
	if a.memory != b.memory {
		return a.memory < b.memory
	}
	if a.time != b.time {
		return a.time < b.time
	}
	if a.threads != b.threads {
		return a.threads < b.threads
	}
	return a.keyLen < b.keyLen
}

func (d *Directory) lookup(username string) *entry {
	id, ok := d.byName[username]
	if !ok {
		return nil
	}
	return &d.users[id]
}

// Authenticate checks username's password. A wrong password and an unknown
// user both return ErrBadCredentials after the same work: an unknown name
// is verified against a dummy hash, and a plaintext user also pays one
// Argon2id verification (unless no account has a hash at all, then every
// path is one digest comparison), so response times do not reveal who exists
// (RFC 6120 §6.4.5 gives both the same not-authorized failure).
//
// At most 2×GOMAXPROCS verifications run at once; the others wait, and
// give up with ctx's error when ctx ends first.
func (d *Directory) Authenticate(ctx context.Context, username, password string) error {
	// A ready semaphore would win half the time against a done context in
	// one select; a caller that already gave up gets no verification.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("staticdir: authenticate: %w", err)
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("staticdir: authenticate: %w", ctx.Err())
	}
	defer func() { <-d.sem }()

	e := d.lookup(username)
	// When no account has a hash (a plaintext demo or benchmark
	// directory), every path is one digest comparison: equally cheap, so
	// still equal in time, and logins are not slowed by a dummy Argon2id.
	plainOnly := d.scramReady
	switch {
	case e == nil:
		if plainOnly {
			want, got := sha256.Sum256(d.decoyKey), sha256.Sum256([]byte(password))
			subtle.ConstantTimeCompare(want[:], got[:])
		} else {
			d.dummy.verify(d.idKey, password)
		}
		return ErrBadCredentials
	case e.hash == nil:
		if !plainOnly {
			d.dummy.verify(d.idKey, password)
		}
		// Compare digests so that not even the length leaks.
		want, got := sha256.Sum256([]byte(e.password)), sha256.Sum256([]byte(password))
		if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			return ErrBadCredentials
		}
		return nil
	default:
		if !e.hash.verify(d.idKey, password) {
			return ErrBadCredentials
		}
		return nil
	}
}

// Lookup returns the user called username.
func (d *Directory) Lookup(username string) (Person, bool) {
	e := d.lookup(username)
	if e == nil {
		return Person{}, false
	}
	return e.person, true
}

// Names returns the configured names of username.
func (d *Directory) Names(username string) (Names, bool) {
	e := d.lookup(username)
	if e == nil {
		return Names{}, false
	}
	return e.names, true
}

// People returns every user, sorted by username.
func (d *Directory) People() []Person {
	out := make([]Person, len(d.users))
	for i := range d.users {
		out[i] = d.users[i].person
	}
	return out
}

// Colleagues returns everyone who shares at least one group with username,
// or is in a group a rule lets username see (or be seen by), sorted by
// username, each with the names of those groups.
// It returns nil for an unknown user or one without groups.
//
// The group index is built by New, so a call costs O(size of username's
// groups × their number) and two allocations, whatever the directory size.
func (d *Directory) Colleagues(username string) []Person {
	id, ok := d.byName[username]
	if !ok {
		return nil
	}
	return sharedroster.Colleagues(id, d.users[id].viewIDs, d.members, d.oneGroup,
		func(m int32, groups []string) Person {
			p := d.users[m].person
			p.Groups = groups
			return p
		})
}

// scramSecret is the SCRAM material of one user for one mechanism, derived
// on first use: PBKDF2 with 4096 iterations per plaintext user would make
// start-up with 20,000 users take minutes.
type scramSecret struct {
	once         sync.Once
	salt, salted []byte
}
