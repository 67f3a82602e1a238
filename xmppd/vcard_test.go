package xmppd

import (
	"strings"
	"sync"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

const vcardGet = `<vCard xmlns='vcard-temp'/>`

// vcardOf returns the <vCard/> of a result.
func vcardOf(t *testing.T, el *wire.Element) *wire.Element {
	t.Helper()
	requireResult(t, "vCard get", el)
	v := el.Child(nsVCard, "vCard")
	if v == nil {
		t.Fatalf("no vCard in %s", el)
	}
	return v
}

// vcardField returns the trimmed text of the first field name, "" if absent.
func vcardField(v *wire.Element, name string) string {
	if f := v.Child(nsVCard, name); f != nil {
		return strings.TrimSpace(f.Text())
	}
	return ""
}

// TestVCard covers XEP-0054 §3 without directory fields.
func TestVCard(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	bob := ts.login(t, "bob", "b")

	// No vCard yet: the user gets an empty one, others the same error as
	// for an unknown user (§3.3).
	if v := vcardOf(t, alice.iq("get", "", vcardGet)); len(v.Nodes) != 0 {
		t.Fatalf("empty vCard: %s", v)
	}
	requireError(t, "no vCard", bob.iq("get", "alice@example.com", vcardGet), "service-unavailable")
	requireError(t, "unknown user", bob.iq("get", "nobody@example.com", vcardGet), "service-unavailable")

	photo := strings.Repeat("QUJD", 2000) // a PHOTO makes vCards big
	set := `<vCard xmlns='vcard-temp'><FN>Alice A.</FN><N><FAMILY>Anderson</FAMILY><GIVEN>Alice</GIVEN></N><NICKNAME>ali</NICKNAME>` +
		`<PHOTO><TYPE>image/png</TYPE><BINVAL>` + photo + `</BINVAL></PHOTO></vCard>`
	requireResult(t, "set", alice.iq("set", "", set))
	for _, c := range []struct {
		who *client
		to  string
	}{{alice, ""}, {alice, "alice@example.com"}, {bob, "alice@example.com"}, {bob, "Alice@Example.com"}} {
		el := c.who.iq("get", c.to, vcardGet)
		v := vcardOf(t, el)
		if vcardField(v, "FN") != "Alice A." || vcardField(v, "NICKNAME") != "ali" ||
			v.Child(nsVCard, "N").Child(nsVCard, "GIVEN").Text() != "Alice" ||
			v.Child(nsVCard, "PHOTO").Child(nsVCard, "BINVAL").Text() != photo {
			t.Fatalf("%s get %q: %s", c.who.name, c.to, el)
		}
		if c.to != "" && el.Attr("from") != c.to {
			t.Errorf("answered from %q, want %q (§3.3: the server answers for the account)", el.Attr("from"), c.to)
		}
	}
	requireError(t, "set another's", bob.iq("set", "alice@example.com", `<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>`), "forbidden")
	if v := vcardOf(t, bob.iq("get", "alice@example.com", vcardGet)); vcardField(v, "FN") != "Alice A." {
		t.Fatal("bob changed alice's vCard")
	}
	// The domain has no vCard; it cannot be set.
	requireError(t, "domain vCard", alice.iq("get", testDomain, vcardGet), "item-not-found")
	requireError(t, "set domain vCard", alice.iq("set", testDomain, vcardGet), "forbidden")
	requireError(t, "not a vCard", alice.iq("get", "", `<vcard xmlns='vcard-temp'/>`), "bad-request")

	// An empty vCard deletes.
	requireResult(t, "clear", alice.iq("set", "", vcardGet))
	requireError(t, "cleared vCard", bob.iq("get", "alice@example.com", vcardGet), "service-unavailable")
	if b, _ := ts.Store.VCard("alice"); b != nil {
		t.Errorf("cleared vCard still stored: %s", b)
	}
}

func TestVCardLimit(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxVCardBytes = 200 })
	alice := ts.login(t, "alice", "a")
	requireResult(t, "small", alice.iq("set", "", `<vCard xmlns='vcard-temp'><FN>A</FN></vCard>`))
	requireError(t, "big", alice.iq("set", "", `<vCard xmlns='vcard-temp'><FN>`+strings.Repeat("A", 200)+`</FN></vCard>`), "not-acceptable")
	if v := vcardOf(t, alice.iq("get", "", vcardGet)); vcardField(v, "FN") != "A" {
		t.Fatalf("refused set changed the vCard: %s", v)
	}
}

// dirVCard is a VCardFields hook with a changeable directory.
type dirVCard struct {
	mu sync.Mutex
	fn map[string]string
}

func (d *dirVCard) fields(user string) *wire.Element {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn, ok := d.fn[user]
	if !ok {
		return nil
	}
	v := elem(nsVCard, "vCard")
	v.Add(elem(nsVCard, "FN").AddText(fn))
	email := elem(nsVCard, "EMAIL")
	email.Add(elem(nsVCard, "INTERNET"), elem(nsVCard, "USERID").AddText(user+"@corp.example"))
	v.Add(email)
	return v
}

func (d *dirVCard) set(user, fn string) {
	d.mu.Lock()
	d.fn[user] = fn
	d.mu.Unlock()
}

// TestVCardDirectoryFields: fields from Server.VCardFields are merged into
// every vCard, are not stored, and cannot be changed by the user.
func TestVCardDirectoryFields(t *testing.T) {
	dir := &dirVCard{fn: map[string]string{"alice": "Alice Anderson"}}
	ts := newTestServer(t, func(s *Server) { s.VCardFields = dir.fields })
	alice := ts.login(t, "alice", "a")
	bob := ts.login(t, "bob", "b")

	check := func(c *client, to, fn, nick string) {
		t.Helper()
		v := vcardOf(t, c.iq("get", to, vcardGet))
		email := v.Child(nsVCard, "EMAIL")
		if vcardField(v, "FN") != fn || vcardField(v, "NICKNAME") != nick || email == nil ||
			email.Child(nsVCard, "USERID").Text() != "alice@corp.example" || len(fieldsNamed(v, "FN")) != 1 {
			t.Fatalf("%s: vCard %s, want FN %q NICKNAME %q and the directory EMAIL", c.name, v, fn, nick)
		}
	}
	// Nothing stored: the directory's fields alone, for everyone.
	check(alice, "", "Alice Anderson", "")
	check(bob, "alice@example.com", "Alice Anderson", "")

	// Sending back what it got plus a nickname is fine (pretty-printed).
	requireResult(t, "set with unchanged directory fields", alice.iq("set", "",
		`<vCard xmlns='vcard-temp'>
		   <FN> Alice Anderson </FN>
		   <EMAIL><INTERNET/><USERID>alice@corp.example</USERID></EMAIL>
		   <NICKNAME>ali</NICKNAME>
		 </vCard>`))
	check(bob, "alice@example.com", "Alice Anderson", "ali")
	if b, _ := ts.Store.VCard("alice"); strings.Contains(string(b), "FN") || strings.Contains(string(b), "corp.example") {
		t.Errorf("directory fields were stored: %s", b)
	}
	// Leaving them out is fine too.
	requireResult(t, "set without directory fields", alice.iq("set", "", `<vCard xmlns='vcard-temp'><NICKNAME>al</NICKNAME></vCard>`))
	check(alice, "", "Alice Anderson", "al")

	// Changing one is not.
	for name, v := range map[string]string{
		"FN":    `<vCard xmlns='vcard-temp'><FN>Queen Alice</FN><NICKNAME>q</NICKNAME></vCard>`,
		"EMAIL": `<vCard xmlns='vcard-temp'><EMAIL><INTERNET/><USERID>alice@home.example</USERID></EMAIL></vCard>`,
		"two":   `<vCard xmlns='vcard-temp'><FN>Alice Anderson</FN><FN>Alice</FN></vCard>`,
	} {
		requireError(t, "change "+name, alice.iq("set", "", v), "not-allowed")
	}
	check(bob, "alice@example.com", "Alice Anderson", "al")

	// The directory stays the source: a change there shows at once.
	dir.set("alice", "Alice Anderson-Smith")
	check(bob, "alice@example.com", "Alice Anderson-Smith", "al")

	// Users without directory fields are unaffected.
	requireResult(t, "bob's own vCard", bob.iq("set", "", `<vCard xmlns='vcard-temp'><FN>Bobby</FN></vCard>`))
	if v := vcardOf(t, alice.iq("get", "bob@example.com", vcardGet)); vcardField(v, "FN") != "Bobby" {
		t.Errorf("bob's vCard %s", v)
	}
}

// TestVCardDisco: vcard-temp is advertised by the domain and by accounts
// (XEP-0054 §4).
func TestVCardDisco(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	for _, to := range []string{testDomain, "alice@example.com", "bob@example.com"} {
		el := requireResult(t, "disco "+to, alice.iq("get", to, `<query xmlns='`+nsDiscoInfo+`'/>`))
		found := false
		for _, n := range el.Child(nsDiscoInfo, "query").Nodes {
			if n.El != nil && n.El.Local == "feature" && n.El.Attr("var") == nsVCard {
				found = true
			}
		}
		if !found {
			t.Errorf("disco#info of %s lacks vcard-temp: %s", to, el)
		}
	}
}
