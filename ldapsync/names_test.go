package ldapsync

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ownchat/ownchat/store"
)

// TestPresetNames: both presets map givenName and sn; neither sets a
// nickname attribute (the given name stands in); an explicit key wins;
// the attributes are requested in user searches.
func TestPresetNames(t *testing.T) {
	for _, preset := range []string{PresetActiveDirectory, PresetOpenLDAP} {
		c := Config{URLs: []string{"ldaps://a"}, BaseDN: "dc=x", RosterGroups: []string{"*"}}
		if err := c.ApplyPreset(preset); err != nil {
			t.Fatal(err)
		}
		if c.GivenNameAttr != "givenName" || c.SurnameAttr != "sn" || c.NicknameAttr != "" {
			t.Errorf("%s: given %q surname %q nickname %q", preset, c.GivenNameAttr, c.SurnameAttr, c.NicknameAttr)
		}
		s, err := c.check()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"givenName", "sn"} {
			if !slices.Contains(s.userAttrs, a) {
				t.Errorf("%s: user searches do not ask for %s: %q", preset, a, s.userAttrs)
			}
		}

		c = Config{URLs: []string{"ldaps://a"}, BaseDN: "dc=x", GivenNameAttr: "firstName", SurnameAttr: "lastName,sn",
			NicknameAttr: "nickName,displayName"}
		if err := c.ApplyPreset(preset); err != nil {
			t.Fatal(err)
		}
		if s, err = c.check(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.given, []string{"firstName"}) || !slices.Equal(s.surname, []string{"lastName", "sn"}) ||
			!slices.Equal(s.nickname, []string{"nickName", "displayName"}) {
			t.Errorf("%s: overrides lost: %q %q %q", preset, s.given, s.surname, s.nickname)
		}
		if !slices.Contains(s.userAttrs, "nickName") || slices.Contains(s.userAttrs, "givenName") {
			t.Errorf("%s: user attributes %q", preset, s.userAttrs)
		}
	}
	c := Config{URLs: []string{"ldaps://a"}, BaseDN: "dc=x", SurnameAttr: "last name"}
	if err := c.ApplyPreset(PresetOpenLDAP); err != nil {
		t.Fatal(err)
	}
	if _, err := c.check(); err == nil {
		t.Error("an invalid surname attribute is accepted")
	}
}

// TestNamesFromEntry: the mapping of one entry, with the nickname's
// fallback to the given name.
func TestNamesFromEntry(t *testing.T) {
	entry := func(attrs ...string) *ldap.Entry {
		m := map[string][]string{"uid": {"anna"}, "entryUUID": {"u1"}}
		for i := 0; i+1 < len(attrs); i += 2 {
			m[attrs[i]] = append(m[attrs[i]], attrs[i+1])
		}
		return ldap.NewEntry("uid=anna,dc=x", m)
	}
	for _, tc := range []struct {
		name                 string
		nicknameAttr         string
		entry                *ldap.Entry
		given, surname, nick string
		wantNickname         string
	}{
		{"all", "", entry("givenName", "Anna", "sn", "Berg"), "Anna", "Berg", "", "Anna"},
		{"surname only", "", entry("sn", "Berg"), "", "Berg", "", ""},
		{"nickname attribute", "displayName", entry("givenName", "Anna", "displayName", "Annie"), "Anna", "", "Annie", "Annie"},
		{"nickname attribute missing", "displayName", entry("givenName", "Anna"), "Anna", "", "", "Anna"},
		{"case-insensitive names, first value", "", entry("GIVENNAME", "Anna", "givenname", "Anne", "SN", "Berg"), "Anna", "Berg", "", "Anna"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{URLs: []string{"ldaps://a"}, BaseDN: "dc=x", NicknameAttr: tc.nicknameAttr}
			if err := c.ApplyPreset(PresetOpenLDAP); err != nil {
				t.Fatal(err)
			}
			s, err := c.check()
			if err != nil {
				t.Fatal(err)
			}
			d := &Directory{s: s}
			u := d.userFromEntry(tc.entry, nil)
			if u.given != tc.given || u.surname != tc.surname || u.nick != tc.nick {
				t.Errorf("record given %q surname %q nick %q, want %q %q %q", u.given, u.surname, u.nick, tc.given, tc.surname, tc.nick)
			}
			sn := build(s, []userRec{u}, nil, snapMeta{}, time.Now())
			p := sn.lookup("anna")
			if p == nil || p.GivenName != tc.given || p.Surname != tc.surname || p.Nickname != tc.wantNickname {
				t.Errorf("person %+v, want given %q surname %q nickname %q", p, tc.given, tc.surname, tc.wantNickname)
			}
		})
	}
}

// TestNamesChanged: a new given name, surname or nickname is a profile
// change (the vCard differs), nothing else is.
func TestNamesChanged(t *testing.T) {
	base := Person{Username: "anna", GivenName: "Anna", Surname: "Berg", Nickname: "Anna"}
	for _, change := range []func(p *Person){
		func(p *Person) { p.GivenName = "Anne" },
		func(p *Person) { p.Surname = "Borg" },
		func(p *Person) { p.Nickname = "Annie" },
	} {
		p := base
		change(&p)
		if !profileChanged(&base, &p) {
			t.Errorf("%+v -> %+v is not a change", base, p)
		}
	}
	if p := base; profileChanged(&base, &p) {
		t.Error("an equal person is a change")
	}
}

// encodeSnapshotV2 is the encoding before names (snapshot version 2), as
// a server of that version wrote it.
func encodeSnapshotV2(sn *snapshot) []byte {
	e := &encoder{}
	e.b = append(e.b, 2)
	m := sn.meta
	e.str(m.url)
	e.str(m.userMark)
	e.str(m.groupMark)
	e.time(m.fullAt)
	e.time(m.syncedAt)
	e.uint(uint64(len(sn.users)))
	for i := range sn.users {
		u := &sn.users[i]
		for _, s := range [...]string{u.id, u.dn, u.raw, u.username, u.display, u.mail, u.title, u.phone, u.dept, u.photo, u.photoTyp} {
			e.str(s)
		}
		var flags uint64
		if u.disabled {
			flags |= 1
		}
		e.uint(flags)
		e.int(u.expires)
		e.str(u.change)
		e.uint(uint64(len(u.aliases)))
		for _, a := range u.aliases {
			e.str(a)
		}
		e.str(u.pgroup)
	}
	e.uint(uint64(len(sn.groups)))
	for i := range sn.groups {
		g := &sn.groups[i]
		e.str(g.id)
		e.str(g.dn)
		e.str(g.name)
		e.str(g.change)
		e.uint(uint64(len(g.members)))
		for _, m := range g.members {
			e.str(m)
		}
		e.uint(uint64(len(g.uids)))
		for _, u := range g.uids {
			e.str(u)
		}
		e.str(g.sid)
	}
	return e.b
}

// TestSnapshotNamesRoundTrip: names survive the store encoding, and a
// version 2 snapshot still loads, without names.
func TestSnapshotNamesRoundTrip(t *testing.T) {
	s, users, groups := syntheticSnapshot(5, 2)
	users[0].given, users[0].surname, users[0].nick = "Anna", "Berg", "Annie"
	users[1].surname = "Chen"
	meta := snapMeta{url: "ldaps://a", userMark: "7", fullAt: time.Unix(100, 0).UTC(), syncedAt: time.Unix(200, 0).UTC()}
	sn := build(s, users, groups, meta, time.Now())

	u2, g2, m2, err := decodeSnapshot(encodeSnapshot(sn))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u2, sn.users) || !reflect.DeepEqual(g2, sn.groups) || m2 != meta {
		t.Errorf("v3 round trip differs: %+v", u2[:2])
	}

	u2, g2, m2, err = decodeSnapshot(encodeSnapshotV2(sn))
	if err != nil {
		t.Fatalf("a version 2 snapshot does not load: %v", err)
	}
	for i := range u2 {
		if u2[i].given != "" || u2[i].surname != "" || u2[i].nick != "" {
			t.Errorf("v2 user %d has names %+v", i, u2[i])
		}
		want := sn.users[i]
		want.given, want.surname, want.nick = "", "", ""
		if !reflect.DeepEqual(u2[i], want) {
			t.Errorf("v2 user %d:\n%+v\nwant %+v", i, u2[i], want)
		}
	}
	if !reflect.DeepEqual(g2, sn.groups) {
		t.Error("v2 groups differ")
	}
	if m2 != meta {
		t.Errorf("v2 meta %+v, want %+v", m2, meta)
	}
}

// TestNamesSync reads the names from a real slapd in a full sync, follows
// a change in an incremental one, keeps them in the stored snapshot, and
// upgrades a stored version 2 snapshot with a full sync.
func TestNamesSync(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := testConfig(s)
	d, _ := newDir(t, cfg, st)
	mustSync(t, d)

	type names struct{ given, surname, nick string }
	get := func(d *Directory, user string) names {
		t.Helper()
		p := mustLookup(t, d, user)
		return names{p.GivenName, p.Surname, p.Nickname}
	}
	for user, want := range map[string]names{
		"alice":    {"Alice", "Andersen", "Alice"},
		"bob":      {"", "Becker", ""},
		"jmueller": {"Jürgen", "Müller", "Jürgen"},
	} {
		if got := get(d, user); got != want {
			t.Errorf("%s: %+v, want %+v", user, got, want)
		}
	}
	if p, ok, err := d.Profile("alice"); err != nil || !ok || p.Surname != "Andersen" || p.Nickname != "Alice" {
		t.Errorf("Profile(alice) = %+v, %v, %v", p, ok, err)
	}

	// An incremental sync sees a new given name (the nickname follows it).
	full := d.Stats().LastFullSync
	s.Modify("uid=alice,ou=People,"+suffix, func(r *ldap.ModifyRequest) { r.Replace("givenName", []string{"Ali"}) })
	df, err := d.sync(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Stats().LastFullSync.Equal(full) {
		t.Fatal("the second sync was a full one; this test needs an incremental sync")
	}
	if !slices.Equal(df.Changed, []string{"alice"}) {
		t.Errorf("Changed %q, want alice", df.Changed)
	}
	if got := get(d, "alice"); got != (names{"Ali", "Andersen", "Ali"}) {
		t.Errorf("alice after the change: %+v", got)
	}
	d.Close()

	// A restart serves the names from the stored snapshot.
	d2, _ := newDir(t, cfg, st)
	if got := get(d2, "alice"); got != (names{"Ali", "Andersen", "Ali"}) {
		t.Errorf("alice from the stored snapshot: %+v", got)
	}
	// The snapshot as a version 2 server stored it: loads without names,
	// and the first sync (Run's is always full) fills them in.
	if err := st.Put(kvBucket, kvSnapshot, encodeSnapshotV2(d2.snap.Load())); err != nil {
		t.Fatal(err)
	}
	d2.Close()
	d3, _ := newDir(t, cfg, st)
	if !d3.Ready() {
		t.Fatal("a version 2 snapshot does not make the directory ready")
	}
	if got := get(d3, "alice"); got != (names{}) {
		t.Errorf("alice from a version 2 snapshot: %+v", got)
	}
	mustSync(t, d3)
	if got := get(d3, "alice"); got != (names{"Ali", "Andersen", "Ali"}) {
		t.Errorf("alice after the upgrade sync: %+v", got)
	}
}

// TestCheckNames: `xmppd check` shows the names it maps for each sample.
func TestCheckNames(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	d, _ := newDir(t, testConfig(s), nil)
	r, err := d.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Samples) == 0 {
		t.Fatalf("no samples:\n%s", r)
	}
	if p := r.Samples[0].Person; p.Username != "alice" || p.GivenName != "Alice" || p.Surname != "Andersen" || p.Nickname != "Alice" {
		t.Errorf("first sample: %+v", p)
	}
	if want := `given name "Alice", surname "Andersen", nickname "Alice"`; !strings.Contains(r.String(), want) {
		t.Errorf("String() lacks %s:\n%s", want, r)
	}
}
