package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

// ldapSyncInterval is the smallest sync_interval the configuration allows.
const ldapSyncInterval = time.Second

// ldapSyncWait bounds how long a directory change may take to reach the
// clients: two sync intervals (the change may land just after a sync
// started) plus the slack of a race-built server and Python clients.
const ldapSyncWait = 2*ldapSyncInterval + 3*time.Second

// ldapServer is an xmppd whose accounts come from a slapd loaded with the
// ldapsync fixture company (ldapsync/testdata/corp.ldif).
type ldapServer struct {
	*Xmppd
	dir     *slapdtest.Server
	C2S     int
	DataDir string
	Config  string
}

// ldapConfigText is an xmppd config with backend "ldap" against dir:
// the openldap preset, in clear on loopback, as the fixture's service
// account, every group a shared-roster group.
func ldapConfigText(dataDir, passwordFile string, c2s, http int, url, baseDN string) string {
	return fmt.Sprintf(`
domain = %q
data_dir = %q
log_level = "debug"
[listen]
c2s = "127.0.0.1:%d"
http = "127.0.0.1:%d"
[limits]
auth_failure_delay = "10ms"
[directory]
backend = "ldap"
preset = "openldap"
url = %q
allow_insecure = true
bind_dn = %q
bind_password_file = %q
base_dn = %q
roster_groups = ["*"]
sync_interval = %q
dial_timeout = "1s"
request_timeout = "5s"
`, domain, dataDir, c2s, http, url, slapdtest.ServiceDN, passwordFile, baseDN, ldapSyncInterval.String())
}

// startLDAPServer writes the config and starts xmppd; StartXmppd returns
// once /healthz says 200, which with LDAP means the first sync is done.
func startLDAPServer(t *testing.T, dir *slapdtest.Server) *ldapServer {
	t.Helper()
	tmp := t.TempDir()
	ls := &ldapServer{dir: dir, C2S: FreePort(), DataDir: filepath.Join(tmp, "data"), Config: filepath.Join(tmp, "xmppd.toml")}
	secret := filepath.Join(tmp, "ldap.secret")
	if err := os.WriteFile(secret, []byte(slapdtest.ServicePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ldapConfigText(ls.DataDir, secret, ls.C2S, FreePort(), dir.URL, slapdtest.Suffix)
	if err := os.WriteFile(ls.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ls.Xmppd = StartXmppd(t, ls.Config)
	return ls
}

// connect starts a client for user with PLAIN over STARTTLS (with LDAP the
// server has no SCRAM credentials) and does not wait for the session.
func (ls *ldapServer) connect(t *testing.T, user, password string) *Slix {
	t.Helper()
	return StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: password, Port: ls.C2S,
		Mech: "PLAIN", NoVerify: true, Resource: "e2e"})
}

// online logs the users in (concurrently: each client is a Python start),
// fetches each roster, which subscribes the session to roster pushes
// (RFC 6121 §2.1.6), and sends available presence. Passwords are the
// fixture's "<uid>-secret".
func (ls *ldapServer) online(t *testing.T, users ...string) []*Slix {
	t.Helper()
	clients := make([]*Slix, len(users))
	for i, u := range users {
		clients[i] = ls.connect(t, u, u+"-secret")
	}
	for i, s := range clients {
		ev := s.WaitSession(t)
		if want := users[i] + "@" + domain + "/e2e"; ev.Str("jid") != want || ev["tls"] != true || ev.Str("mech") != "PLAIN" {
			t.Fatalf("%s: session %v, want %s with PLAIN over TLS", users[i], ev, want)
		}
		if m := ev.Strings("mechs_offered"); !slices.Equal(m, []string{"PLAIN"}) {
			t.Errorf("%s: mechanisms offered %v, want only PLAIN (no SCRAM secrets with LDAP)", users[i], m)
		}
	}
	for _, s := range clients {
		s.MustDo(t, map[string]any{"cmd": "roster_get"})
		s.MustDo(t, map[string]any{"cmd": "presence"})
	}
	return clients
}

// refused expects the login to fail with condition (RFC 6120 §6.5).
func (ls *ldapServer) refused(t *testing.T, user, password, condition string) {
	t.Helper()
	s := ls.connect(t, user, password)
	ev := s.Expect(t, func(e Event) bool {
		return e.Name() == "auth_failed" || e.Name() == "session_start"
	}, eventTimeout)
	if ev.Name() != "auth_failed" || ev.Str("condition") != condition {
		t.Errorf("login %s with %q: %v, want auth_failed %s", user, password, ev, condition)
	}
}

func ldapBare(user string) string { return user + "@" + domain }

// ldapItem returns user's item in a roster_get result or roster push.
func ldapItem(items any, user string) Event { return rosterItem(items, ldapBare(user)) }

// expectPush waits for a roster push carrying user's item that satisfies ok.
func expectPush(t *testing.T, s *Slix, user string, ok func(item Event) bool) Event {
	t.Helper()
	got := false
	defer func() { // Expect's failure names neither the push nor the contact
		if !got {
			t.Logf("%s: no roster push of %s as expected within %v", s.Opts.JID, user, ldapSyncWait)
		}
	}()
	ev := s.Expect(t, func(e Event) bool {
		it := ldapItem(e["items"], user)
		return e.Name() == "roster_push" && it != nil && ok(it)
	}, ldapSyncWait)
	got = true
	return ldapItem(ev["items"], user)
}

// colleague matches a shared-roster item: both, with name and group.
func colleague(name, group string) func(Event) bool {
	return func(it Event) bool {
		return it.Str("subscription") == "both" && it.Str("name") == name && slices.Contains(it.Strings("groups"), group)
	}
}

func removed(it Event) bool { return it.Str("subscription") == "remove" }

// presenceFrom matches a presence from the full JID of type typ.
func presenceFrom(jid, typ string) func(Event) bool {
	return func(e Event) bool { return e.Name() == "presence" && e.Str("from") == jid && e.Str("type") == typ }
}

// runXmppd runs the xmppd binary with args and returns stdout, stderr and
// the exit code.
func runXmppd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(xmppdBinary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("xmppd %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// TestLDAPDirectory runs the xmppd binary against a real OpenLDAP server
// (slapd with the ldapsync fixture company) and real clients: logins bind
// live, rosters come from directory groups, and changes made in the
// directory reach the online sessions within two sync intervals.
func TestLDAPDirectory(t *testing.T) {
	requireSlixmpp(t)
	dir := slapdtest.Start(t, slapdtest.Options{})
	ls := startLDAPServer(t, dir)
	// Legal: jmueller (umlauts in the DN and names) and erin. Everyone in
	// Engineering, Sales and Legal also shares the nested "All Staff".
	c := ls.online(t, "jmueller", "erin")
	jm, erin := c[0], c[1]

	t.Run("shared roster from groups", func(t *testing.T) {
		for _, tc := range []struct {
			s          *Slix
			other      string
			name       string
			notVisible []string
		}{
			{jm, "erin", "Erin Evans", []string{"frank", "ivan", "heidi"}},
			{erin, "jmueller", "Jürgen Müller", []string{"frank", "ivan"}},
		} {
			r := tc.s.MustDo(t, map[string]any{"cmd": "roster_get"})
			it := ldapItem(r["items"], tc.other)
			if it == nil || !colleague(tc.name, "Legal")(it) || !slices.Contains(it.Strings("groups"), "All Staff") {
				t.Errorf("%s's roster: %s is %v, want %q, subscription both, groups Legal and All Staff\n%v",
					tc.s.Opts.JID, tc.other, it, tc.name, r["items"])
			}
			if it := ldapItem(r["items"], "alice"); it == nil || !colleague("Alice Andersen", "All Staff")(it) {
				t.Errorf("%s's roster: alice (nested All Staff) is %v", tc.s.Opts.JID, it)
			}
			for _, u := range tc.notVisible { // locked; no shared group; invalid name
				if it := ldapItem(r["items"], u); it != nil {
					t.Errorf("%s's roster holds %s: %v", tc.s.Opts.JID, u, it)
				}
			}
		}
		// online sent both presences after both sessions existed.
		jm.Expect(t, presenceFrom(erin.JID, "available"), eventTimeout)
		erin.Expect(t, presenceFrom(jm.JID, "available"), eventTimeout)
		jm.MustDo(t, map[string]any{"cmd": "send", "to": ldapBare("erin"), "body": "Grüße aus der Rechtsabteilung"})
		erin.Expect(t, Is("message", "from", jm.JID, "body", "Grüße aus der Rechtsabteilung"), eventTimeout)
	})

	t.Run("refused logins", func(t *testing.T) {
		ls.refused(t, "jmueller", "wrong-password", "not-authorized")
		ls.refused(t, "frank", "frank-secret", "not-authorized") // ppolicy-locked
		ls.refused(t, "mallory", "mallory-secret", "not-authorized")
		ls.refused(t, "jmueller", "", "not-authorized") // never an unauthenticated bind
	})

	t.Run("xmppd ctl sync", func(t *testing.T) {
		out, errOut, code := runXmppd(t, "ctl", "-config", ls.Config, "sync")
		if code != 0 || !regexp.MustCompile(`^sync done: (no changes|users \+\d+ -\d+.*rosters changed)\n$`).MatchString(out) {
			t.Errorf("xmppd ctl sync: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})

	t.Run("xmppd check", func(t *testing.T) {
		out, errOut, code := runXmppd(t, "check", "-config", ls.Config)
		for _, want := range []string{
			"directory " + dir.URL + ": ok\n",
			"read from " + dir.URL + " as " + slapdtest.ServiceDN + "\n",
			// alice bob JSmith jmueller carol dave erin frank grace
			// heidi@home ivan; frank locked, heidi@home not a localpart.
			"users: 11 (2 cannot log in, of which 1 disabled); groups: 8",
			"sample uid=alice," + slapdtest.People + "\n  username \"alice\", display name \"Alice Andersen\"",
			`"heidi@home" (username is not a valid XMPP localpart)`, // listed, not fatal
			"OK: domain " + domain + ", LDAP directory",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("xmppd check output lacks %q", want)
			}
		}
		if code != 0 || t.Failed() {
			t.Errorf("xmppd check: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}

		// A wrong base DN is explained with the naming context the server has.
		tmp := t.TempDir()
		secret := filepath.Join(tmp, "ldap.secret")
		if err := os.WriteFile(secret, []byte(slapdtest.ServicePassword), 0o600); err != nil {
			t.Fatal(err)
		}
		bad := WriteConfig(t, ldapConfigText(filepath.Join(tmp, "data"), secret, FreePort(), FreePort(), dir.URL, "dc=wrong,dc=example"))
		out, errOut, code = runXmppd(t, "check", "-config", bad)
		want := `base_dn "dc=wrong,dc=example" does not exist on ` + dir.URL + "; it holds: " + slapdtest.Suffix
		if code != 1 || !strings.Contains(out+errOut, want) || !strings.Contains(errOut, "configuration is NOT valid") {
			t.Errorf("xmppd check with a wrong base_dn: exit %d, want 1 and %q\nstdout:\n%s\nstderr:\n%s", code, want, out, errOut)
		}
	})

	// ivan is only in the posixGroup ops (with jsmith); he joins Legal,
	// and through it the nested All Staff: everyone's new colleague.
	c = ls.online(t, "ivan")
	ivan := c[0]
	t.Run("added to a group", func(t *testing.T) {
		if it := ldapItem(ivan.MustDo(t, map[string]any{"cmd": "roster_get"})["items"], "jsmith"); it == nil || !colleague("John Smith", "ops")(it) {
			t.Fatalf("ivan's roster: jsmith is %v, want John Smith in ops", it)
		}
		jm.Never(t, presenceFrom(ivan.JID, "available"), 300*time.Millisecond) // not a colleague yet

		start := time.Now()
		dir.AddMember("cn=Legal,"+slapdtest.Groups, "uid=ivan,"+slapdtest.People)
		for _, s := range []*Slix{jm, erin} {
			expectPush(t, s, "ivan", colleague("Ivan Ivanov", "Legal")) // no displayName: cn
			s.Expect(t, presenceFrom(ivan.JID, "available"), ldapSyncWait)
		}
		t.Logf("group change reached the rosters in %v", time.Since(start).Round(time.Millisecond))
		expectPush(t, ivan, "jmueller", colleague("Jürgen Müller", "Legal"))
		ivan.Expect(t, presenceFrom(jm.JID, "available"), ldapSyncWait)
		ivan.MustDo(t, map[string]any{"cmd": "send", "to": ldapBare("erin"), "body": "hallo Kollegin"})
		erin.Expect(t, Is("message", "from", ivan.JID, "body", "hallo Kollegin"), eventTimeout)
	})

	t.Run("locked and deleted users are gone", func(t *testing.T) {
		c := ls.online(t, "carol", "dave") // Sales
		carol, dave := c[0], c[1]
		dave.Expect(t, presenceFrom(carol.JID, "available"), eventTimeout)

		start := time.Now()
		dir.Lock("uid=erin," + slapdtest.People)
		dir.Delete("uid=carol," + slapdtest.People)
		for _, gone := range []*Slix{erin, carol} {
			ev := gone.Expect(t, Is("stream_error"), ldapSyncWait)
			if ev.Str("condition") != "not-authorized" {
				t.Errorf("%s: stream error %v, want not-authorized", gone.Opts.JID, ev)
			}
			gone.Expect(t, Is("disconnected"), eventTimeout)
		}
		t.Logf("sessions of the locked and the deleted user ended after %v", time.Since(start).Round(time.Millisecond))
		for _, tc := range []struct {
			s    *Slix
			user string
			gone *Slix
		}{{jm, "erin", erin}, {ivan, "erin", erin}, {dave, "carol", carol}} {
			expectPush(t, tc.s, tc.user, removed)
			tc.s.Expect(t, presenceFrom(tc.gone.JID, "unavailable"), eventTimeout)
		}
		ls.refused(t, "erin", "erin-secret", "not-authorized")
		ls.refused(t, "carol", "carol-secret", "not-authorized")
		if it := ldapItem(jm.MustDo(t, map[string]any{"cmd": "roster_get"})["items"], "erin"); it != nil {
			t.Errorf("jmueller's roster still holds erin: %v", it)
		}
		// What happens to a leaver's data is on record for compliance.
		out, errOut, code := runXmppd(t, "ctl", "-config", ls.Config, "audit", "list")
		if code != 0 {
			t.Fatalf("audit list: exit %d: %s", code, errOut)
		}
		for _, want := range []string{"directory: user removed", ldapBare("carol") + ": sessions closed", "directory: user disabled", ldapBare("erin") + ": sessions closed", "archive of"} {
			if !strings.Contains(out, want) {
				t.Errorf("audit list lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("directory down", func(t *testing.T) {
		dir.Stop()
		// Failed syncs leave the snapshot, the rosters and the sessions.
		ls.refused(t, "alice", "alice-secret", "temporary-auth-failure")
		jm.MustDo(t, map[string]any{"cmd": "send", "to": ldapBare("ivan"), "body": "LDAP ist weg"})
		ivan.Expect(t, Is("message", "from", jm.JID, "body", "LDAP ist weg"), eventTimeout)
		jm.Never(t, Is("stream_error"), 2*ldapSyncInterval)
		if it := ldapItem(jm.MustDo(t, map[string]any{"cmd": "roster_get"})["items"], "ivan"); it == nil {
			t.Errorf("ivan left jmueller's roster while the directory is down")
		}
		resp, err := http.Get("http://" + ls.HTTPAddr + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz with the directory down: %v %v, want 200 (the snapshot serves)", resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
		// The outage is visible to monitoring.
		if resp, err := http.Get("http://" + ls.HTTPAddr + "/metrics"); err != nil {
			t.Errorf("/metrics: %v", err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{"xmppd_directory_users ", "xmppd_directory_sync_failures_total ",
				"xmppd_directory_logins_unavailable_total 1", "xmppd_directory_last_sync_timestamp_seconds "} {
				if !strings.Contains(string(body), want) {
					t.Errorf("/metrics lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(string(body), "xmppd_directory_sync_failures_total 0\n") {
				t.Errorf("/metrics counts no failed sync while the directory is down")
			}
		}

		dir.Start()
		s := ls.connect(t, "alice", "alice-secret")
		if ev := s.WaitSession(t); ev.Str("jid") != ldapBare("alice")+"/e2e" {
			t.Errorf("login after the directory came back: %v", ev)
		}
		ivan.MustDo(t, map[string]any{"cmd": "ping", "jid": jm.JID})
	})
}
