package ldapsync

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func TestNormDN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"uid=alice,ou=People,dc=corp,dc=example", "uid=alice,ou=people,dc=corp,dc=example"},
		{"UID=JSmith, OU=People, DC=corp, DC=example", "uid=jsmith,ou=people,dc=corp,dc=example"},
		{"cn=Jürgen Müller,ou=People,dc=corp,dc=example", "cn=jürgen müller,ou=people,dc=corp,dc=example"},
		{`cn=Smith\, John,ou=People,dc=corp,dc=example`, `cn=smith\, john,ou=people,dc=corp,dc=example`},
		{`cn=Smith\2C John,ou=People,dc=corp,dc=example`, `cn=smith\, john,ou=people,dc=corp,dc=example`},
		{`cn="Smith, John",ou=People,dc=corp,dc=example`, `cn="smith, john",ou=people,dc=corp,dc=example`}, // RFC 2253 quotes: not parsed, lowercased
		{`cn=a+uid=b,dc=x`, `cn=a+uid=b,dc=x`},
		{`uid=b+cn=a,dc=x`, `cn=a+uid=b,dc=x`},
		{`CN=Bob  ,OU=x`, `cn=bob,ou=x`},
		{"", ""},
		{`cn=\zz,dc=x`, `cn=\zz,dc=x`}, // unparsable: only lowercased
	} {
		if got := normDN(tc.in); got != tc.want {
			t.Errorf("normDN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRangeRetrieval(t *testing.T) {
	for _, tc := range []struct {
		name         string
		lo, hi       int
		last, isRang bool
	}{
		{"member;range=0-1499", 0, 1499, false, true},
		{"Member;Range=1500-*", 1500, 0, true, true},
		{"member", 0, 0, false, false},
		{"member;range=5-2", 0, 0, false, false},
		{"memberOf;range=0-1", 0, 0, false, false},
		{"member;binary", 0, 0, false, false},
	} {
		lo, hi, last, ok := rangeAttr(tc.name, "member")
		if lo != tc.lo || hi != tc.hi || last != tc.last || ok != tc.isRang {
			t.Errorf("rangeAttr(%q) = %d %d %v %v", tc.name, lo, hi, last, ok)
		}
	}

	// A group of 3,200 members as Active Directory returns it: 1500 per
	// answer, the rest fetched by range.
	all := make([]string, 3200)
	for i := range all {
		all[i] = fmt.Sprintf("cn=u%d,dc=x", i)
	}
	first := entryAttrs{{Name: "cn", Values: []string{"Big"}}, {Name: "member;range=0-1499", Values: all[:1500]}}
	var asked []string
	fetch := func(attr string) (entryAttrs, error) {
		asked = append(asked, attr)
		switch attr {
		case "member;range=1500-*":
			return entryAttrs{{Name: "member;range=1500-2999", Values: all[1500:3000]}}, nil
		case "member;range=3000-*":
			return entryAttrs{{Name: "member;range=3000-*", Values: all[3000:]}}, nil
		}
		return nil, fmt.Errorf("unexpected %s", attr)
	}
	got, err := memberValues(first, "member", fetch)
	if err != nil || !slices.Equal(got, all) || !slices.Equal(asked, []string{"member;range=1500-*", "member;range=3000-*"}) {
		t.Errorf("memberValues: %d values, %v, asked %q", len(got), err, asked)
	}
	// Small groups come whole and cost no extra search.
	asked = nil
	got, err = memberValues(entryAttrs{{Name: "member", Values: all[:3]}}, "member", fetch)
	if err != nil || len(got) != 3 || asked != nil {
		t.Errorf("plain member: %v %v %q", got, err, asked)
	}
	// A failing fetch fails the sync rather than shrinking the group.
	if _, err := memberValues(first, "member", func(string) (entryAttrs, error) { return nil, errors.New("down") }); err == nil {
		t.Error("memberValues hid a failed range fetch")
	}
}

func TestMarks(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"", "5", "5"},
		{"5", "", "5"},
		{"99", "100", "100"},
		{"100", "99", "100"},
		{"20260101000000Z", "20251231235959Z", "20260101000000Z"},
		{"20251231235959Z", "20260101000000Z", "20260101000000Z"},
	} {
		if got := laterMark(tc.a, tc.b); got != tc.want {
			t.Errorf("laterMark(%q, %q) = %q", tc.a, tc.b, got)
		}
	}
}

func TestADExpiry(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "9223372036854775807": 0, "": 0, "x": 0,
		"133801632000000000": time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
	} {
		if got := adExpiry(in); got != want {
			t.Errorf("adExpiry(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestImageType(t *testing.T) {
	for in, want := range map[string]string{
		"\xff\xd8\xff\xe0JFIF":             "image/jpeg",
		"\x89PNG\r\n\x1a\n....":            "image/png",
		"GIF89a...":                        "image/gif",
		"RIFF\x00\x00\x00\x00WEBPVP8 ":     "image/webp",
		"<svg xmlns='http://www.w3.org'/>": "",
		"":                                 "",
	} {
		if got := imageType([]byte(in)); got != want {
			t.Errorf("imageType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	base := func() Config {
		c := Config{URLs: []string{"ldaps://dc1.corp.example"}, BaseDN: "dc=corp,dc=example", BindDN: "cn=x,dc=corp,dc=example", BindPassword: "p"}
		c.ApplyPreset(PresetActiveDirectory)
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   string // substring of the error; "" for none
	}{
		{"ok", func(c *Config) {}, ""},
		{"ok several", func(c *Config) { c.URLs = []string{"ldaps://a:636", "ldaps://b:3269"} }, ""},
		{"ok starttls", func(c *Config) { c.URLs, c.StartTLS = []string{"ldap://a"}, true }, ""},
		{"ok insecure", func(c *Config) { c.URLs, c.AllowInsecure = []string{"ldap://127.0.0.1:389"}, true }, ""},
		{"plain ldap", func(c *Config) { c.URLs = []string{"ldap://a"} }, "clear text"},
		{"starttls on ldaps", func(c *Config) { c.StartTLS = true }, "already TLS"},
		{"no url", func(c *Config) { c.URLs = nil }, "no directory URL"},
		{"bad scheme", func(c *Config) { c.URLs = []string{"https://a"} }, "ldaps:// or ldap://"},
		{"dn in url", func(c *Config) { c.URLs = []string{"ldaps://a/dc=corp,dc=example"} }, "only scheme://host[:port]"},
		{"no base", func(c *Config) { c.BaseDN = "" }, "no base DN"},
		{"bad base", func(c *Config) { c.BaseDN = "corp.example" }, "base DN"},
		{"bind without password", func(c *Config) { c.BindPassword = "" }, "without a password"},
		{"bad filter", func(c *Config) { c.UserFilter = "(objectClass=user" }, "user filter"},
		{"bad attribute", func(c *Config) { c.MailAttr = "mail address" }, "not an attribute name"},
		{"two usernames", func(c *Config) { c.UsernameAttr = "uid,cn" }, "only one attribute"},
		{"no preset", func(c *Config) { *c = Config{URLs: c.URLs, BaseDN: c.BaseDN} }, "apply a preset"},
		{"ca file", func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			_, err := c.check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	if err := (&Config{}).ApplyPreset("samba"); err == nil {
		t.Error("unknown preset accepted")
	}
	// A preset never overrides what is set.
	c := Config{UsernameAttr: "mail", AliasAttrs: []string{}}
	c.ApplyPreset(PresetOpenLDAP)
	if c.UsernameAttr != "mail" || c.AliasAttrs == nil || c.IDAttr != "entryUUID" {
		t.Errorf("ApplyPreset over set fields: %+v", c)
	}
}

// syntheticSnapshot builds a directory in memory: n users, user i in
// group i%groups, and everyone in "All".
func syntheticSnapshot(n, groups int) (*settings, []userRec, []groupRec) {
	return syntheticDirectory(n, groups, true)
}

func syntheticDirectory(n, groups int, all bool) (*settings, []userRec, []groupRec) {
	s := &settings{allGroups: true}
	users := make([]userRec, n)
	gs := make([]groupRec, groups+1)
	for g := range gs {
		gs[g] = groupRec{id: fmt.Sprintf("g%d", g), name: fmt.Sprintf("Group %d", g)}
		gs[g].dn = "cn=" + gs[g].name + ",dc=x"
		gs[g].ndn = normDN(gs[g].dn)
	}
	gs[groups].name = "All"
	for i := range users {
		name := fmt.Sprintf("user%06d", i)
		users[i] = userRec{id: fmt.Sprintf("u%d", i), dn: "uid=" + name + ",dc=x", raw: name, username: name,
			display: "User " + name, mail: name + "@corp.example"}
		users[i].ndn = normDN(users[i].dn)
		gs[i%groups].members = append(gs[i%groups].members, users[i].ndn)
		if all {
			gs[groups].members = append(gs[groups].members, users[i].ndn)
		}
	}
	return s, users, gs
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, users, groups := syntheticSnapshot(50, 3)
	users[0].aliases = []string{"a", "b"}
	users[1].disabled = true
	users[2].expires = 12345
	users[3].photo, users[3].photoTyp = "0123456789012345678901234567890123456789", "image/png"
	groups[0].uids = []string{"user000004"}
	users[5].pgroup, groups[1].sid = "S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-513"
	meta := snapMeta{url: "ldaps://a", userMark: "7", groupMark: "9",
		fullAt: time.Unix(100, 5).UTC(), syncedAt: time.Unix(200, 0).UTC()}
	sn := build(s, users, groups, meta, time.Now())
	u2, g2, m2, err := decodeSnapshot(encodeSnapshot(sn))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u2, sn.users) || !reflect.DeepEqual(g2, sn.groups) || m2 != meta {
		t.Errorf("round trip differs:\n%+v\n%+v\n%+v", u2[:2], sn.users[:2], m2)
	}
	sn2 := build(s, u2, g2, m2, time.Now())
	if !reflect.DeepEqual(sn2.people, sn.people) {
		t.Error("a reloaded snapshot indexes differently")
	}
	for _, bad := range [][]byte{nil, {2}, {1}, encodeSnapshot(sn)[:100], append(encodeSnapshot(sn), 0)} {
		if _, _, _, err := decodeSnapshot(bad); err == nil {
			t.Errorf("decodeSnapshot(%d bytes) accepted garbage", len(bad))
		}
	}
}

// FuzzDecodeSnapshot: a corrupt store record is an error, never a panic or
// a huge allocation.
func FuzzDecodeSnapshot(f *testing.F) {
	s, users, groups := syntheticSnapshot(2, 1) // small: minimizing new inputs stays quick
	f.Add(encodeSnapshot(build(s, users, groups, snapMeta{url: "x"}, time.Now())))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		users, groups, meta, err := decodeSnapshot(b)
		if err == nil {
			build(s, users, groups, meta, time.Now())
		}
	})
}

func FuzzNormDN(f *testing.F) {
	for _, s := range []string{"uid=a,dc=x", `cn=a\,b+sn=c, dc=x`, `cn="q",dc=x`, "#", `cn=#04024869`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		n := normDN(dn)
		if normDN(n) != n && !strings.ContainsAny(dn, `\"+#;<>`) {
			t.Errorf("normDN not idempotent on %q: %q then %q", dn, n, normDN(n))
		}
	})
}

func TestBER(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		tag  byte
		val  string
		rest string
		ok   bool
	}{
		{[]byte{0x04, 0x02, 'h', 'i', 'x'}, 0x04, "hi", "x", true},
		{[]byte{0x04, 0x81, 0x02, 'h', 'i'}, 0x04, "hi", "", true},
		{[]byte{0x04, 0x03, 'h', 'i'}, 0, "", "", false},
		{[]byte{0x04, 0x80}, 0, "", "", false},
		{[]byte{0x04}, 0, "", "", false},
	} {
		v, rest, ok := berTLV(tc.in)
		if ok != tc.ok || ok && (v.tag != tc.tag || string(v.value) != tc.val || string(rest) != tc.rest) {
			t.Errorf("berTLV(%x) = %x %q %q %v", tc.in, v.tag, v.value, rest, ok)
		}
	}

	// The hand-encoded StartTLS request is byte for byte go-ldap's.
	read := func(start func(c net.Conn)) []byte {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() { start(client); close(done) }()
		buf := make([]byte, 128)
		n, _ := server.Read(buf)
		server.Close()
		client.Close()
		<-done
		return buf[:n]
	}
	ours := read(func(c net.Conn) { startTLS(c) })
	theirs := read(func(c net.Conn) {
		l := ldap.NewConn(c, false)
		l.Start()
		l.StartTLS(&tls.Config{})
		l.Close()
	})
	if !bytes.Equal(ours, theirs) || len(ours) != 31 {
		t.Errorf("StartTLS request\n ours % x\ngo-ldap % x", ours, theirs)
	}
	// A refusal is an error naming the result code.
	client, server := net.Pipe()
	go func() {
		buf := make([]byte, 128)
		server.Read(buf)
		// protocolError (2) with a diagnostic
		server.Write([]byte{0x30, 0x0e, 0x02, 0x01, 0x01, 0x78, 0x09, 0x0a, 0x01, 0x02, 0x04, 0x00, 0x04, 0x02, 'n', 'o'})
	}()
	err := startTLS(client)
	client.Close()
	server.Close()
	if err == nil || !strings.Contains(err.Error(), "LDAP result 2") || !strings.Contains(err.Error(), `"no"`) {
		t.Errorf("refused StartTLS: %v", err)
	}
}

func TestDiffSynthetic(t *testing.T) {
	s, users, groups := syntheticSnapshot(12, 3)
	prev := build(s, slices.Clone(users), slices.Clone(groups), snapMeta{}, time.Now())
	if df := diff(prev, prev); !df.Empty() || df.Summary != "no changes" {
		t.Errorf("diff with itself: %+v", df)
	}
	// user 0 expires, user 1 is renamed, user 2 changes title, user 3
	// leaves group 0 (group 0's rosters change), user 4 is deleted.
	u := slices.Clone(users)
	u[0].expires = 1
	u[1].username, u[1].raw = "renamed", "renamed"
	u[2].title = "Boss"
	u = append(u[:4], u[5:]...)
	g := slices.Clone(groups)
	g[0].members = slices.DeleteFunc(slices.Clone(g[0].members), func(m string) bool { return m == users[3].ndn })
	next := build(s, u, g, snapMeta{}, time.Now())
	df := diff(prev, next)
	want := Diff{
		Removed: []string{"user000004"}, Disabled: []string{"user000000"},
		Renamed: []Rename{{From: "user000001", To: "renamed"}}, Changed: []string{"user000002"},
		// Everyone is in All, which lost members: every roster changed.
		// Groups 0 (lost users 0 and 3), 1 (lost user 4) and All changed;
		// group 2 only saw a title change.
		RosterChanged: []string{"user000002", "user000003", "user000005", "user000006", "user000007",
			"user000008", "user000009", "user000010", "user000011"},
		Regrouped:    []string{"user000003"}, // left group 0
		LeaverGroups: map[string][]string{"user000000": {"All", "Group 0"}, "user000004": {"All", "Group 1"}},
		Summary:      "users +0 -2 ~1 (disabled 1, renamed 1), groups ~3, 9 rosters changed",
	}
	if !reflect.DeepEqual(df, want) {
		t.Errorf("diff\n got %+v\nwant %+v", df, want)
	}
}
