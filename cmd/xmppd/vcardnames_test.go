package main

import (
	"testing"

	"github.com/ownchat/ownchat/staticdir"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// TestAddNames: N carries FAMILY before GIVEN (the XEP-0054 DTD's order),
// each only when known; no N without either; NICKNAME only when known.
func TestAddNames(t *testing.T) {
	for _, tc := range []struct {
		given, surname, nick string
		want                 string
	}{
		{"Alice", "Andersen", "Alice", `<vCard xmlns='vcard-temp'><N><FAMILY>Andersen</FAMILY><GIVEN>Alice</GIVEN></N><NICKNAME>Alice</NICKNAME></vCard>`},
		{"", "Becker", "", `<vCard xmlns='vcard-temp'><N><FAMILY>Becker</FAMILY></N></vCard>`},
		{"Jürgen", "", "", `<vCard xmlns='vcard-temp'><N><GIVEN>Jürgen</GIVEN></N></vCard>`},
		{"", "", "J & J", `<vCard xmlns='vcard-temp'><NICKNAME>J &amp; J</NICKNAME></vCard>`},
		{"", "", "", `<vCard xmlns='vcard-temp'/>`},
	} {
		v := &wire.Element{Space: "vcard-temp", Local: "vCard", Attrs: []wire.Attr{{Name: "xmlns", Value: "vcard-temp"}}}
		addNames(v, tc.given, tc.surname, tc.nick)
		got := v.String()
		if got != tc.want {
			t.Errorf("addNames(%q, %q, %q) = %s\nwant %s", tc.given, tc.surname, tc.nick, got, tc.want)
		}
	}
}

// TestStaticVCard: the static directory owns N and NICKNAME of the users
// with names configured, nothing of the others, and no field at all when
// nobody has names (then users keep their whole vCard, as before).
func TestStaticVCard(t *testing.T) {
	d, err := staticdir.New([]staticdir.User{
		{Name: "anna", Password: "x", DisplayName: "Anna Berg", GivenName: "Anna", Surname: "Berg"},
		{Name: "bob", Password: "x", DisplayName: "Bob"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := staticVCard(d)
	if f == nil {
		t.Fatal("no vCard fields with names configured")
	}
	want := `<vCard xmlns='vcard-temp'><N><FAMILY>Berg</FAMILY><GIVEN>Anna</GIVEN></N><NICKNAME>Anna</NICKNAME></vCard>`
	if got := f("anna"); got == nil || got.String() != want {
		t.Errorf("anna: %v, want %s", got, want)
	}
	for _, u := range []string{"bob", "nobody"} {
		if got := f(u); got != nil {
			t.Errorf("%s: %s, want nil", u, got)
		}
	}

	d, err = staticdir.New([]staticdir.User{{Name: "bob", Password: "x", DisplayName: "Bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if f := staticVCard(d); f != nil {
		t.Error("vCard fields without any names configured")
	}
}
