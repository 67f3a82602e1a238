package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

// mucDirConfig binds rooms to the fixture company's groups: "legal" to
// Legal (jmueller, erin), the auto room "sales" to Sales (carol, dave,
// grace); only Legal members and the admin alice may create rooms.
const mucDirConfig = `
[muc]
create_rooms = ["group:Legal", "admins"]
admins = ["alice@` + domain + `"]
[[muc.room]]
name = "legal"
title = "Legal team"
members_groups = ["Legal"]
[[muc.auto_room]]
name = "sales"
group = "Sales"
`

const (
	legalRoom = "legal@conference." + domain
	salesRoom = "sales@conference." + domain
	legalDN   = "cn=Legal,ou=Groups," + slapdtest.Suffix
)

// startMUCDirServer is startLDAPServer with the [muc] section above.
func startMUCDirServer(t *testing.T, dir *slapdtest.Server) *ldapServer {
	t.Helper()
	tmp := t.TempDir()
	ls := &ldapServer{dir: dir, C2S: FreePort(), DataDir: filepath.Join(tmp, "data"), Config: filepath.Join(tmp, "xmppd.toml")}
	secret := filepath.Join(tmp, "ldap.secret")
	if err := os.WriteFile(secret, []byte(slapdtest.ServicePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ldapConfigText(ls.DataDir, secret, ls.C2S, FreePort(), dir.URL, slapdtest.Suffix) + mucDirConfig
	if err := os.WriteFile(ls.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ls.Xmppd = StartXmppd(t, ls.Config)
	return ls
}

// bookmarked reports whether s's XEP-0048 bookmarks hold room with autojoin.
func bookmarked(t *testing.T, s *Slix, room string) bool {
	t.Helper()
	ev := s.MustDo(t, map[string]any{"cmd": "private_get", "ns": "storage:bookmarks", "name": "storage"})
	x := ev.Str("xml")
	i := strings.Index(x, room)
	if i < 0 {
		return false
	}
	end := strings.Index(x[i:], ">")
	tag := x[strings.LastIndex(x[:i], "<"):][:i-strings.LastIndex(x[:i], "<")+end]
	return strings.Contains(tag, `autojoin="true"`) || strings.Contains(tag, "autojoin='true'")
}

// eventually retries cond until it holds or ldapSyncWait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ldapSyncWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, ldapSyncWait)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func joinRoom(t *testing.T, s *Slix, room, nick string) (Event, string) {
	t.Helper()
	ev, err := s.Do(map[string]any{"cmd": "muc_join", "room": room, "nick": nick})
	if err != nil {
		if ce, ok := err.(*CommandError); ok {
			return nil, ce.Condition
		}
		t.Fatalf("%s joining %s: %v", s.Opts.JID, room, err)
	}
	return ev, ""
}

// TestMUCDirectoryBound runs the xmppd binary against slapd: a room bound
// to a group and an auto room follow the directory, members get the room
// in their bookmarks, a member who leaves the group is removed (321), and
// the creation policy refuses others.
func TestMUCDirectoryBound(t *testing.T) {
	requireSlixmpp(t)
	dir := slapdtest.Start(t, slapdtest.Options{})
	ls := startMUCDirServer(t, dir)
	c := ls.online(t, "erin", "carol", "alice")
	erin, carol, alice := c[0], c[1], c[2]

	t.Run("members have the bound room in their bookmarks", func(t *testing.T) {
		if !bookmarked(t, erin, legalRoom) {
			t.Error("erin (Legal) has no autojoin bookmark of the legal room")
		}
		if !bookmarked(t, carol, salesRoom) || bookmarked(t, carol, legalRoom) {
			t.Error("carol (Sales) should have the sales room bookmarked, not legal")
		}
	})

	t.Run("auto room has the group's members", func(t *testing.T) {
		ev := alice.MustDo(t, map[string]any{"cmd": "muc_affiliations", "room": salesRoom, "affiliation": "member"})
		got := strings.Join(ev.Strings("jids"), " ")
		for _, u := range []string{"carol", "dave", "grace"} {
			if !strings.Contains(got, u+"@"+domain) {
				t.Errorf("sales members %q lack %s", got, u)
			}
		}
		if t.Failed() {
			t.Logf("affiliations answer: %v", ev)
		}
	})

	t.Run("creation policy", func(t *testing.T) {
		if _, cond := joinRoom(t, carol, "carols-room@conference."+domain, "Carol"); cond != "not-allowed" {
			t.Errorf("carol (not in Legal) creating a room: %q, want not-allowed", cond)
		}
	})

	if _, cond := joinRoom(t, carol, legalRoom, "Carol"); cond != "registration-required" {
		t.Fatalf("carol joining the members-only legal room: %q, want registration-required", cond)
	}
	if _, cond := joinRoom(t, erin, legalRoom, "Erin"); cond != "" {
		t.Fatalf("erin joining legal: %s", cond)
	}

	t.Run("joining the group makes a member", func(t *testing.T) {
		dir.AddMember(legalDN, "uid=carol,ou=People,"+slapdtest.Suffix)
		if _, errOut, code := runXmppd(t, "ctl", "-config", ls.Config, "sync"); code != 0 {
			t.Fatalf("ctl sync: %d %s", code, errOut)
		}
		eventually(t, "carol gets the legal bookmark", func() bool { return bookmarked(t, carol, legalRoom) })
		if _, cond := joinRoom(t, carol, legalRoom, "Carol"); cond != "" {
			t.Errorf("carol joining legal after joining the group: %s", cond)
		}
	})

	t.Run("leaving the group removes with 321", func(t *testing.T) {
		dir.Modify(legalDN, func(r *ldap.ModifyRequest) {
			r.Delete("member", []string{"uid=erin,ou=People," + slapdtest.Suffix})
		})
		if _, errOut, code := runXmppd(t, "ctl", "-config", ls.Config, "sync"); code != 0 {
			t.Fatalf("ctl sync: %d %s", code, errOut)
		}
		erin.Expect(t, mucPresence(legalRoom+"/Erin", "unavailable", "321", "110"), ldapSyncWait)
		eventually(t, "erin loses the legal bookmark", func() bool { return !bookmarked(t, erin, legalRoom) })
		if _, cond := joinRoom(t, erin, legalRoom, "Erin"); cond != "registration-required" {
			t.Errorf("erin rejoining legal after leaving the group: %q, want registration-required", cond)
		}
	})
}
