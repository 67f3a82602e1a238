package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

// startDirectoryServer is startLDAPServer with the [directory] keys of
// issue 4's leftovers: only Legal is a roster group, "members of Sales
// see members of Legal", and search by name, email and department.
func startDirectoryServer(t *testing.T, dir *slapdtest.Server) *ldapServer {
	t.Helper()
	tmp := t.TempDir()
	ls := &ldapServer{dir: dir, C2S: FreePort(), DataDir: filepath.Join(tmp, "data"), Config: filepath.Join(tmp, "xmppd.toml")}
	secret := filepath.Join(tmp, "ldap.secret")
	if err := os.WriteFile(secret, []byte(slapdtest.ServicePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ldapConfigText(ls.DataDir, secret, ls.C2S, FreePort(), dir.URL, slapdtest.Suffix)
	if !strings.Contains(cfg, `roster_groups = ["*"]`) {
		t.Fatal("ldapConfigText changed: adapt startDirectoryServer")
	}
	cfg = strings.Replace(cfg, `roster_groups = ["*"]`, `roster_groups = ["Legal"]`, 1)
	cfg += `search_fields = ["name", "email", "department"]
[[directory.roster_rule]]
group = "Sales"
sees = ["Legal"]
`
	if err := os.WriteFile(ls.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ls.Xmppd = StartXmppd(t, ls.Config)
	return ls
}

// TestDirectoryLeftovers runs the xmppd binary against slapd with the
// fixture company and slixmpp clients: "Sales sees Legal" rosters with
// presence both ways, XEP-0055 search from the snapshot, and a rename in
// the directory that moves the user's stored data.
func TestDirectoryLeftovers(t *testing.T) {
	requireSlixmpp(t)
	dir := slapdtest.Start(t, slapdtest.Options{})
	ls := startDirectoryServer(t, dir)
	// carol is in Sales, erin in Legal.
	c := ls.online(t, "carol", "erin")
	carol, erin := c[0], c[1]

	t.Run("Sales sees Legal", func(t *testing.T) {
		r := carol.MustDo(t, map[string]any{"cmd": "roster_get"})
		for _, u := range []string{"erin", "jmueller"} {
			if it := ldapItem(r["items"], u); it == nil || it.Str("subscription") != "both" || !slices.Equal(it.Strings("groups"), []string{"Legal"}) {
				t.Errorf("carol's roster: %s is %v, want both, group Legal", u, it)
			}
		}
		// Sales is not a roster group: carol does not see her own team.
		for _, u := range []string{"dave", "grace", "alice"} {
			if it := ldapItem(r["items"], u); it != nil {
				t.Errorf("carol's roster holds %s: %v", u, it)
			}
		}
		r = erin.MustDo(t, map[string]any{"cmd": "roster_get"})
		want := map[string]string{"carol": "Sales", "dave": "Sales", "grace": "Sales", "jmueller": "Legal"}
		for u, g := range want {
			if it := ldapItem(r["items"], u); it == nil || it.Str("subscription") != "both" || !slices.Equal(it.Strings("groups"), []string{g}) {
				t.Errorf("erin's roster: %s is %v, want both, group %s", u, it, g)
			}
		}
		// Presence flows both ways.
		carol.Expect(t, presenceFrom(erin.JID, "available"), eventTimeout)
		erin.Expect(t, presenceFrom(carol.JID, "available"), eventTimeout)
	})

	search := "directory." + domain
	t.Run("search service discovered", func(t *testing.T) {
		items := carol.MustDo(t, map[string]any{"cmd": "disco_items", "jid": domain})
		found := false
		for _, it := range items["items"].([]any) {
			found = found || it.(map[string]any)["jid"] == search
		}
		if !found {
			t.Fatalf("%s not in the domain's disco#items: %v", search, items["items"])
		}
		info := carol.MustDo(t, map[string]any{"cmd": "disco_info", "jid": search})
		ids, _ := info["identities"].([]any)
		if len(ids) != 1 || ids[0].(map[string]any)["category"] != "directory" || ids[0].(map[string]any)["type"] != "user" {
			t.Errorf("identities %v, want directory/user", ids)
		}
		if !slices.Contains(info.Strings("features"), "jabber:iq:search") {
			t.Errorf("features %v", info["features"])
		}
	})

	t.Run("search", func(t *testing.T) {
		form := carol.MustDo(t, map[string]any{"cmd": "search", "jid": search})
		if got := form.Strings("form_fields"); !slices.Equal(got, []string{"FORM_TYPE", "name", "email", "department"}) {
			t.Errorf("form fields %v", got)
		}
		if !strings.Contains(form.Str("instructions"), "50") {
			t.Errorf("instructions %q do not state the limit", form.Str("instructions"))
		}
		res := carol.MustDo(t, map[string]any{"cmd": "search", "jid": search, "fields": map[string]string{"name": "MÜLL"}})
		if got := res.Strings("reported"); !slices.Equal(got, []string{"jid", "name", "email", "department"}) {
			t.Errorf("reported %v: title is not configured, so never shown", got)
		}
		items, _ := res["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("items %v", items)
		}
		it := Event(items[0].(map[string]any))
		if it.Str("jid") != ldapBare("jmueller") || it.Str("name") != "Jürgen Müller" ||
			it.Str("email") != "juergen.mueller@corp.example" || it.Str("department") != "Legal" {
			t.Errorf("item %v", it)
		}
		res = carol.MustDo(t, map[string]any{"cmd": "search", "jid": search, "fields": map[string]string{"department": "engineering"}})
		var got []string
		for _, it := range res["items"].([]any) {
			got = append(got, it.(map[string]any)["jid"].(string))
		}
		// frank is locked; JSmith logs in as jsmith.
		if want := []string{ldapBare("alice"), ldapBare("bob"), ldapBare("jsmith")}; !slices.Equal(got, want) {
			t.Errorf("department engineering: %v, want %v", got, want)
		}
		_, err := carol.Do(map[string]any{"cmd": "search", "jid": search, "fields": map[string]string{"title": "CTO"}})
		if ce, ok := err.(*CommandError); !ok || ce.Condition != "not-acceptable" {
			t.Errorf("searching by title (not configured): %v, want not-acceptable", err)
		}
	})

	t.Run("rename moves stored data", func(t *testing.T) {
		// A personal roster item and an offline message for grace.
		carol.MustDo(t, map[string]any{"cmd": "roster_set", "jid": ldapBare("grace"), "name": "Gracie"})
		carol.Expect(t, Is("roster_push"), eventTimeout)
		carol.MustDo(t, map[string]any{"cmd": "send", "to": ldapBare("grace"), "body": "see you under your new name"})

		dir.Rename("uid=grace,"+slapdtest.People, "uid=ghopper")
		deadline := time.Now().Add(ldapSyncWait)
		for !strings.Contains(ls.Output(), "stored data moved") {
			if time.Now().After(deadline) {
				t.Fatalf("no rename applied within %v:\n%s", ldapSyncWait, ls.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
		r := carol.MustDo(t, map[string]any{"cmd": "roster_get"})
		if it := ldapItem(r["items"], "ghopper"); it == nil || it.Str("name") != "Gracie" {
			t.Errorf("carol's item for ghopper: %v\n%v", it, r["items"])
		}
		if it := ldapItem(r["items"], "grace"); it != nil {
			t.Errorf("carol still has grace: %v", it)
		}
		gh := ls.connect(t, "ghopper", "grace-secret")
		gh.WaitSession(t)
		gh.MustDo(t, map[string]any{"cmd": "presence"})
		gh.Expect(t, Is("message", "body", "see you under your new name"), eventTimeout)
	})
}
