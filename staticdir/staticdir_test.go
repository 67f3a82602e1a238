package staticdir

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"mellium.im/sasl"
)

// countKDF replaces d's Argon2id with a counting wrapper.
func countKDF(d *Directory) *atomic.Int64 {
	var n atomic.Int64
	d.idKey = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		n.Add(1)
		return argon2.IDKey(password, salt, time, memory, threads, keyLen)
	}
	return &n
}

func TestNewErrors(t *testing.T) {
	good := cheapHash(t, "pw")
	for _, tc := range []struct {
		name  string
		users []User
		want  []string // substrings of the error
	}{
		{"empty name", []User{{Password: "x"}}, []string{"a user has an empty name"}},
		{"duplicate", []User{{Name: "a", Password: "x"}, {Name: "b", Password: "x"}, {Name: "a", PasswordHash: good}},
			[]string{`user "a": defined twice`}},
		{"both", []User{{Name: "a", Password: "x", PasswordHash: good}}, []string{`user "a": both a password and a password hash`}},
		{"neither", []User{{Name: "a"}}, []string{`user "a": no password or password hash`}},
		{"bad hash", []User{{Name: "alice", PasswordHash: "$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"}},
			[]string{`staticdir: user "alice": password hash: staticdir: malformed argon2id PHC string: t=0`}},
		{"empty group", []User{{Name: "a", Password: "x", Groups: []string{"g", ""}}}, []string{`user "a": empty group name`}},
		{"all reported", []User{{Name: "a"}, {Name: "b", PasswordHash: "nope"}, {Name: "c", Password: "ok"}},
			[]string{`user "a": no password`, `user "b": password hash`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.users)
			if err == nil {
				t.Fatalf("New succeeded: %v", d.People())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if !errors.Is(func() error { _, err := New([]User{{Name: "x", PasswordHash: "$"}}); return err }(), errPHC) {
		t.Error("a bad hash error does not wrap the PHC error")
	}
}

func TestAuthenticate(t *testing.T) {
	d, err := New([]User{
		{Name: "alice", PasswordHash: cheapHash(t, "wonderland")},
		{Name: "bob", Password: "hunter2"},
		{Name: "émile", PasswordHash: cheapHash(t, "mot de passe é🔑")},
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := countKDF(d)
	ctx := context.Background()
	for _, tc := range []struct {
		user, password string
		want           error
	}{
		{"alice", "wonderland", nil},
		{"alice", "Wonderland", ErrBadCredentials},
		{"alice", "", ErrBadCredentials},
		{"bob", "hunter2", nil},
		{"bob", "hunter", ErrBadCredentials},
		{"bob", "hunter2 ", ErrBadCredentials},
		{"émile", "mot de passe é🔑", nil},
		{"émile", "mot de passe e\u0301🔑", ErrBadCredentials}, // NFD is another password
		{"mallory", "wonderland", ErrBadCredentials},
		{"", "", ErrBadCredentials},
		{"Alice", "wonderland", ErrBadCredentials}, // names are compared exactly
	} {
		before := calls.Load()
		err := d.Authenticate(ctx, tc.user, tc.password)
		if err != tc.want {
			t.Errorf("Authenticate(%q, %q) = %v, want %v", tc.user, tc.password, err, tc.want)
		}
		// Every path, including unknown users and plaintext passwords,
		// runs exactly one Argon2id verification: equal time, no user
		// enumeration by timing.
		if n := calls.Load() - before; n != 1 {
			t.Errorf("Authenticate(%q, %q) ran %d verifications, want 1", tc.user, tc.password, n)
		}
	}
}

// TestDummyHashParameters checks that unknown users are verified with the
// parameters most users have.
func TestDummyHashParameters(t *testing.T) {
	strong := phc{memory: 128, time: 3, threads: 2, salt: []byte("0123456789abcdef"), key: make([]byte, 32)}
	users := []User{{Name: "a", PasswordHash: cheapHash(t, "x")}}
	for i := range 3 {
		users = append(users, User{Name: fmt.Sprint("s", i), PasswordHash: strong.String()})
	}
	d, err := New(users)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.dummy.params(), strong.params(); got != want {
		t.Errorf("dummy params %+v, want %+v", got, want)
	}
	d, err = New([]User{{Name: "a", Password: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.dummy.params(), (params{hashMemory, hashTime, hashThreads, keyLen}); got != want {
		t.Errorf("dummy params without hashes %+v, want HashPassword's %+v", got, want)
	}
}

func TestAuthenticateContext(t *testing.T) {
	d, err := New([]User{{Name: "a", Password: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	// Occupy every slot: the next caller must wait, then give up with
	// its context's error, not ErrBadCredentials.
	for range cap(d.sem) {
		d.sem <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = d.Authenticate(ctx, "a", "x")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate with full semaphore = %v, want DeadlineExceeded", err)
	}
	<-d.sem
	if err := d.Authenticate(context.Background(), "a", "x"); err != nil {
		t.Errorf("Authenticate after a slot freed = %v", err)
	}

	// A context that is already done gets no verification, even with a
	// free slot.
	calls := countKDF(d)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		if err := d.Authenticate(done, "a", "x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Authenticate with a cancelled context = %v", err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d verifications for cancelled contexts", n)
	}
}

// TestAuthenticateBounded checks that no more than cap(sem) verifications
// run at once under a flood.
func TestAuthenticateBounded(t *testing.T) {
	d, err := New([]User{{Name: "a", PasswordHash: cheapHash(t, "x")}})
	if err != nil {
		t.Fatal(err)
	}
	var running, peak atomic.Int64
	d.idKey = func(password, salt []byte, time_, memory uint32, threads uint8, keyLen uint32) []byte {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
		return argon2.IDKey(password, salt, time_, memory, threads, keyLen)
	}
	var wg sync.WaitGroup
	for i := range 8 * cap(d.sem) {
		wg.Go(func() { _ = d.Authenticate(context.Background(), "a", fmt.Sprint(i)) })
	}
	wg.Wait()
	if p := peak.Load(); p > int64(cap(d.sem)) || p < 1 {
		t.Errorf("peak concurrent verifications %d, limit %d", p, cap(d.sem))
	}
}

func TestSaltedPassword(t *testing.T) {
	d, err := New([]User{
		{Name: "bob", Password: "hunter2"},
		{Name: "alice", PasswordHash: cheapHash(t, "x")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range scramMechs {
		if d.users[d.byName["bob"]].scram[scramMech(m.name)].salt != nil {
			t.Fatalf("%s secret derived before first use", m.name)
		}
		salt, salted, iter, ok := d.SaltedPassword("bob", m.name)
		if !ok || len(salt) != 16 || iter != 4096 {
			t.Fatalf("SaltedPassword(bob, %s) = %x, %d, %v", m.name, salt, iter, ok)
		}
		if want := sasl.SCRAMSaltPassword(m.hash, []byte("hunter2"), salt, 4096); string(salted) != string(want) {
			t.Errorf("%s: salted password is not PBKDF2(password, salt, 4096)", m.name)
		}
		salt2, salted2, _, _ := d.SaltedPassword("bob", m.name)
		if string(salt2) != string(salt) || string(salted2) != string(salted) {
			t.Errorf("%s: second call derived new material; want it cached", m.name)
		}
		salt2[0] ^= 0xff // the caller's copy
		if salt3, _, _, _ := d.SaltedPassword("bob", m.name); string(salt3) != string(salt) {
			t.Errorf("%s: modifying a returned salt changed the cache", m.name)
		}
	}
	s1, _, _, _ := d.SaltedPassword("bob", "SCRAM-SHA-1")
	s256, _, _, _ := d.SaltedPassword("bob", "SCRAM-SHA-256")
	if string(s1) == string(s256) {
		t.Error("SHA-1 and SHA-256 share a salt")
	}
	for _, tc := range []struct{ user, mech string }{
		{"alice", "SCRAM-SHA-256"}, // hashed: no SCRAM material
		{"mallory", "SCRAM-SHA-256"},
		{"bob", "SCRAM-SHA-256-PLUS"},
		{"bob", "PLAIN"},
	} {
		if _, _, _, ok := d.SaltedPassword(tc.user, tc.mech); ok {
			t.Errorf("SaltedPassword(%q, %q) ok", tc.user, tc.mech)
		}
	}
}

// TestSCRAMExchange runs a full mellium.im/sasl SCRAM exchange against
// SaltedPassword, for a right and a wrong password, and with the decoy
// material for an unknown user.
func TestSCRAMExchange(t *testing.T) {
	d, err := New([]User{{Name: "bob", Password: "hunter2"}})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(user, _ []byte, mech string) ([]byte, []byte, int64, error) {
		salt, salted, iter, ok := d.SaltedPassword(string(user), mech)
		if !ok {
			salt, salted, iter = d.DecoySaltedPassword(string(user), mech)
		}
		return salt, salted, int64(iter), nil
	}
	for _, mech := range []sasl.Mechanism{sasl.ScramSha1, sasl.ScramSha256} {
		for _, tc := range []struct {
			user, password string
			ok             bool
		}{
			{"bob", "hunter2", true},
			{"bob", "hunter3", false},
			{"mallory", "hunter2", false},
		} {
			client := sasl.NewClient(mech, sasl.Credentials(func() ([]byte, []byte, []byte) {
				return []byte(tc.user), []byte(tc.password), nil
			}))
			server := sasl.NewServer(mech, nil, sasl.SaltedCredentials(fetch))
			err := exchange(client, server)
			if (err == nil) != tc.ok {
				t.Errorf("%s %s/%s: exchange error %v, want ok=%v", mech.Name, tc.user, tc.password, err, tc.ok)
			}
		}
	}
}

// exchange steps a SASL client and server until both are done.
func exchange(client, server *sasl.Negotiator) error {
	_, resp, err := client.Step(nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	for range 10 {
		more, challenge, err := server.Step(resp)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		cmore, cresp, err := client.Step(challenge)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if !more && !cmore {
			return nil
		}
		resp = cresp
	}
	return errors.New("exchange did not finish")
}

func TestDecoySaltedPassword(t *testing.T) {
	d, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s1, k1, iter := d.DecoySaltedPassword("mallory", "SCRAM-SHA-1")
	s2, k2, _ := d.DecoySaltedPassword("mallory", "SCRAM-SHA-1")
	s3, k3, _ := d.DecoySaltedPassword("trudy", "SCRAM-SHA-1")
	_, k4, _ := d.DecoySaltedPassword("mallory", "SCRAM-SHA-256")
	switch {
	case iter != 4096 || len(s1) != 16:
		t.Errorf("iterations %d, salt %d bytes", iter, len(s1))
	case string(s1) != string(s2) || string(k1) != string(k2):
		t.Error("decoy material differs between calls; a real user's does not")
	case string(s1) == string(s3) || string(k1) == string(k3):
		t.Error("decoy material is the same for two names")
	case len(k1) != sha1.Size || len(k4) != sha256.Size:
		t.Errorf("salted lengths %d, %d; want %d, %d", len(k1), len(k4), sha1.Size, sha256.Size)
	}
	other, _ := New(nil)
	if s5, _, _ := other.DecoySaltedPassword("mallory", "SCRAM-SHA-1"); string(s5) == string(s1) {
		t.Error("two directories derive the same decoy salt; the key is not random")
	}
}

func TestSCRAMReady(t *testing.T) {
	for _, tc := range []struct {
		users []User
		want  bool
	}{
		{nil, true},
		{[]User{{Name: "a", Password: "x"}, {Name: "b", Password: "y"}}, true},
		{[]User{{Name: "a", Password: "x"}, {Name: "b", PasswordHash: cheapHash(t, "y")}}, false},
		{[]User{{Name: "b", PasswordHash: cheapHash(t, "y")}}, false},
	} {
		d, err := New(tc.users)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.SCRAMReady(); got != tc.want {
			t.Errorf("SCRAMReady(%d users) = %v, want %v", len(tc.users), got, tc.want)
		}
	}
}

func TestLookupPeople(t *testing.T) {
	groups := []string{"ops", "eng", "ops"}
	d, err := New([]User{
		{Name: "carol", Password: "x", DisplayName: "Carol", Groups: groups},
		{Name: "alice", Password: "x", DisplayName: "Alice Example"},
		{Name: "bob", Password: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	groups[0] = "changed" // New copied the caller's slice
	p, ok := d.Lookup("carol")
	if !ok || !reflect.DeepEqual(p, Person{Username: "carol", DisplayName: "Carol", Groups: []string{"eng", "ops"}}) {
		t.Errorf("Lookup(carol) = %+v, %v", p, ok)
	}
	if _, ok := d.Lookup("dave"); ok {
		t.Error("Lookup(dave) ok")
	}
	var names []string
	for _, p := range d.People() {
		names = append(names, p.Username)
	}
	if !slices.Equal(names, []string{"alice", "bob", "carol"}) {
		t.Errorf("People() = %q, want sorted", names)
	}
}

func TestColleagues(t *testing.T) {
	d, err := New([]User{
		{Name: "alice", Password: "x", Groups: []string{"eng", "ops"}},
		{Name: "bob", Password: "x", Groups: []string{"eng"}},
		{Name: "carol", Password: "x", Groups: []string{"ops", "eng", "sales"}},
		{Name: "dave", Password: "x", Groups: []string{"sales"}},
		{Name: "erin", Password: "x"},
		{Name: "frank", Password: "x", Groups: []string{"solo"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	type col = map[string][]string // colleague -> shared groups
	for _, tc := range []struct {
		user string
		want col
	}{
		{"alice", col{"bob": {"eng"}, "carol": {"eng", "ops"}}},
		{"bob", col{"alice": {"eng"}, "carol": {"eng"}}},
		{"carol", col{"alice": {"eng", "ops"}, "bob": {"eng"}, "dave": {"sales"}}},
		{"dave", col{"carol": {"sales"}}},
		{"erin", nil},  // no groups
		{"frank", nil}, // alone in a group
		{"nobody", nil},
	} {
		got := d.Colleagues(tc.user)
		if tc.want == nil {
			if got != nil {
				t.Errorf("Colleagues(%s) = %+v, want nil", tc.user, got)
			}
			continue
		}
		m := col{}
		var order []string
		for _, p := range got {
			m[p.Username] = p.Groups
			order = append(order, p.Username)
		}
		if !reflect.DeepEqual(m, tc.want) || !slices.IsSorted(order) {
			t.Errorf("Colleagues(%s) = %+v, want %v sorted", tc.user, got, tc.want)
		}
	}

	// Appending to a returned Groups must not clobber a neighbour's.
	got := d.Colleagues("carol")
	_ = append(got[0].Groups, "x")
	if again := d.Colleagues("carol"); !reflect.DeepEqual(again, got) {
		t.Errorf("append to a result changed the next one: %+v", again)
	}
	for _, p := range got {
		_ = append(p.Groups, "x")
	}
	if !reflect.DeepEqual(got[1].Groups, []string{"eng"}) || !reflect.DeepEqual(got[0].Groups, []string{"eng", "ops"}) {
		t.Errorf("appends leaked between results: %+v", got)
	}
}

// TestColleaguesRandom compares Colleagues with an obvious quadratic
// implementation on random directories, including users in more than the
// 8 groups the merge keeps on the stack.
func TestColleaguesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 8 {
		var users []User
		for i := range 60 {
			u := User{Name: fmt.Sprintf("u%02d", i), Password: "x"}
			for range r.IntN(12) {
				u.Groups = append(u.Groups, fmt.Sprint("g", r.IntN(15)))
			}
			users = append(users, u)
		}
		d, err := New(users)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			var want []Person
			mine := d.users[d.byName[u.Name]].person.Groups
			for _, p := range d.People() {
				if p.Username == u.Name {
					continue
				}
				var shared []string
				for _, g := range mine {
					if slices.Contains(p.Groups, g) {
						shared = append(shared, g)
					}
				}
				if shared != nil {
					p.Groups = shared
					want = append(want, p)
				}
			}
			if got := d.Colleagues(u.Name); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, %s: got %+v\nwant %+v", round, u.Name, got, want)
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	d, err := New([]User{
		{Name: "a", Password: "x", Groups: []string{"g", "h"}},
		{Name: "b", PasswordHash: cheapHash(t, "y"), Groups: []string{"g"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				_ = d.Authenticate(context.Background(), "b", "y")
				d.SaltedPassword("a", "SCRAM-SHA-256")
				d.Colleagues("a")
				d.People()
				d.Lookup("b")
			}
		})
	}
	wg.Wait()
}

// directory5000 is 5,000 users all in "Everyone", in one of 50 teams, and
// every tenth also in "Managers".
func directory5000(tb testing.TB) *Directory {
	users := make([]User, 5000)
	for i := range users {
		users[i] = User{
			Name:        fmt.Sprintf("user%04d", i),
			DisplayName: fmt.Sprintf("User %d", i),
			Password:    "x",
			Groups:      []string{"Everyone", fmt.Sprintf("Team %02d", i%50)},
		}
		if i%10 == 0 {
			users[i].Groups = append(users[i].Groups, "Managers")
		}
	}
	d, err := New(users)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkColleagues5000: a user in three groups, one with all 5,000
// members.
func BenchmarkColleagues5000(b *testing.B) {
	d := directory5000(b)
	b.ReportAllocs()
	for b.Loop() {
		if n := len(d.Colleagues("user0010")); n != 4999 {
			b.Fatalf("%d colleagues", n)
		}
	}
}

// BenchmarkColleagues5000OneGroup: the single-group fast path.
func BenchmarkColleagues5000OneGroup(b *testing.B) {
	users := make([]User, 5000)
	for i := range users {
		users[i] = User{Name: fmt.Sprintf("user%04d", i), Password: "x", Groups: []string{"Everyone"}}
	}
	d, err := New(users)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := len(d.Colleagues("user0010")); n != 4999 {
			b.Fatalf("%d colleagues", n)
		}
	}
}

// BenchmarkNew20000 is start-up with 20,000 hashed users: no Argon2id or
// PBKDF2 may run here.
func BenchmarkNew20000(b *testing.B) {
	h := cheapHash(b, "x")
	users := make([]User, 20000)
	for i := range users {
		users[i] = User{Name: fmt.Sprintf("user%05d", i), PasswordHash: h, Groups: []string{"Everyone", fmt.Sprint("Team ", i%200)}}
		if i%2 == 0 {
			users[i].PasswordHash, users[i].Password = "", "plain"
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(users); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate is one login with HashPassword's parameters.
func BenchmarkAuthenticate(b *testing.B) {
	h, err := HashPassword("pw")
	if err != nil {
		b.Fatal(err)
	}
	d, err := New([]User{{Name: "a", PasswordHash: h}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Authenticate(context.Background(), "a", "pw"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaltedPasswordCached(b *testing.B) {
	d, err := New([]User{{Name: "a", Password: "x"}})
	if err != nil {
		b.Fatal(err)
	}
	d.SaltedPassword("a", "SCRAM-SHA-256")
	b.ReportAllocs()
	for b.Loop() {
		d.SaltedPassword("a", "SCRAM-SHA-256")
	}
}
