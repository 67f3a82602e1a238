package xmppd

import (
	"strings"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// privateChild returns the stored element of a jabber:iq:private result.
func privateChild(t *testing.T, el *wire.Element) *wire.Element {
	t.Helper()
	requireResult(t, "private get", el)
	q := el.Child(nsPrivate, "query")
	if q == nil {
		t.Fatalf("no query in %s", el)
	}
	n, first := childElements(q)
	if n != 1 {
		t.Fatalf("want one stored element in %s", el)
	}
	return first
}

const bookmarks = `<storage xmlns='storage:bookmarks'><conference jid='team@conference.example.com' autojoin='true' name='Team &amp; co'><nick>Al</nick></conference></storage>`

// TestPrivateStorage covers XEP-0049 §3.
func TestPrivateStorage(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	bob := ts.login(t, "bob", "b")

	// Nothing stored: the empty element comes back.
	got := privateChild(t, alice.iq("get", "", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`))
	if got.Space != "storage:bookmarks" || got.Local != "storage" || len(got.Nodes) != 0 {
		t.Fatalf("empty get returned %s", got)
	}

	requireResult(t, "set", alice.iq("set", "", `<query xmlns='jabber:iq:private'>`+bookmarks+`</query>`))
	// Another session of the same user reads it; to the own bare JID too.
	a2 := ts.login(t, "alice", "a2")
	for _, to := range []string{"", "alice@example.com"} {
		got = privateChild(t, a2.iq("get", to, `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`))
		conf := got.Child("storage:bookmarks", "conference")
		if conf == nil || conf.Attr("name") != "Team & co" || conf.Child("storage:bookmarks", "nick").Text() != "Al" {
			t.Fatalf("get returned %s", got)
		}
	}
	// Other users have their own documents under the same name.
	got = privateChild(t, bob.iq("get", "", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`))
	if len(got.Nodes) != 0 {
		t.Fatalf("bob sees alice's bookmarks: %s", got)
	}
	// Keyed by qualified name: another element of another namespace.
	requireResult(t, "set prefs", alice.iq("set", "", `<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs></query>`))
	got = privateChild(t, alice.iq("get", "", `<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>`))
	if got.Child("urn:example:prefs", "theme").Text() != "dark" {
		t.Fatalf("prefs %s", got)
	}
	if got = privateChild(t, alice.iq("get", "", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`)); got.Child("storage:bookmarks", "conference") == nil {
		t.Fatal("the bookmarks were overwritten by another document")
	}
	// A set replaces.
	requireResult(t, "replace", alice.iq("set", "", `<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><theme>light</theme></prefs></query>`))
	got = privateChild(t, alice.iq("get", "", `<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>`))
	if got.Child("urn:example:prefs", "theme").Text() != "light" {
		t.Fatalf("after replace %s", got)
	}

	// Prefixes, also ones declared on an ancestor, are stored as
	// self-contained XML.
	requireResult(t, "prefixed", alice.iq("set", "", `<query xmlns='jabber:iq:private' xmlns:p='urn:example:p'><p:data><p:x>1</p:x></p:data></query>`))
	got = privateChild(t, alice.iq("get", "", `<query xmlns='jabber:iq:private'><data xmlns='urn:example:p'/></query>`))
	if x := got.Child("urn:example:p", "x"); got.Space != "urn:example:p" || x == nil || x.Text() != "1" {
		t.Fatalf("prefixed document came back as %s", got)
	}

	for _, tt := range []struct {
		name, typ, to, payload, cond string
	}{
		{"no child", "get", "", `<query xmlns='jabber:iq:private'/>`, "not-acceptable"},
		{"two children", "set", "", `<query xmlns='jabber:iq:private'><a xmlns='urn:x'/><b xmlns='urn:x'/></query>`, "not-acceptable"},
		{"jabber: namespace", "set", "", `<query xmlns='jabber:iq:private'><query xmlns='jabber:iq:roster'/></query>`, "not-acceptable"},
		{"http://jabber.org/ namespace", "get", "", `<query xmlns='jabber:iq:private'><x xmlns='http://jabber.org/protocol/muc'/></query>`, "not-acceptable"},
		{"vcard-temp", "set", "", `<query xmlns='jabber:iq:private'><vCard xmlns='vcard-temp'/></query>`, "not-acceptable"},
		{"the query namespace itself", "set", "", `<query xmlns='jabber:iq:private'><query/></query>`, "not-acceptable"},
		{"another user's", "get", "bob@example.com", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`, "forbidden"},
		{"another user's set", "set", "bob@example.com", `<query xmlns='jabber:iq:private'>` + bookmarks + `</query>`, "forbidden"},
		{"wrong element", "get", "", `<private xmlns='jabber:iq:private'><a xmlns='urn:x'/></private>`, "bad-request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requireError(t, tt.name, alice.iq(tt.typ, tt.to, tt.payload), tt.cond)
		})
	}
	if got = privateChild(t, bob.iq("get", "", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`)); len(got.Nodes) != 0 {
		t.Fatal("alice's set reached bob's storage")
	}
}

func TestPrivateStorageLimit(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxPrivateBytes = 100 })
	alice := ts.login(t, "alice", "a")
	requireResult(t, "small", alice.iq("set", "", `<query xmlns='jabber:iq:private'><p xmlns='urn:x'>small</p></query>`))
	big := `<query xmlns='jabber:iq:private'><p xmlns='urn:x'>` + strings.Repeat("y", 100) + `</p></query>`
	requireError(t, "too large", alice.iq("set", "", big), "not-acceptable")
	got := privateChild(t, alice.iq("get", "", `<query xmlns='jabber:iq:private'><p xmlns='urn:x'/></query>`))
	if got.Text() != "small" {
		t.Fatalf("the refused set changed the document: %s", got)
	}
}

func TestCanonicalXML(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<a xmlns='urn:a'><b>t</b></a>`, `<a xmlns="urn:a"><b>t</b></a>`},
		{`<p:a xmlns:p='urn:a'><p:b/><c xmlns='urn:c'/></p:a>`, `<a xmlns="urn:a"><b/><c xmlns="urn:c"/></a>`},
		{`<a xmlns='urn:a' xml:lang='en' k='&lt;v&gt;'>x &amp; y</a>`, `<a xmlns="urn:a" xml:lang="en" k="&lt;v&gt;">x &amp; y</a>`},
	}
	for _, tt := range tests {
		in := parseTestElement(t, tt.in)
		got, err := canonicalXML(in, 1<<10)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		// Compare parsed trees, not quoting styles.
		if g, w := parseTestElement(t, string(got)).String(), parseTestElement(t, tt.want).String(); g != w {
			t.Errorf("canonical(%s) = %s, want %s", tt.in, g, w)
		}
	}
	if _, err := canonicalXML(parseTestElement(t, `<a xmlns='urn:a'>`+strings.Repeat("x", 100)+`</a>`), 50); err != errTooLarge {
		t.Errorf("too large: %v", err)
	}
}

func parseTestElement(t *testing.T, s string) *wire.Element {
	t.Helper()
	el, err := wire.ParseElement([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}
