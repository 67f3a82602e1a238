package ldapsync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/ownchat/ownchat/store"
)

// writeGenerated writes an LDIF of n users under ou=Gen and groups groups
// under ou=GenGroups: user i is in small group i%smallGroups, and the
// first big groups hold bigSize users each. Every photoEvery-th user has
// a photo (0: none). Identities are fixed, so two loads are the same
// directory.
func writeGenerated(t testing.TB, dir string, n, groups, big, bigSize, photoEvery int) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("gen-%d.ldif", n))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "dn: ou=Gen,%s\nobjectClass: organizationalUnit\nou: Gen\n\n", suffix)
	fmt.Fprintf(w, "dn: ou=GenGroups,%s\nobjectClass: organizationalUnit\nou: GenGroups\n\n", suffix)
	depts := []string{"Engineering", "Sales", "Legal", "Support", "Finance"}
	for i := range n {
		fmt.Fprintf(w, "dn: uid=u%06d,ou=Gen,%s\nobjectClass: inetOrgPerson\nuid: u%06d\ncn: User %d\nsn: %d\n"+
			"displayName: Gen User %d\nmail: u%06d@corp.example\ntitle: Title %d\ntelephoneNumber: +49 30 %07d\n"+
			"departmentNumber: %s\nuserPassword: u%06d-secret\nentryUUID: 30000000-0000-4000-8000-%012x\n",
			i, suffix, i, i, i, i, i, i%97, i, depts[i%len(depts)], i, i)
		if photoEvery > 0 && i%photoEvery == 0 {
			// A distinct small JPEG per user: the fixture image with
			// bytes appended after its end marker.
			p := append(append([]byte{}, alicePhoto...), fmt.Sprintf("%08d", i)...)
			fmt.Fprintf(w, "jpegPhoto:: %s\n", encodeB64(p))
		}
		w.WriteString("\n")
	}
	small := groups - big
	for g := range groups {
		fmt.Fprintf(w, "dn: cn=g%04d,ou=GenGroups,%s\nobjectClass: groupOfNames\ncn: g%04d\nentryUUID: 40000000-0000-4000-8000-%012x\n", g, suffix, g, g)
		members := 0
		if g < big {
			for i := g * bigSize % max(n, 1); members < min(bigSize, n); i = (i + 1) % n {
				fmt.Fprintf(w, "member: uid=u%06d,ou=Gen,%s\n", i, suffix)
				members++
			}
		} else {
			for i := g - big; i < n; i += small {
				fmt.Fprintf(w, "member: uid=u%06d,ou=Gen,%s\n", i, suffix)
				members++
			}
		}
		if members == 0 { // groupOfNames must have a member
			fmt.Fprintf(w, "member: cn=nobody,%s\n", suffix)
		}
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPaging reads 2,500 generated users through a service account whose
// searches are cut at 1,000 entries unless paged.
func TestPaging(t *testing.T) {
	requireSlapd(t)
	gen := writeGenerated(t, t.TempDir(), 2500, 30, 0, 0, 0)
	s := startSlapd(t, slapdOptions{LDIF: []string{fixture, gen}})

	// The limit is real: an unpaged search as the service account fails.
	l, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(serviceDN, servicePW); err != nil {
		t.Fatal(err)
	}
	_, err = l.Search(ldap.NewSearchRequest(suffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"uid"}, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("unpaged search: %v, want sizeLimitExceeded", err)
	}

	for _, page := range []int{100, 1000} {
		t.Run(fmt.Sprint("page ", page), func(t *testing.T) {
			cfg := testConfig(s)
			cfg.PageSize = page
			d, _ := newDir(t, cfg, nil)
			mustSync(t, d)
			if got := len(d.People()); got != 2500+9 {
				t.Errorf("%d people, want %d", got, 2509)
			}
			if got := len(d.Colleagues("u000001")); got != 2500/30 {
				t.Errorf("u000001 has %d colleagues, want %d", got, 2500/30)
			}
		})
	}
	// A sync whose context ends stops at once and changes nothing.
	d0, _ := newDir(t, testConfig(s), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d0.Sync(ctx); err == nil || d0.Ready() || time.Since(start) > 5*time.Second {
		t.Errorf("Sync with an ending context: %v after %v, ready %v", err, time.Since(start), d0.Ready())
	}
	mustSync(t, d0) // the pool recovers

	// A page larger than the server allows is refused, never truncated.
	cfg := testConfig(s)
	cfg.PageSize = 5000
	d, _ := newDir(t, cfg, nil)
	if _, err := d.Sync(context.Background()); err == nil || d.Ready() {
		t.Errorf("Sync with pages over the server's limit: err %v, ready %v; want an error", err, d.Ready())
	}
}

// TestTLS checks ldaps:// and StartTLS, and that every TLS failure fails
// closed: the connection is dropped and no password is sent in clear.
func TestTLS(t *testing.T) {
	s := startSlapd(t, slapdOptions{TLS: true})
	ctx := context.Background()
	tlsCfg := func(url string, startTLS bool) Config {
		c := testConfig(s)
		c.URLs, c.StartTLS, c.AllowInsecure, c.RootCAs = []string{url}, startTLS, false, s.CA
		return c
	}
	localhost := fmt.Sprintf("ldap://localhost:%d", s.Port)
	ipTLS := strings.Replace(s.TLSURL, "localhost", "127.0.0.1", 1)

	good := map[string]Config{
		"ldaps":    tlsCfg(s.TLSURL, false),
		"StartTLS": tlsCfg(localhost, true),
	}
	withFile := tlsCfg(s.TLSURL, false)
	withFile.RootCAs, withFile.CAFile = nil, s.CAFile
	good["ldaps with ca_file"] = withFile
	for name, cfg := range good {
		t.Run(name, func(t *testing.T) {
			d, _ := newDir(t, cfg, nil)
			mustSync(t, d)
			if err := d.Authenticate(ctx, "alice", "alice-secret"); err != nil {
				t.Errorf("Authenticate: %v", err)
			}
		})
	}

	noCA := tlsCfg(s.TLSURL, false)
	noCA.RootCAs = nil
	noCAStart := tlsCfg(localhost, true)
	noCAStart.RootCAs = nil
	for _, tc := range []struct {
		name    string
		cfg     Config
		explain string
	}{
		{"ldaps unknown CA", noCA, "not signed by a CA"},
		{"StartTLS unknown CA", noCAStart, "not signed by a CA"},
		{"ldaps wrong host", tlsCfg(ipTLS, false), "not valid for"},
		{"StartTLS wrong host", tlsCfg(s.URL, true), "not valid for"},
		{"ldaps to a plain port", tlsCfg(strings.Replace(s.URL, "ldap:", "ldaps:", 1), false), "did not answer with TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newDir(t, tc.cfg, nil)
			_, err := d.Sync(ctx)
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Errorf("Sync: %v, want an UnavailableError", err)
			}
			err = d.Authenticate(ctx, "alice", "alice-secret")
			var tmp interface{ Temporary() bool }
			if !errors.As(err, &tmp) || !tmp.Temporary() {
				t.Errorf("Authenticate: %v, want a temporary error", err)
			}
			r, err := d.Check(ctx)
			if err == nil || len(r.Servers) != 1 || !strings.Contains(r.Servers[0].Problem, tc.explain) {
				t.Errorf("Check: %v %+v, want %q", err, r.Servers, tc.explain)
			}
		})
	}

	t.Run("StartTLS refused", func(t *testing.T) {
		plain := startSlapd(t, slapdOptions{}) // no certificate: refuses StartTLS
		rec := newRecorder(t, strings.TrimPrefix(plain.URL, "ldap://"))
		cfg := tlsCfg(rec.URL(), true)
		d, _ := newDir(t, cfg, nil)
		if _, err := d.Sync(ctx); err == nil {
			t.Error("Sync succeeded without TLS")
		}
		if err := d.Authenticate(ctx, "alice", "alice-secret"); err == nil || errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate: %v, want a temporary error", err)
		}
		r, _ := d.Check(ctx)
		if len(r.Servers) != 1 || !strings.Contains(r.Servers[0].Problem, "StartTLS") {
			t.Errorf("Check: %+v", r.Servers)
		}
		sent := rec.Sent()
		if !bytes.Contains(sent, []byte("1.3.6.1.4.1.1466.20037")) {
			t.Error("no StartTLS request was sent")
		}
		for _, secret := range []string{servicePW, "alice-secret", serviceDN} {
			if bytes.Contains(sent, []byte(secret)) {
				t.Errorf("%q crossed the wire in clear", secret)
			}
		}
	})

	t.Run("plain ldap refused by config", func(t *testing.T) {
		cfg := testConfig(s)
		cfg.AllowInsecure = false
		_, err := New(cfg, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "clear text") {
			t.Errorf("New: %v, want a refusal of ldap:// without TLS", err)
		}
	})
}

// TestFailover starts two servers with the same data behind a dead URL.
func TestFailover(t *testing.T) {
	s1 := startSlapd(t, slapdOptions{})
	s2 := startSlapd(t, slapdOptions{})
	dead := fmt.Sprintf("ldap://127.0.0.1:%d", freePort(t))
	cfg := testConfig(s1)
	cfg.URLs = []string{dead, s1.URL, s2.URL}
	d, logs := newDir(t, cfg, nil)
	ctx := context.Background()
	mustSync(t, d)
	if st := d.Stats(); st.Server != s1.URL {
		t.Errorf("synced from %s, want %s", st.Server, s1.URL)
	}
	if err := d.Authenticate(ctx, "alice", "alice-secret"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), dead) {
		t.Errorf("the dead server is not logged:\n%s", logs)
	}

	s1.Stop() // pooled connections to s1 break; the next operations move on
	for i := range 3 {
		if err := d.Authenticate(ctx, "bob", "bob-secret"); err != nil {
			t.Fatalf("login %d after s1 stopped: %v", i, err)
		}
	}
	df := mustSync(t, d)
	if st := d.Stats(); st.Server != s2.URL || df.Summary != "no changes" {
		t.Errorf("after failover: server %s, diff %q; want %s, no changes", st.Server, df.Summary, s2.URL)
	}
}

// TestDirectoryDown: logins fail temporarily, the snapshot is still
// served, and everything recovers when the server is back.
func TestDirectoryDown(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	d, _ := newDir(t, testConfig(s), nil)
	ctx := context.Background()
	mustSync(t, d)
	before := d.People()
	s.Stop()

	err := d.Authenticate(ctx, "alice", "alice-secret")
	var ue *UnavailableError
	var tmp interface{ Temporary() bool }
	if !errors.As(err, &ue) || !errors.As(err, &tmp) || !tmp.Temporary() || errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate with the directory down: %v, want a temporary UnavailableError", err)
	}
	if _, err := d.Sync(ctx); !errors.As(err, &ue) {
		t.Errorf("Sync with the directory down: %v, want an UnavailableError", err)
	}
	if !d.Ready() || !reflect.DeepEqual(d.People(), before) || len(d.Colleagues("alice")) == 0 {
		t.Error("the snapshot is not served while the directory is down")
	}
	if st := d.Stats(); st.SyncFailures != 1 || st.LastError == "" || st.LoginsUnavailable != 1 {
		t.Errorf("Stats = %+v", st)
	}

	s.Start()
	if err := d.Authenticate(ctx, "alice", "alice-secret"); err != nil {
		t.Errorf("Authenticate after the directory is back: %v", err)
	}
	if df := mustSync(t, d); df.Summary != "no changes" || d.Stats().LastError != "" {
		t.Errorf("Sync after the directory is back: %+v", df)
	}
}

// TestSnapshotReload: a restarted server has the last snapshot, photos
// included, before it reaches the directory.
func TestSnapshotReload(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	dataDir := t.TempDir()
	cfg := testConfig(s)
	st, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := newDir(t, cfg, st)
	mustSync(t, d1)
	oldHash := mustLookup(t, d1, "alice").PhotoHash
	s.Modify("uid=alice,ou=People,"+suffix, func(r *ldap.ModifyRequest) { r.Replace("jpegPhoto", []string{string(otherPhoto)}) })
	mustSync(t, d1)
	if _, found, _ := d1.loadPhoto(oldHash); found {
		t.Error("the replaced photo is still stored")
	}
	people, colleagues := d1.People(), d1.Colleagues("jsmith")
	d1.Close()
	st.Close()
	s.Stop()

	st2, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	d2, _ := newDir(t, cfg, st2)
	if !d2.Ready() {
		t.Fatal("not Ready with a stored snapshot")
	}
	if !reflect.DeepEqual(d2.People(), people) || !reflect.DeepEqual(d2.Colleagues("jsmith"), colleagues) {
		t.Error("the reloaded snapshot differs")
	}
	if p, ok, err := d2.Profile("alice"); !ok || err != nil || !bytes.Equal(p.Photo, otherPhoto) {
		t.Errorf("Profile(alice) from the store: %d bytes, %v, %v", len(p.Photo), ok, err)
	}
	if err := d2.Authenticate(context.Background(), "alice", "alice-secret"); err == nil {
		t.Error("login succeeded with the directory down")
	}
	s.Start()
	if df := mustSync(t, d2); df.Summary != "no changes" {
		t.Errorf("first sync after the restart: %+v", df)
	}
}

func mustLookup(t testing.TB, d *Directory, user string) Person {
	t.Helper()
	p, ok := d.Lookup(user)
	if !ok {
		t.Fatalf("Lookup(%s): not found", user)
	}
	return p
}

// TestRemovalGuard: a filter that suddenly matches nobody does not log
// the company out.
func TestRemovalGuard(t *testing.T) {
	requireSlapd(t)
	gen := writeGenerated(t, t.TempDir(), 40, 2, 0, 0, 0)
	s := startSlapd(t, slapdOptions{LDIF: []string{fixture, gen}})
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := testConfig(s)
	d1, _ := newDir(t, cfg, st)
	mustSync(t, d1)
	d1.Close()

	cfg.UserFilter = "(&(objectClass=inetOrgPerson)(uid=nobody))"
	d2, _ := newDir(t, cfg, st)
	if _, err := d2.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Sync removing everyone: %v, want a refusal", err)
	}
	if len(d2.People()) != 49 {
		t.Errorf("%d people after a refused sync, want 49", len(d2.People()))
	}
	cfg.MaxRemovedFraction = 1
	d3, _ := newDir(t, cfg, st)
	if df := mustSync(t, d3); len(df.Removed) != 49 {
		t.Errorf("with the guard off: %s", df.Summary)
	}
}

// TestCheck runs the configuration check against good and broken settings.
func TestCheck(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	ctx := context.Background()
	t.Run("good", func(t *testing.T) {
		d, _ := newDir(t, testConfig(s), nil)
		r, err := d.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Users != 11 || r.Inactive != 2 || r.Disabled != 1 || r.Groups != 8 || r.RosterGroups != 8 ||
			len(r.Samples) != 3 || !r.Paging || r.BoundAs != serviceDN ||
			len(r.Problems) != 0 ||
			!reflect.DeepEqual(r.Warnings, []string{`1 user(s) cannot log in: "heidi@home" (username is not a valid XMPP localpart)`}) {
			t.Errorf("report:\n%s%+v", r, r)
		}
		if r.Samples[0].Person.Username != "alice" || !strings.Contains(r.Samples[0].Photo, "jpegPhoto: 598 bytes image/jpeg") {
			t.Errorf("first sample: %+v", r.Samples[0])
		}
		if d.Ready() {
			t.Error("Check changed the snapshot")
		}
		if !strings.Contains(r.String(), "users: 11 (2 cannot log in, of which 1 disabled); groups: 8") {
			t.Errorf("String():\n%s", r)
		}
	})
	for _, tc := range []struct {
		name    string
		change  func(c *Config)
		fatal   bool
		problem string
	}{
		{"wrong base DN", func(c *Config) { c.BaseDN = "dc=wrong,dc=example" }, false,
			`base_dn "dc=wrong,dc=example" does not exist on ` + s.URL + `; it holds: dc=corp,dc=example`},
		{"filter matches nothing", func(c *Config) { c.UserFilter = "(objectClass=user)" }, false,
			`user_filter "(objectClass=user)" matches nothing`},
		{"wrong username attribute", func(c *Config) { c.UsernameAttr = "sAMAccountName" }, false,
			`none of the 11 users has the username attribute "sAMAccountName"`},
		{"unknown roster group", func(c *Config) { c.RosterGroups = []string{"Engineering", "Marketing"} }, false,
			`roster_groups names "Marketing"`},
		{"bad service password", func(c *Config) { c.BindPassword = "wrong" }, true,
			"refused the service account"},
		{"nothing listens", func(c *Config) { c.URLs = []string{fmt.Sprintf("ldap://127.0.0.1:%d", freePort(t))} }, true,
			"connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(s)
			tc.change(&cfg)
			d, _ := newDir(t, cfg, nil)
			r, err := d.Check(ctx)
			text := strings.Join(r.Problems, "\n")
			if tc.fatal {
				if err == nil {
					t.Fatalf("no error; report:\n%s", r)
				}
				text = err.Error()
			} else if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, tc.problem) {
				t.Errorf("got:\n%s\nwant a mention of: %s", text, tc.problem)
			}
		})
	}
}

// TestRun: the loop delivers each change within a sync interval, also
// for syncs started by Sync, and stops with its context.
func TestRun(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	cfg := testConfig(s)
	cfg.SyncInterval = 100 * time.Millisecond
	cfg.FullSyncInterval = time.Hour
	d, _ := newDir(t, cfg, nil)
	diffs := make(chan Diff, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, func(df Diff) { diffs <- df }); close(done) }()
	defer func() { cancel(); <-done }()

	next := func(what string) Diff {
		t.Helper()
		select {
		case df := <-diffs:
			return df
		case <-time.After(10 * time.Second):
			t.Fatalf("no diff for %s", what)
			return Diff{}
		}
	}
	if df := next("the first sync"); len(df.Added) != 9 {
		t.Errorf("first diff: %s", df.Summary)
	}
	s.Delete("uid=erin,ou=People," + suffix)
	if df := next("a deletion"); !slices.Equal(df.Removed, []string{"erin"}) {
		t.Errorf("diff after a deletion: %+v", df)
	}
	s.Modify("uid=bob,ou=People,"+suffix, func(r *ldap.ModifyRequest) { r.Replace("title", []string{"Staff Engineer"}) })
	df, err := d.Sync(context.Background())
	if err != nil || !slices.Equal(df.Changed, []string{"bob"}) {
		t.Fatalf("Sync: %+v, %v", df, err)
	}
	if got := next("a Sync call"); !reflect.DeepEqual(got, df) {
		t.Errorf("onDiff got %+v, Sync returned %+v", got, df)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestConcurrent logs in from many goroutines while syncs swap snapshots
// and readers read them, for the race detector and the connection bound.
func TestConcurrent(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	cfg := testConfig(s)
	cfg.PoolSize = 2 // at most 8 connections per pool
	d, _ := newDir(t, cfg, nil)
	ctx := context.Background()
	mustSync(t, d)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // syncs and readers
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := d.Sync(ctx); err != nil {
				t.Error(err)
				return
			}
			if len(d.Colleagues("alice")) == 0 || !d.Ready() {
				t.Error("no colleagues during syncs")
			}
		}
	}()
	users := []string{"alice", "bob", "jsmith", "carol"}
	secrets := []string{"alice-secret", "bob-secret", "JSmith-secret", "carol-secret"}
	var logins sync.WaitGroup
	for g := range 40 {
		logins.Add(1)
		go func() {
			defer logins.Done()
			for i := range 10 {
				u := (g + i) % len(users)
				if err := d.Authenticate(ctx, users[u], secrets[u]); err != nil {
					t.Errorf("%s: %v", users[u], err)
				}
				if err := d.Authenticate(ctx, users[u], "wrong-password"); !errors.Is(err, ErrBadCredentials) {
					t.Errorf("%s wrong password: %v", users[u], err)
				}
			}
		}()
	}
	logins.Wait()
	close(done)
	wg.Wait()
	if st := d.Stats(); st.Logins != 400 || st.LoginsRefused != 400 {
		t.Errorf("Stats = %+v", st)
	}
}
