package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const domain = "ownchat.test"

// coreServer describes an xmppd started for a test.
type coreServer struct {
	*Xmppd
	C2S, DirectTLS int
	DataDir        string
	Config         string
}

// coreConfig is the static-directory config used by the core suite:
// alice and bob share "Engineering"; carol and dave are in no group.
func coreConfig(dataDir string, c2s, direct, http int, extraUsers string) string {
	return fmt.Sprintf(`
domain = %q
data_dir = %q
log_level = "debug"
[listen]
c2s = "127.0.0.1:%d"
c2s_direct_tls = "127.0.0.1:%d"
http = "127.0.0.1:%d"
[limits]
auth_failure_delay = "10ms"
[directory]
backend = "static"
[[directory.user]]
name = "alice"
password = "alice-pw"
display_name = "Alice Anders"
groups = ["Engineering"]
[[directory.user]]
name = "Bob"
password = "bob-pw"
display_name = "Bob Brenner"
groups = ["Engineering"]
[[directory.user]]
name = "carol"
password = "carol-pw"
display_name = "Carol Clark"
[[directory.user]]
name = "dave"
password = "dave-pw"
display_name = "Dave Dörfler"
%s`, domain, dataDir, c2s, direct, http, extraUsers)
}

func startCore(t *testing.T, extraUsers string) *coreServer {
	t.Helper()
	dir := t.TempDir()
	cs := &coreServer{C2S: FreePort(), DirectTLS: FreePort(), DataDir: filepath.Join(dir, "data")}
	cs.Config = filepath.Join(dir, "xmppd.toml")
	if err := os.WriteFile(cs.Config, []byte(coreConfig(cs.DataDir, cs.C2S, cs.DirectTLS, FreePort(), extraUsers)), 0o600); err != nil {
		t.Fatal(err)
	}
	cs.Xmppd = StartXmppd(t, cs.Config)
	return cs
}

func (cs *coreServer) login(t *testing.T, user, mech string) (*Slix, Event) {
	t.Helper()
	s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: strings.ToLower(user) + "-pw",
		Port: cs.C2S, Mech: mech, NoVerify: true, Resource: "e2e"})
	return s, s.WaitSession(t)
}

func bye(t *testing.T, s *Slix) {
	t.Helper()
	s.MustDo(t, map[string]any{"cmd": "disconnect"})
	s.Expect(t, Is("disconnected"), eventTimeout)
}

// TestCoreSASL logs in with each mechanism over STARTTLS and direct TLS,
// and checks that wrong passwords get <not-authorized/>.
func TestCoreSASL(t *testing.T) {
	cs := startCore(t, "")
	t.Run("mechanisms", func(t *testing.T) {
		_, ev := cs.login(t, "alice", "")
		offered := ev.Strings("mechs_offered")
		slices.Sort(offered)
		if !slices.Equal(offered, []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"}) {
			t.Fatalf("offered %v, want exactly PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 (no -PLUS)", offered)
		}
		for _, mech := range offered {
			// "Bob" is configured with a capital B: logins are case-folded (RFC 7622).
			for _, user := range []string{"alice", "BOB"} {
				s, ev := cs.login(t, user, mech)
				want := strings.ToLower(user) + "@" + domain + "/e2e"
				if ev.Str("mech") != mech || ev["tls"] != true || ev.Str("jid") != want {
					t.Errorf("%s with %s: session %v, want jid %s over TLS", user, mech, ev, want)
				}
				bye(t, s)
			}
		}
	})
	t.Run("direct tls verified", func(t *testing.T) {
		s := StartSlix(t, SlixOptions{JID: "carol@" + domain, Password: "carol-pw", Port: cs.DirectTLS,
			DirectTLS: true, CAFile: filepath.Join(cs.DataDir, "selfsigned-cert.pem"), Mech: "SCRAM-SHA-256"})
		ev := s.WaitSession(t)
		if ev["tls"] != true || ev.Str("mech") != "SCRAM-SHA-256" {
			t.Errorf("session %v", ev)
		}
	})
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"} {
		t.Run("wrong password "+mech, func(t *testing.T) {
			s := StartSlix(t, SlixOptions{JID: "alice@" + domain, Password: "nope", Port: cs.C2S, Mech: mech, NoVerify: true})
			ev := s.Expect(t, Is("auth_failed"), eventTimeout)
			if ev.Str("condition") != "not-authorized" {
				t.Errorf("auth_failed %v, want not-authorized (RFC 6120 §6.5.10)", ev)
			}
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		s := StartSlix(t, SlixOptions{JID: "mallory@" + domain, Password: "x", Port: cs.C2S, Mech: "SCRAM-SHA-256", NoVerify: true})
		if ev := s.Expect(t, Is("auth_failed"), eventTimeout); ev.Str("condition") != "not-authorized" {
			t.Errorf("auth_failed %v", ev)
		}
	})
}

// TestCoreIM covers the shared roster, subscriptions, presence, messages,
// client-to-client IQs, offline delivery and discovery with real clients.
func TestCoreIM(t *testing.T) {
	cs := startCore(t, "")
	alice, _ := cs.login(t, "alice", "SCRAM-SHA-1")
	bob, _ := cs.login(t, "bob", "PLAIN")
	aliceBare, bobBare := "alice@"+domain, "bob@"+domain

	t.Run("shared roster", func(t *testing.T) {
		roster := alice.MustDo(t, map[string]any{"cmd": "roster_get"})
		it := rosterItem(roster["items"], bobBare)
		if it == nil || it.Str("subscription") != "both" || it.Str("name") != "Bob Brenner" ||
			!slices.Equal(it.Strings("groups"), []string{"Engineering"}) {
			t.Fatalf("alice's roster %v: want bob (Bob Brenner, Engineering, both)", roster["items"])
		}
		if rosterItem(roster["items"], "carol@"+domain) != nil {
			t.Errorf("carol is in no shared group but appears in alice's roster: %v", roster["items"])
		}
	})

	t.Run("presence between colleagues", func(t *testing.T) {
		bob.MustDo(t, map[string]any{"cmd": "roster_get"})
		alice.MustDo(t, map[string]any{"cmd": "presence", "status": "here"})
		bob.MustDo(t, map[string]any{"cmd": "presence", "show": "chat", "priority": 5})
		alice.Expect(t, func(e Event) bool {
			return e.Name() == "presence" && e.Str("from") == bob.JID && e.Str("show") == "chat"
		}, eventTimeout)
		bob.Expect(t, func(e Event) bool {
			return e.Name() == "presence" && e.Str("from") == alice.JID && e.Str("status") == "here"
		}, eventTimeout)
	})

	t.Run("messages", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bob.JID, "body": "hi bob"})
		msg := bob.Expect(t, Is("message", "body", "hi bob"), eventTimeout)
		if msg.Str("from") != alice.JID || msg.Str("type") != "chat" || msg["delay"] != nil {
			t.Errorf("bob got %v", msg)
		}
		bob.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "hi alice ✓ <&>", "stanza_id": "m-1"})
		msg = alice.Expect(t, Is("message", "body", "hi alice ✓ <&>"), eventTimeout)
		if msg.Str("from") != bob.JID || msg.Str("id") != "m-1" {
			t.Errorf("alice got %v", msg)
		}
		_, err := alice.Do(map[string]any{"cmd": "raw_iq", "xml": "<iq type='get' to='nobody@" + domain + "/x'><ping xmlns='urn:xmpp:ping'/></iq>"})
		if ce, ok := err.(*CommandError); !ok || ce.Condition != "service-unavailable" {
			t.Errorf("iq to a nonexistent user: %v, want service-unavailable", err)
		}
	})

	t.Run("client to client iq", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "ping", "jid": bob.JID})
		bob.Expect(t, Is("iq", "type", "get", "from", alice.JID), eventTimeout)
	})

	t.Run("subscription flow", func(t *testing.T) {
		carol, _ := cs.login(t, "carol", "")
		dave, _ := cs.login(t, "dave", "")
		carolBare, daveBare := "carol@"+domain, "dave@"+domain
		for _, s := range []*Slix{carol, dave} {
			s.MustDo(t, map[string]any{"cmd": "roster_get"})
			s.MustDo(t, map[string]any{"cmd": "presence"})
		}
		subscribe := func(from, to *Slix, fromBare, toBare string) {
			t.Helper()
			from.MustDo(t, map[string]any{"cmd": "presence", "type": "subscribe", "to": toBare})
			to.Expect(t, Is("presence", "type", "subscribe", "from", fromBare), eventTimeout)
			to.MustDo(t, map[string]any{"cmd": "presence", "type": "subscribed", "to": fromBare})
			from.Expect(t, Is("presence", "type", "subscribed", "from", toBare), eventTimeout)
			from.Expect(t, func(e Event) bool {
				return e.Name() == "presence" && e.Str("type") == "available" && bare(e.Str("from")) == toBare
			}, eventTimeout)
		}
		subscribe(carol, dave, carolBare, daveBare)
		roster := carol.MustDo(t, map[string]any{"cmd": "roster_get"})
		if it := rosterItem(roster["items"], daveBare); it == nil || it.Str("subscription") != "to" {
			t.Fatalf("carol's roster %v, want dave subscription=to", roster["items"])
		}
		subscribe(dave, carol, daveBare, carolBare)
		for _, c := range []struct {
			s       *Slix
			contact string
		}{{carol, daveBare}, {dave, carolBare}} {
			roster := c.s.MustDo(t, map[string]any{"cmd": "roster_get"})
			if it := rosterItem(roster["items"], c.contact); it == nil || it.Str("subscription") != "both" {
				t.Errorf("%s roster %v, want %s subscription=both", c.s.JID, roster["items"], c.contact)
			}
		}
		// Roster removal cancels both directions (RFC 6121 §2.5.2).
		carol.MustDo(t, map[string]any{"cmd": "roster_remove", "jid": daveBare})
		carol.Expect(t, func(e Event) bool {
			it := rosterItem(e["items"], daveBare)
			return e.Name() == "roster_push" && it != nil && it.Str("subscription") == "remove"
		}, eventTimeout)
		dave.Expect(t, func(e Event) bool {
			it := rosterItem(e["items"], carolBare)
			return e.Name() == "roster_push" && it != nil && it.Str("subscription") == "none"
		}, eventTimeout)
	})

	t.Run("offline delivery", func(t *testing.T) {
		bye(t, bob)
		alice.Expect(t, Is("presence", "type", "unavailable", "from", bob.JID), eventTimeout)
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bobBare, "body": "while you were away"})
		alice.MustDo(t, map[string]any{"cmd": "wait", "seconds": 0.2})
		bob2, _ := cs.login(t, "bob", "SCRAM-SHA-256")
		bob2.MustDo(t, map[string]any{"cmd": "presence"})
		msg := bob2.Expect(t, Is("message", "body", "while you were away"), eventTimeout)
		if _, err := time.Parse(time.RFC3339, msg.Str("delay")); err != nil {
			t.Errorf("offline message delay stamp %q: %v (XEP-0203)", msg.Str("delay"), err)
		}
		bye(t, bob2)
		bob3, _ := cs.login(t, "bob", "")
		bob3.MustDo(t, map[string]any{"cmd": "presence"})
		bob3.Never(t, Is("message", "body", "while you were away"), time.Second)
	})

	t.Run("discovery", func(t *testing.T) {
		info := alice.MustDo(t, map[string]any{"cmd": "disco_info", "jid": domain})
		ids, _ := info["identities"].([]any)
		if !slices.ContainsFunc(ids, func(v any) bool {
			id, _ := v.(map[string]any)
			return Event(id).Str("category") == "server" && Event(id).Str("type") == "im"
		}) {
			t.Errorf("disco#info identities %v, want server/im", ids)
		}
		got := info.Strings("features")
		slices.Sort(got)
		want := []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
			"jabber:iq:last", "jabber:iq:version", "msgoffline", "urn:xmpp:blocking", "urn:xmpp:carbons:2", "urn:xmpp:ping", "urn:xmpp:sid:0", "urn:xmpp:time", "vcard-temp"}
		if !slices.Equal(got, want) {
			t.Errorf("disco#info features %v, want exactly %v (advertise what works)", got, want)
		}
		alice.MustDo(t, map[string]any{"cmd": "disco_items", "jid": domain})
		alice.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
		if v := alice.MustDo(t, map[string]any{"cmd": "version", "jid": domain}); v.Str("name") != "ownChat" {
			t.Errorf("version %v", v)
		}
		if tm := alice.MustDo(t, map[string]any{"cmd": "time", "jid": domain}); tm.Str("utc") == "" {
			t.Errorf("time %v", tm)
		}
		acct := alice.MustDo(t, map[string]any{"cmd": "disco_info", "jid": bobBare})
		ids, _ = acct["identities"].([]any)
		if !slices.ContainsFunc(ids, func(v any) bool {
			id, _ := v.(map[string]any)
			return Event(id).Str("category") == "account" && Event(id).Str("type") == "registered"
		}) {
			t.Errorf("account disco#info %v, want account/registered", acct)
		}
		_, err := alice.Do(map[string]any{"cmd": "raw_iq",
			"xml": "<iq type='get' to='" + domain + "'><query xmlns='urn:example:nothing'/></iq>"})
		if ce, ok := err.(*CommandError); !ok || ce.Condition != "service-unavailable" {
			t.Errorf("raw_iq unknown namespace: %v", err)
		}
	})

	t.Run("admin sessions", func(t *testing.T) {
		out, err := exec.Command(xmppdBinary(t), "ctl", "-config", cs.Config, "sessions").CombinedOutput()
		if err != nil || !strings.Contains(string(out), alice.JID) {
			t.Errorf("xmppd ctl sessions: %v\n%s", err, out)
		}
	})

	t.Run("hostile input ends only that stream", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<bogus xmlns='jabber:client'/>"})
		if ev := alice.Expect(t, Is("stream_error"), eventTimeout); ev.Str("condition") != "unsupported-stanza-type" {
			t.Errorf("stream_error %v", ev)
		}
		carol, _ := cs.login(t, "carol", "")
		carol.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<message><body>&xxe;</body></message>"})
		if ev := carol.Expect(t, Is("stream_error"), eventTimeout); ev.Str("condition") != "restricted-xml" && ev.Str("condition") != "not-well-formed" {
			t.Errorf("entity reference: stream_error %v, want restricted-xml", ev)
		}
		dave, _ := cs.login(t, "dave", "")
		dave.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	})
}

// TestCoreDurability: a message the server acknowledged (stored offline)
// survives a kill -9 and a graceful restart, and clients are told about a
// shutdown with <system-shutdown/>.
func TestCoreDurability(t *testing.T) {
	dir := t.TempDir()
	c2s := FreePort()
	cfg := filepath.Join(dir, "xmppd.toml")
	if err := os.WriteFile(cfg, []byte(coreConfig(filepath.Join(dir, "data"), c2s, FreePort(), FreePort(), "")), 0o600); err != nil {
		t.Fatal(err)
	}
	login := func(user string) *Slix {
		s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: user + "-pw", Port: c2s, NoVerify: true})
		s.WaitSession(t)
		return s
	}

	x := StartXmppd(t, cfg)
	alice := login("alice")
	for i := 0; i < 20; i++ {
		alice.MustDo(t, map[string]any{"cmd": "send", "to": "bob@" + domain, "body": fmt.Sprintf("kill-9 #%d", i)})
	}
	// A ping round trip after the sends: the server handled every message
	// before answering it (one reader per connection, in order).
	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	x.Kill()

	x = StartXmppd(t, cfg)
	alice = login("alice")
	alice.MustDo(t, map[string]any{"cmd": "send", "to": "bob@" + domain, "body": "after restart"})
	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	if err := x.Stop(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	if ev := alice.Expect(t, Is("stream_error"), eventTimeout); ev.Str("condition") != "system-shutdown" {
		t.Errorf("on SIGTERM the client got %v, want <system-shutdown/>", ev)
	}

	StartXmppd(t, cfg)
	bob := login("bob")
	bob.MustDo(t, map[string]any{"cmd": "presence"})
	for i := 0; i < 20; i++ {
		bob.Expect(t, Is("message", "body", fmt.Sprintf("kill-9 #%d", i)), eventTimeout)
	}
	bob.Expect(t, Is("message", "body", "after restart"), eventTimeout)
}

// TestCoreCommands exercises the pinned command lines: passwd, check, ctl.
func TestCoreCommands(t *testing.T) {
	bin := xmppdBinary(t)
	t.Run("passwd hash logs in", func(t *testing.T) {
		cmd := exec.Command(bin, "passwd")
		cmd.Stdin = strings.NewReader("s3cret pässword\n")
		hash, err := cmd.Output()
		if err != nil || !bytes.HasPrefix(hash, []byte("$argon2id$")) {
			t.Fatalf("xmppd passwd: %v %q", err, hash)
		}
		if bytes.Contains(hash, []byte("s3cret")) {
			t.Fatal("hash contains the password")
		}
		cs := startCore(t, fmt.Sprintf("[[directory.user]]\nname = \"erin\"\npassword_hash = %q\n", strings.TrimSpace(string(hash))))
		s := StartSlix(t, SlixOptions{JID: "erin@" + domain, Password: "s3cret pässword", Port: cs.C2S, NoVerify: true})
		ev := s.WaitSession(t)
		// erin has no salted credentials, so SCRAM is not offered to anyone.
		if ev.Str("mech") != "PLAIN" || slices.Contains(ev.Strings("mechs_offered"), "SCRAM-SHA-1") {
			t.Errorf("session %v: want PLAIN only", ev)
		}
		if strings.Contains(cs.Output(), "s3cret") {
			t.Error("the password appears in the server log")
		}
	})
	t.Run("check", func(t *testing.T) {
		good := WriteConfig(t, coreConfig(t.TempDir(), FreePort(), FreePort(), FreePort(), ""))
		if out, err := exec.Command(bin, "check", "-config", good).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
			t.Errorf("check good config: %v\n%s", err, out)
		}
		bad := WriteConfig(t, "domain = \"x.test\"\n[limits]\nmax_stanza_bytes = 12\n[listen]\nc2ss = \"1\"\n")
		out, err := exec.Command(bin, "check", "-config", bad).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "xmppd.toml:3: limits.max_stanza_bytes") ||
			!strings.Contains(string(out), "xmppd.toml:5: listen.c2ss") {
			t.Errorf("check bad config: %v\n%s", err, out)
		}
	})
	t.Run("ctl without a server", func(t *testing.T) {
		cfg := WriteConfig(t, coreConfig(t.TempDir(), FreePort(), FreePort(), FreePort(), ""))
		out, err := exec.Command(bin, "ctl", "-config", cfg, "sessions").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no xmppd server is running") {
			t.Errorf("ctl without server: %v\n%s", err, out)
		}
	})
}
