package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

// TestParkedSessionDisabledInDirectory: a user whose client has just lost
// its connection (the session parked for XEP-0198 resumption, window 5
// minutes by default) is disabled in the directory; the sync that sees it
// ends the parked session, so the colleague sees them go offline with that
// sync rather than when the resumption window passes.
func TestParkedSessionDisabledInDirectory(t *testing.T) {
	requireSlixmpp(t)
	dir := slapdtest.Start(t, slapdtest.Options{})
	// Only the initial sync and `xmppd ctl sync` run during the test: the
	// change can reach the colleague through no other sync.
	tmp := t.TempDir()
	ls := &ldapServer{dir: dir, C2S: FreePort(), DataDir: filepath.Join(tmp, "data"), Config: filepath.Join(tmp, "xmppd.toml")}
	secret := filepath.Join(tmp, "ldap.secret")
	if err := os.WriteFile(secret, []byte(slapdtest.ServicePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ldapConfigText(ls.DataDir, secret, ls.C2S, FreePort(), dir.URL, slapdtest.Suffix)
	interval := `sync_interval = "` + ldapSyncInterval.String() + `"`
	if !strings.Contains(cfg, interval) {
		t.Fatalf("ldapConfigText has no %s", interval)
	}
	cfg = strings.Replace(cfg, interval, `sync_interval = "1h"`, 1)
	if err := os.WriteFile(ls.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ls.Xmppd = StartXmppd(t, ls.Config)

	// carol and dave share Sales.
	dave := ls.online(t, "dave")[0]
	carol := StartSlix(t, SlixOptions{JID: ldapBare("carol"), Password: "carol-secret", Port: ls.C2S,
		Mech: "PLAIN", NoVerify: true, Resource: "phone", Plugins: []string{"xep_0198"}})
	carol.WaitSession(t)
	if en := carol.Expect(t, Is("sm_enabled"), eventTimeout); en.Str("id") == "" || en["resume"] != true {
		t.Fatalf("sm_enabled %v: want a resumable session", en)
	}
	carol.MustDo(t, map[string]any{"cmd": "roster_get"})
	carol.MustDo(t, map[string]any{"cmd": "presence"})
	dave.Expect(t, presenceFrom(carol.JID, "available"), eventTimeout)

	// The connection is lost without </stream:stream>; the client would
	// come back (and try to resume) only in an hour.
	carol.MustDo(t, map[string]any{"cmd": "drop", "delay": 3600})
	carol.Expect(t, Is("dropped"), eventTimeout)
	parked := regexp.MustCompile(`session detached; resumable.*` + regexp.QuoteMeta(carol.JID))
	eventually(t, "the server to park carol's session", func() bool { return parked.MatchString(ls.Output()) })
	dave.Never(t, presenceFrom(carol.JID, "unavailable"), 0) // parked: still available
	if out := ls.sessions(t); !strings.Contains(out, carol.JID) {
		t.Fatalf("xmppd ctl sessions does not list the parked session %s:\n%s", carol.JID, out)
	}

	dir.Lock("uid=carol," + slapdtest.People)
	out, errOut, code := runXmppd(t, "ctl", "-config", ls.Config, "sync")
	if code != 0 || !strings.Contains(out, "sync done:") {
		t.Fatalf("xmppd ctl sync: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// The sync answers after it applied its changes: the parked session
	// is over now, not when its window passes.
	if out := ls.sessions(t); strings.Contains(out, ldapBare("carol")) {
		t.Fatalf("carol's parked session outlived the sync that disabled her:\n%s", out)
	}
	// Sent while that sync ran: eventTimeout covers only the delivery, and
	// is far below the five-minute resumption window.
	dave.Expect(t, presenceFrom(carol.JID, "unavailable"), eventTimeout)
	ls.refused(t, "carol", "carol-secret", "not-authorized")
}

// sessions is the output of `xmppd ctl sessions`: the bound sessions,
// parked ones included.
func (ls *ldapServer) sessions(t *testing.T) string {
	t.Helper()
	out, errOut, code := runXmppd(t, "ctl", "-config", ls.Config, "sessions")
	if code != 0 {
		t.Fatalf("xmppd ctl sessions: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	return out
}
