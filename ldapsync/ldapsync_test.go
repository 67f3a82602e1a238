package ldapsync

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/ownchat/ownchat/sharedroster"
	"github.com/ownchat/ownchat/store"
)

// TestMain fails the package when goroutines outlive the tests: a pooled
// connection's reader or a Run loop still going is a leak.
func TestMain(m *testing.M) {
	code := m.Run()
	if big50k.s != nil { // kept running across the sync benchmarks
		big50k.s.Stop()
	}
	if big50k.dir != "" {
		os.RemoveAll(big50k.dir)
	}
	if ad := adServer.ad; ad != nil { // shared by the Active Directory tests
		ad.stop()
		os.RemoveAll(ad.dir)
	}
	if code == 0 {
		var leaked []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if leaked = leakedGoroutines(); len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "ldapsync: %d goroutines leaked:\n\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "ldapsync.TestMain(") {
			continue
		}
		if strings.Contains(g, "github.com/ownchat/ownchat") || strings.Contains(g, "github.com/go-ldap/") {
			out = append(out, g)
		}
	}
	return out
}

// alicePhoto is the jpegPhoto of uid=alice in the fixture.
var alicePhoto, _ = base64.StdEncoding.DecodeString("/9j/2wCEABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2MBERISGBUYLxoaL2NCOEJjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY//AABEIAAgACAMBIgACEQEDEQH/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+gEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoLEQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEAAhEDEQA/AKVFFFch9Cf/2Q==")

// otherPhoto is a second JPEG, for photo changes.
var otherPhoto, _ = base64.StdEncoding.DecodeString("/9j/2wCEABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2MBERISGBUYLxoaL2NCOEJjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY//AABEIAAgACAMBIgACEQEDEQH/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+gEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoLEQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEAAhEDEQA/AMWiiivoTI//2Q==")

// logBuffer collects log output so tests can check what was (not) logged.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testConfig is the openldap preset against s, in clear on loopback.
func testConfig(s *slapd) Config {
	c := Config{
		URLs: []string{s.URL}, AllowInsecure: true,
		BindDN: serviceDN, BindPassword: servicePW, BaseDN: suffix,
		RosterGroups: []string{"*"},
		DialTimeout:  2 * time.Second, RequestTimeout: 10 * time.Second,
	}
	if err := c.ApplyPreset(PresetOpenLDAP); err != nil {
		panic(err)
	}
	return c
}

// newDir returns a Directory whose logs go to the returned buffer. At the
// end of the test it is closed and the logs are checked for passwords.
func newDir(t testing.TB, cfg Config, st *store.Store) (*Directory, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	d, err := New(cfg, st, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		d.Close()
		for _, secret := range []string{servicePW, "alice-secret", "JSmith-secret", "frank-secret", "wrong-password"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a password (%q) is in the logs:\n%s", secret, logs)
			}
		}
	})
	return d, logs
}

func mustSync(t testing.TB, d *Directory) Diff {
	t.Helper()
	df, err := d.Sync(context.Background())
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return df
}

func usernames(ps []Person) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Username
	}
	return out
}

// TestSyncFixture reads the fixture company and checks every mapping.
func TestSyncFixture(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	d, logs := newDir(t, testConfig(s), nil)
	if d.Ready() {
		t.Fatal("Ready before the first sync")
	}
	df := mustSync(t, d)
	if !d.Ready() {
		t.Fatal("not Ready after a sync")
	}
	want := []string{"alice", "bob", "carol", "dave", "erin", "grace", "ivan", "jmueller", "jsmith"}
	if got := usernames(d.People()); !slices.Equal(got, want) {
		t.Errorf("People = %q, want %q (frank locked, heidi@home invalid, the service account no person)", got, want)
	}
	if !slices.Equal(df.Added, want) || df.Summary != "users +9 -0, groups ~8, 0 rosters changed" {
		t.Errorf("first diff: %+v", df)
	}

	alice, ok := d.Lookup("alice")
	wantAlice := Person{Username: "alice", DisplayName: "Alice Andersen", Groups: []string{"All Staff", "Cycle A", "Cycle B", "Engineering"},
		Mail: "alice@corp.example", Title: "Head of Engineering", Phone: "+49 30 1234-100", Department: "Engineering",
		GivenName: "Alice", Surname: "Andersen", Nickname: "Alice",
		PhotoType: "image/jpeg", PhotoHash: "b9f1f1d4f0b7c9e8a8a5e0b4ec0b6dbbd0fa7b37"}
	wantAlice.PhotoHash = alice.PhotoHash // checked below against the bytes
	if !ok || !reflect.DeepEqual(alice, wantAlice) {
		t.Errorf("Lookup(alice) = %+v, %v\nwant %+v", alice, ok, wantAlice)
	}
	prof, ok, err := d.Profile("alice")
	if err != nil || !ok || !bytes.Equal(prof.Photo, alicePhoto) || prof.PhotoType != "image/jpeg" {
		t.Errorf("Profile(alice): photo %d bytes %q, %v, %v", len(prof.Photo), prof.PhotoType, ok, err)
	}
	if len(alice.PhotoHash) != 40 {
		t.Errorf("PhotoHash %q is not SHA-1 hex", alice.PhotoHash)
	}

	for _, tc := range []struct {
		user    string
		display string
		groups  []string
		dept    string
	}{
		{"jsmith", "John Smith", []string{"All Staff", "Backend", "Engineering", "ops"}, "Engineering"}, // department from ou
		{"jmueller", "Jürgen Müller", []string{"All Staff", "Legal"}, "Legal"},
		{"ivan", "Ivan Ivanov", []string{"ops"}, ""}, // cn when there is no displayName
		{"carol", "Carol Chen", []string{"All Staff", "Cycle A", "Cycle B", "Sales"}, "Sales"},
	} {
		p, ok := d.Lookup(tc.user)
		if !ok || p.DisplayName != tc.display || !slices.Equal(p.Groups, tc.groups) || p.Department != tc.dept {
			t.Errorf("Lookup(%s) = %+v, %v; want display %q groups %q department %q", tc.user, p, ok, tc.display, tc.groups, tc.dept)
		}
	}
	for _, name := range []string{"frank", "heidi@home", "heidi", "xmppd", "JSmith"} {
		if p, ok := d.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, want not found", name, p)
		}
	}
	if !strings.Contains(logs.String(), "heidi@home") || !strings.Contains(logs.String(), whyBadName) {
		t.Errorf("no warning about the invalid username heidi@home:\n%s", logs)
	}
	st := d.Stats()
	if st.Users != 9 || st.Disabled != 1 || st.Inactive != 2 || st.Syncs != 1 || st.Server != s.URL {
		t.Errorf("Stats = %+v", st)
	}
}

// TestColleagues checks nested groups, posixGroup members, cycles and
// the roster_groups selection.
func TestColleagues(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	type want map[string][]string // colleague -> shared groups
	for _, tc := range []struct {
		name   string
		roster []string
		user   string
		want   want
		rules  []sharedroster.Rule
	}{
		{"nested", []string{"Engineering"}, "alice", want{"bob": {"Engineering"}, "jsmith": {"Engineering"}}, nil},
		{"nested inner", []string{"engineering"}, "bob", want{"alice": {"Engineering"}, "jsmith": {"Engineering"}}, nil},
		{"two levels", []string{"All Staff"}, "erin", want{
			"alice": {"All Staff"}, "bob": {"All Staff"}, "carol": {"All Staff"}, "dave": {"All Staff"},
			"grace": {"All Staff"}, "jmueller": {"All Staff"}, "jsmith": {"All Staff"}}, nil},
		{"posixGroup memberUid", []string{"ops"}, "ivan", want{"jsmith": {"ops"}}, nil},
		{"cycle", []string{"Cycle A"}, "alice", want{"carol": {"Cycle A"}}, nil},
		{"several groups", []string{"Engineering", "ops", "Legal"}, "jsmith", want{
			"alice": {"Engineering"}, "bob": {"Engineering"}, "ivan": {"ops"}}, nil},
		{"all groups", []string{"*"}, "jsmith", want{
			"alice": {"All Staff", "Engineering"}, "bob": {"All Staff", "Backend", "Engineering"},
			"carol": {"All Staff"}, "dave": {"All Staff"}, "erin": {"All Staff"}, "grace": {"All Staff"},
			"ivan": {"ops"}, "jmueller": {"All Staff"}}, nil},
		{"not a roster group", []string{"Sales"}, "alice", want{}, nil},
		{"none", nil, "carol", want{}, nil},
		// Members of X see members of Y, under Y's name, and the other way
		// round; neither needs to be a roster group.
		{"Sales sees Legal", nil, "carol", want{"erin": {"Legal"}, "jmueller": {"Legal"}},
			[]sharedroster.Rule{{Group: "sales", Sees: []string{"Legal"}}}},
		{"seen by Sales", nil, "erin", want{"carol": {"Sales"}, "dave": {"Sales"}, "grace": {"Sales"}},
			[]sharedroster.Rule{{Group: "Sales", Sees: []string{"Legal"}}}},
		{"rule and roster group", []string{"Sales"}, "carol", want{"dave": {"Sales"}, "grace": {"Sales"}, "erin": {"Legal"}, "jmueller": {"Legal"}},
			[]sharedroster.Rule{{Group: "Sales", Sees: []string{"Legal"}}}},
		{"rule to a nested group", nil, "carol", want{"bob": {"Backend"}, "jsmith": {"Backend"}},
			[]sharedroster.Rule{{Group: "Sales", Sees: []string{"Backend", "No Such Group"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(s)
			cfg.RosterGroups = tc.roster
			cfg.RosterRules = tc.rules
			d, _ := newDir(t, cfg, nil)
			mustSync(t, d)
			got := want{}
			for _, p := range d.Colleagues(tc.user) {
				got[p.Username] = p.Groups
				if p.DisplayName == "" {
					t.Errorf("colleague %s without display name", p.Username)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Colleagues(%s) = %v\nwant %v", tc.user, got, tc.want)
			}
		})
	}
}

// TestAuthenticate binds live: right and wrong passwords, locked, unknown,
// invalid and service accounts, aliases, and filter injection attempts.
func TestAuthenticate(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	cfg := testConfig(s)
	cfg.AliasAttrs = []string{"mail"}
	d, _ := newDir(t, cfg, nil)
	mustSync(t, d) // for aliases; logins themselves do not need the snapshot
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, password string
		ok                   bool
	}{
		{"right password", "alice", "alice-secret", true},
		{"wrong password", "alice", "wrong-password", false},
		{"other user's password", "alice", "bob-secret", false},
		{"empty password", "alice", "", false}, // an unauthenticated bind would succeed
		{"mixed-case uid", "jsmith", "JSmith-secret", true},
		{"umlauts in DN", "jmueller", "jmueller-secret", true},
		{"locked", "frank", "frank-secret", false},
		{"unknown", "mallory", "mallory-secret", false},
		{"invalid localpart", "heidi@home", "heidi-secret", false},
		{"service account", "xmppd", servicePW, false},
		{"alias", "g.hopper", "grace-secret", true},
		{"injection wildcard", "*", "alice-secret", false},
		{"injection close", "*)(uid=*", "alice-secret", false},
		{"injection or", "admin)(|(uid=*", "alice-secret", false},
		{"injection prefix", "ali*", "alice-secret", false},
		{"injection nul", "alice\x00", "alice-secret", false},
		{"injection paren", "alice)", "alice-secret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Authenticate(ctx, tc.user, tc.password)
			if tc.ok && err != nil {
				t.Errorf("Authenticate(%q) = %v, want success", tc.user, err)
			}
			if !tc.ok && !errors.Is(err, ErrBadCredentials) {
				t.Errorf("Authenticate(%q) = %v, want ErrBadCredentials", tc.user, err)
			}
		})
	}
	if got, ok := d.Resolve("g.hopper"); got != "grace" || !ok {
		t.Errorf("Resolve(g.hopper) = %q, %v", got, ok)
	}

	// A password change takes effect at the next login: nothing cached.
	s.Modify("uid=bob,ou=People,"+suffix, func(r *ldap.ModifyRequest) { r.Replace("userPassword", []string{"new-secret"}) })
	if err := d.Authenticate(ctx, "bob", "bob-secret"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password after a change: %v", err)
	}
	if err := d.Authenticate(ctx, "bob", "new-secret"); err != nil {
		t.Errorf("new password: %v", err)
	}
	// So does a lock, before any sync.
	s.Modify("uid=carol,ou=People,"+suffix, func(r *ldap.ModifyRequest) {
		r.Add("pwdAccountLockedTime", []string{"000001010000Z"})
	})
	if err := d.Authenticate(ctx, "carol", "carol-secret"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("locked since the last sync: %v", err)
	}
	// And a user created since the last sync can log in at once.
	s.Add("uid=newbie,ou=People,"+suffix, personAttrs("newbie", "New Bie"))
	if err := d.Authenticate(ctx, "newbie", "newbie-secret"); err != nil {
		t.Errorf("new user: %v", err)
	}
	if st := d.Stats(); st.Logins == 0 || st.LoginsRefused == 0 || st.LoginsUnavailable != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestEscapedFilters checks the filter a login sends, byte for byte, for
// injection attempts: only escaped values reach the server.
func TestEscapedFilters(t *testing.T) {
	for in, want := range map[string]string{
		"*)(uid=*":       `(&(objectClass=inetOrgPerson)(uid=\2a\29\28uid=\2a)(!(pwdAccountLockedTime=*)))`,
		"admin)(|(uid=*": `(&(objectClass=inetOrgPerson)(uid=admin\29\28|\28uid=\2a)(!(pwdAccountLockedTime=*)))`,
		"jürgen":         `(&(objectClass=inetOrgPerson)(uid=j\c3\bcrgen)(!(pwdAccountLockedTime=*)))`,
	} {
		s := &settings{}
		s.UserFilter, s.username, s.DisabledFilter = "(objectClass=inetOrgPerson)", "uid", "(pwdAccountLockedTime=*)"
		if got := userLookupFilter(s, in); got != want {
			t.Errorf("filter for %q = %s, want %s", in, got, want)
		}
		if _, err := ldap.CompileFilter(userLookupFilter(s, in)); err != nil {
			t.Errorf("filter for %q does not compile: %v", in, err)
		}
	}
}

// TestSyncDiff changes the directory between syncs and checks each diff,
// from a Directory that always syncs in full and from one that syncs
// incrementally (modifyTimestamp plus identity sweeps): both must see the
// same changes.
func TestSyncDiff(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	cfg := testConfig(s)
	cfg.RosterGroups = []string{"Engineering", "Sales", "Legal"}
	full, _ := newDir(t, cfg, nil)
	cfg.FullSyncInterval = time.Hour
	inc, _ := newDir(t, cfg, nil)
	ctx := context.Background()
	mustSync(t, full)
	mustSync(t, inc)
	firstFull := inc.snap.Load().meta.fullAt
	people := "ou=People," + suffix
	groups := "ou=Groups," + suffix

	for _, step := range []struct {
		name   string
		change func()
		want   Diff
	}{
		{"nothing", func() {}, Diff{Summary: "no changes"}},
		{"add to group", func() {
			s.Add("uid=nina,"+people, personAttrs("nina", "Nina Nowak", "displayName", "Nina Nowak"))
			s.Modify("cn=Sales,"+groups, func(r *ldap.ModifyRequest) { r.Add("member", []string{"uid=nina," + people}) })
		}, Diff{Added: []string{"nina"}, RosterChanged: []string{"carol", "dave", "grace"},
			Summary: "users +1 -0, groups ~1, 3 rosters changed"}},
		{"delete", func() {
			s.Delete("uid=dave," + people)
			s.Await("cn=Sales,"+groups, "(member=uid=dave,"+people+")", false)
		},
			Diff{Removed: []string{"dave"}, RosterChanged: []string{"carol", "grace", "nina"}, LeaverGroups: map[string][]string{"dave": {"Sales"}},
				Summary: "users +0 -1, groups ~1, 3 rosters changed"}},
		{"lock", func() {
			s.Modify("uid=erin,"+people, func(r *ldap.ModifyRequest) { r.Add("pwdAccountLockedTime", []string{"000001010000Z"}) })
		}, Diff{Disabled: []string{"erin"}, RosterChanged: []string{"jmueller"}, LeaverGroups: map[string][]string{"erin": {"Legal"}},
			Summary: "users +0 -1 (disabled 1), groups ~1, 1 rosters changed"}},
		{"unlock", func() {
			s.Modify("uid=erin,"+people, func(r *ldap.ModifyRequest) { r.Delete("pwdAccountLockedTime", nil) })
		}, Diff{Added: []string{"erin"}, RosterChanged: []string{"jmueller"},
			Summary: "users +1 -0, groups ~1, 1 rosters changed"}},
		{"display name", func() {
			s.Modify("uid=bob,"+people, func(r *ldap.ModifyRequest) { r.Replace("displayName", []string{"Robert Becker"}) })
		}, Diff{Changed: []string{"bob"}, RosterChanged: []string{"alice", "jsmith"},
			Summary: "users +0 -0 ~1, groups ~1, 2 rosters changed"}},
		{"title and photo", func() {
			s.Modify("uid=alice,"+people, func(r *ldap.ModifyRequest) {
				r.Replace("title", []string{"CTO"})
				r.Replace("jpegPhoto", []string{string(otherPhoto)})
			})
		}, Diff{Changed: []string{"alice"}, PhotoChanged: []string{"alice"}, Summary: "users +0 -0 ~1, groups ~0, 0 rosters changed"}},
		{"second group", func() {
			s.Modify("cn=Legal,"+groups, func(r *ldap.ModifyRequest) { r.Add("member", []string{"uid=bob," + people}) })
			// alice and jsmith share only Engineering with bob: unchanged.
		}, Diff{RosterChanged: []string{"bob", "erin", "jmueller"}, Regrouped: []string{"bob"},
			Summary: "users +0 -0, groups ~1, 3 rosters changed"}},
		{"rename", func() {
			s.Rename("uid=grace,"+people, "uid=ghopper")
			s.Await("cn=Sales,"+groups, "(member=uid=ghopper,"+people+")", true)
		},
			Diff{Renamed: []Rename{{From: "grace", To: "ghopper"}}, RosterChanged: []string{"carol", "nina"},
				Summary: "users +0 -0 (renamed 1), groups ~1, 2 rosters changed"}},
		{"group renamed", func() { s.Rename("cn=Legal,"+groups, "cn=Law") },
			// Law is not a roster group: Legal's members lose it.
			Diff{RosterChanged: []string{"bob", "erin", "jmueller"}, Regrouped: []string{"bob", "erin", "jmueller"},
				Summary: "users +0 -0, groups ~1, 3 rosters changed"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change()
			normalize(&step.want)
			got := mustSync(t, full)
			normalize(&got)
			if !reflect.DeepEqual(got, step.want) {
				t.Errorf("full sync diff\n got %+v\nwant %+v", got, step.want)
			}
			got, err := inc.sync(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			normalize(&got)
			if !reflect.DeepEqual(got, step.want) {
				t.Errorf("incremental sync diff\n got %+v\nwant %+v", got, step.want)
			}
			if m := inc.snap.Load().meta; !m.fullAt.Equal(firstFull) || m.syncedAt.Equal(m.fullAt) {
				t.Errorf("the second Directory did a full sync: %+v", m)
			}
		})
	}
	for _, d := range []*Directory{full, inc} {
		if _, ok := d.Lookup("ghopper"); !ok {
			t.Error("renamed user not found under the new name")
		}
		if p, _ := d.Lookup("nina"); !slices.Equal(p.Groups, []string{"Sales"}) {
			t.Errorf("nina's groups after the rename of grace: %q", p.Groups)
		}
		if prof, _, _ := d.Profile("alice"); !bytes.Equal(prof.Photo, otherPhoto) {
			t.Error("alice's new photo is not served")
		}
		if !reflect.DeepEqual(d.People(), full.People()) {
			t.Errorf("incremental and full snapshots differ:\n%+v\n%+v", d.People(), full.People())
		}
	}
}

func normalize(d *Diff) {
	for _, l := range []*[]string{&d.Added, &d.Removed, &d.Disabled, &d.Changed, &d.PhotoChanged, &d.RosterChanged, &d.Regrouped} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(d.Renamed) == 0 {
		d.Renamed = nil
	}
}
