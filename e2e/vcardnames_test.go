package e2e

import (
	"regexp"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

// vcardElement cuts the <vCard/> out of a vcard_get answer's IQ, to send
// it back as a client that edits what it got would.
var vcardElement = regexp.MustCompile(`(?s)<vCard[ >].*</vCard>`)

// expectDirectoryRefusal checks that a vcard_set was refused with
// <not-allowed/> naming the directory.
func expectDirectoryRefusal(t *testing.T, what string, err error) {
	t.Helper()
	if ce, ok := err.(*CommandError); !ok || ce.Condition != "not-allowed" || !strings.Contains(ce.Text, "directory") {
		t.Errorf("%s: %v, want not-allowed naming the directory", what, err)
	}
}

// TestDirectoryVCardNamesLDAP: with the LDAP directory the vCard's N
// (sn, givenName) and NICKNAME (the given name) are the directory's and
// read-only, compared as whole elements: a client that sends back the
// vCard it got, plus a field of its own, is accepted; a changed N or
// NICKNAME is refused; a change in the directory shows after a sync.
func TestDirectoryVCardNamesLDAP(t *testing.T) {
	requireSlixmpp(t)
	dir := slapdtest.Start(t, slapdtest.Options{})
	c2s := FreePort()
	cfg, dataDir := acc4Config(t, acc4Dir{URLs: []string{dir.URL}, AllowInsecure: true, SyncInterval: "1h"}, c2s, FreePort())
	x := StartXmppd(t, cfg)
	ls := &ldapServer{Xmppd: x, dir: dir, C2S: c2s, DataDir: dataDir, Config: cfg}
	c := ls.online(t, "alice", "bob")
	alice, bob := c[0], c[1]

	own := alice.MustDo(t, map[string]any{"cmd": "vcard_get"}).Str("xml")
	card := vcardElement.FindString(own)
	if card == "" || !strings.Contains(card, "<FAMILY>Andersen</FAMILY>") || !strings.Contains(card, "<GIVEN>Alice</GIVEN>") ||
		!strings.Contains(card, "<NICKNAME>Alice</NICKNAME>") {
		t.Fatalf("alice's own vCard has no N/NICKNAME from the directory: %s", own)
	}

	t.Run("sent back unchanged with a field of the user's own", func(t *testing.T) {
		back := strings.Replace(card, "</vCard>", "<DESC>Ask me about LDAP</DESC></vCard>", 1)
		if _, err := alice.Do(map[string]any{"cmd": "vcard_set", "xml": back}); err != nil {
			t.Fatalf("alice sends back her vCard unchanged (plus DESC): %v\n%s", err, back)
		}
		xml := bob.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": ldapBare("alice")}).Str("xml")
		if got, _ := vcardField(xml, "DESC", ""); got != "Ask me about LDAP" {
			t.Errorf("alice's own DESC was not kept: %s", xml)
		}
		if n := strings.Count(xml, "<N>"); n != 1 {
			t.Errorf("%d N elements in alice's vCard, want 1: %s", n, xml)
		}
	})

	t.Run("changed N refused", func(t *testing.T) {
		for what, changed := range map[string]string{
			"another FAMILY":   strings.Replace(card, "<FAMILY>Andersen</FAMILY>", "<FAMILY>Smith</FAMILY>", 1),
			"GIVEN left out":   strings.Replace(card, "<GIVEN>Alice</GIVEN>", "", 1),
			"a MIDDLE added":   strings.Replace(card, "<GIVEN>Alice</GIVEN>", "<GIVEN>Alice</GIVEN><MIDDLE>Q</MIDDLE>", 1),
			"another NICKNAME": strings.Replace(card, "<NICKNAME>Alice</NICKNAME>", "<NICKNAME>Ali</NICKNAME>", 1),
		} {
			if changed == card {
				t.Fatalf("%s: the test did not change the vCard", what)
			}
			_, err := alice.Do(map[string]any{"cmd": "vcard_set", "xml": changed})
			expectDirectoryRefusal(t, what, err)
		}
		xml := bob.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": ldapBare("alice")}).Str("xml")
		if got, _ := vcardField(xml, "N", "FAMILY"); got != "Andersen" {
			t.Errorf("alice's FAMILY after the refused changes: %q", got)
		}
		if got, _ := vcardField(xml, "NICKNAME", ""); got != "Alice" {
			t.Errorf("alice's NICKNAME after the refused changes: %q", got)
		}
	})

	t.Run("a directory change shows after a sync", func(t *testing.T) {
		dir.Modify("uid=alice,"+slapdtest.People, func(r *ldap.ModifyRequest) {
			r.Replace("givenName", []string{"Alicia"})
			r.Replace("sn", []string{"Andersson"})
		})
		if out, errOut, code := runXmppd(t, "ctl", "-config", cfg, "sync"); code != 0 || !strings.Contains(out, "~1") {
			t.Fatalf("xmppd ctl sync: exit %d\n%s%s", code, out, errOut)
		}
		xml := bob.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": ldapBare("alice")}).Str("xml")
		for _, f := range []struct{ name, child, want string }{
			{"N", "FAMILY", "Andersson"}, {"N", "GIVEN", "Alicia"}, {"NICKNAME", "", "Alicia"},
		} {
			if got, _ := vcardField(xml, f.name, f.child); got != f.want {
				t.Errorf("after the sync %s %s = %q, want %q\n%s", f.name, f.child, got, f.want, xml)
			}
		}
		if got, _ := vcardField(xml, "DESC", ""); got != "Ask me about LDAP" {
			t.Errorf("alice's own DESC lost at the sync: %s", xml)
		}
	})
}

// TestDirectoryVCardNamesStatic: [[directory.user]] given_name, surname
// and nickname make the same N and NICKNAME as LDAP, read-only; users
// without them keep every field their own.
func TestDirectoryVCardNamesStatic(t *testing.T) {
	requireSlixmpp(t)
	cs := startCore(t, `[[directory.user]]
name = "erin"
password = "erin-pw"
display_name = "Erin Evans"
given_name = "Erin"
surname = "Evans"
nickname = "Rin"
`)
	erin, _ := cs.login(t, "erin", "")
	alice, _ := cs.login(t, "alice", "")

	xml := alice.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": "erin@" + domain}).Str("xml")
	for _, f := range []struct{ name, child, want string }{
		{"N", "FAMILY", "Evans"}, {"N", "GIVEN", "Erin"}, {"NICKNAME", "", "Rin"},
	} {
		if got, _ := vcardField(xml, f.name, f.child); got != f.want {
			t.Errorf("erin's %s %s = %q, want %q\n%s", f.name, f.child, got, f.want, xml)
		}
	}

	// FN stays hers to set; N and NICKNAME come along unchanged.
	card := vcardElement.FindString(erin.MustDo(t, map[string]any{"cmd": "vcard_get"}).Str("xml"))
	back := strings.Replace(card, "</vCard>", "<FN>Erin E.</FN></vCard>", 1)
	if _, err := erin.Do(map[string]any{"cmd": "vcard_set", "xml": back}); err != nil {
		t.Fatalf("erin sets FN with N and NICKNAME unchanged: %v\n%s", err, back)
	}
	_, err := erin.Do(map[string]any{"cmd": "vcard_set", "fields": map[string]string{"NICKNAME": "E"}})
	expectDirectoryRefusal(t, "erin changes NICKNAME", err)
	got := alice.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": "erin@" + domain}).Map("fields")
	if got.Str("FN") != "Erin E." || got.Str("NICKNAME") != "Rin" {
		t.Errorf("erin's vCard: %v", got)
	}

	// A user without configured names sets NICKNAME freely.
	alice.MustDo(t, map[string]any{"cmd": "vcard_set", "fields": map[string]string{"NICKNAME": "ali"}})
	if got := erin.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": "alice@" + domain}).Map("fields"); got.Str("NICKNAME") != "ali" {
		t.Errorf("alice's NICKNAME: %v", got)
	}
}
