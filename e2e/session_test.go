package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The mobile and multi-device session features with slixmpp's own plugins:
// XEP-0198 stream management (xep_0198), XEP-0352 client state indication
// (xep_0352) and XEP-0280 message carbons (xep_0280).

// startSession starts xmppd on the core suite's config with extra [limits]
// keys.
func startSession(t *testing.T, limits string) *coreServer {
	t.Helper()
	dir := t.TempDir()
	cs := &coreServer{C2S: FreePort(), DirectTLS: FreePort(), DataDir: filepath.Join(dir, "data")}
	cs.Config = filepath.Join(dir, "xmppd.toml")
	cfg := coreConfig(cs.DataDir, cs.C2S, cs.DirectTLS, FreePort(), "")
	if !strings.Contains(cfg, "[limits]\n") {
		t.Fatal("coreConfig has no [limits] table")
	}
	cfg = strings.Replace(cfg, "[limits]\n", "[limits]\n"+limits, 1)
	if err := os.WriteFile(cs.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cs.Xmppd = StartXmppd(t, cs.Config)
	return cs
}

// onlineWith logs user in with resource and plugins, fetches the roster and
// sends presence with priority.
func (cs *coreServer) onlineWith(t *testing.T, user, resource string, priority int, plugins ...string) *Slix {
	t.Helper()
	s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: user + "-pw", Port: cs.C2S,
		NoVerify: true, Resource: resource, Plugins: plugins})
	s.WaitSession(t)
	s.MustDo(t, map[string]any{"cmd": "roster_get"})
	s.MustDo(t, map[string]any{"cmd": "presence", "priority": priority})
	return s
}

// expectOnce expects a message with body and then no second copy of it.
func expectOnce(t *testing.T, s *Slix, body string) Event {
	t.Helper()
	ev := s.Expect(t, Is("message", "body", body), eventTimeout)
	s.Never(t, Is("message", "body", body), 300*time.Millisecond)
	return ev
}

// TestSessionStreamManagement: slixmpp enables XEP-0198 with resumption;
// its connection is lost while messages are on the way; it resumes from a
// new connection and gets every message exactly once, and its contact never
// sees it go offline. Past the window the resumption fails, the client
// binds anew and finds the messages in offline storage.
func TestSessionStreamManagement(t *testing.T) {
	cs := startSession(t, "resume_timeout = \"3s\"\n")
	alice := cs.onlineWith(t, "alice", "phone", 0, "xep_0198")
	en := alice.Expect(t, Is("sm_enabled"), eventTimeout)
	if en.Str("id") == "" || en["resume"] != true || en.Str("max") != "3" {
		t.Fatalf("sm_enabled %v: want an id, resume and max 3", en)
	}
	bob := cs.onlineWith(t, "bob", "desk", 0)
	alice.Expect(t, func(e Event) bool { return e.Name() == "presence" && e.Str("from") == bob.JID }, eventTimeout)

	for _, b := range []string{"sm-1", "sm-2", "sm-3"} {
		bob.MustDo(t, map[string]any{"cmd": "send", "to": alice.JID, "body": b})
	}
	for _, b := range []string{"sm-1", "sm-2", "sm-3"} {
		alice.Expect(t, Is("message", "body", b), eventTimeout)
	}

	t.Run("resume", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "drop", "delay": 0.5})
		alice.Expect(t, Is("dropped"), eventTimeout)
		for _, b := range []string{"sm-4", "sm-5", "sm-6"} {
			bob.MustDo(t, map[string]any{"cmd": "send", "to": alice.JID, "body": b})
		}
		alice.Expect(t, Is("session_resumed"), eventTimeout)
		for _, b := range []string{"sm-4", "sm-5", "sm-6"} {
			expectOnce(t, alice, b)
		}
		for _, b := range []string{"sm-1", "sm-2", "sm-3"} {
			alice.Never(t, Is("message", "body", b), 0) // not replayed
		}
		bob.Never(t, Is("presence", "from", alice.JID, "type", "unavailable"), 0)

		// The resumed session is the same session, in both directions.
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bob.JID, "body": "back again"})
		expectOnce(t, bob, "back again")
		alice.MustDo(t, map[string]any{"cmd": "sm_request_ack"})
		deadline := time.Now().Add(eventTimeout)
		for {
			st := alice.MustDo(t, map[string]any{"cmd": "sm_state"})
			if st["enabled"] == true && st["unacked"] == float64(0) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server did not ack alice's stanzas: %v", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("window passed", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "drop", "delay": 5})
		alice.Expect(t, Is("dropped"), eventTimeout)
		for _, b := range []string{"late-1", "late-2"} {
			bob.MustDo(t, map[string]any{"cmd": "send", "to": alice.JID, "body": b})
		}
		bob.Expect(t, Is("presence", "from", alice.JID, "type", "unavailable"), eventTimeout)
		failed := alice.Expect(t, Is("sm_failed"), 2*eventTimeout)
		if !strings.Contains(failed.Str("xml"), "item-not-found") {
			t.Errorf("sm_failed %v, want item-not-found", failed)
		}
		alice.Expect(t, Is("session_start"), eventTimeout) // bound anew
		alice.MustDo(t, map[string]any{"cmd": "presence"})
		for _, b := range []string{"late-1", "late-2"} {
			if ev := expectOnce(t, alice, b); ev["delay"] == nil {
				t.Errorf("%s from offline storage without a delay stamp: %v", b, ev)
			}
		}
	})
}

// TestSessionCSI: while slixmpp says it is inactive, 20 presence changes of
// a contact are held back and merged into one; a message with a body
// releases what is held.
func TestSessionCSI(t *testing.T) {
	cs := startCore(t, "")
	alice := cs.onlineWith(t, "alice", "phone", 0, "xep_0352")
	bob := cs.onlineWith(t, "bob", "desk", 0)
	fromBob := func(e Event) bool { return e.Name() == "presence" && e.Str("from") == bob.JID }
	alice.Expect(t, fromBob, eventTimeout)

	alice.MustDo(t, map[string]any{"cmd": "csi", "state": "inactive"})
	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": domain}) // handled after <inactive/>
	for i := 0; i < 20; i++ {
		bob.MustDo(t, map[string]any{"cmd": "presence", "status": "s" + string(rune('a'+i))})
	}
	bob.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	alice.Never(t, fromBob, 500*time.Millisecond)

	alice.MustDo(t, map[string]any{"cmd": "csi", "state": "active"})
	ev := alice.Expect(t, fromBob, eventTimeout)
	if ev.Str("status") != "st" {
		t.Errorf("after <active/> bob's presence has status %q, want the latest, %q", ev.Str("status"), "st")
	}
	alice.Never(t, fromBob, 500*time.Millisecond)

	alice.MustDo(t, map[string]any{"cmd": "csi", "state": "inactive"})
	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	bob.MustDo(t, map[string]any{"cmd": "presence", "show": "away"})
	bob.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	alice.Never(t, fromBob, 300*time.Millisecond)
	bob.MustDo(t, map[string]any{"cmd": "send", "to": alice.JID, "body": "wake up"})
	alice.Expect(t, Is("message", "body", "wake up"), eventTimeout)
	if ev := alice.Expect(t, fromBob, eventTimeout); ev.Str("show") != "away" {
		t.Errorf("released presence %v, want show away", ev)
	}
}

// TestSessionCarbons: two resources of alice enable carbons; each sees what
// the other sends and receives; <private/> is honoured.
func TestSessionCarbons(t *testing.T) {
	cs := startCore(t, "")
	one := cs.onlineWith(t, "alice", "one", 5)
	two := cs.onlineWith(t, "alice", "two", 1)
	bob := cs.onlineWith(t, "bob", "desk", 0)
	const aliceBare = "alice@" + domain

	info := one.MustDo(t, map[string]any{"cmd": "disco_info", "jid": domain})
	if !slices.Contains(info.Strings("features"), "urn:xmpp:carbons:2") {
		t.Fatalf("disco#info lacks urn:xmpp:carbons:2: %v", info.Strings("features"))
	}
	one.MustDo(t, map[string]any{"cmd": "carbons", "enable": true})
	two.MustDo(t, map[string]any{"cmd": "carbons", "enable": true})

	carbon := func(direction, body string) func(Event) bool {
		return func(e Event) bool {
			return e.Name() == "carbon" && e.Str("direction") == direction && e.Str("body") == body
		}
	}

	bob.MustDo(t, map[string]any{"cmd": "send", "to": one.JID, "body": "to one"})
	expectOnce(t, one, "to one")
	ev := two.Expect(t, carbon("received", "to one"), eventTimeout)
	if ev.Str("from") != aliceBare || ev.Str("inner_from") != bob.JID || ev.Str("inner_to") != one.JID {
		t.Errorf("received carbon %v", ev)
	}
	two.Never(t, Is("message", "body", "to one"), 0) // the copy, not the message

	bob.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "to alice"})
	expectOnce(t, one, "to alice") // the highest priority
	two.Expect(t, carbon("received", "to alice"), eventTimeout)

	one.MustDo(t, map[string]any{"cmd": "send", "to": bob.JID, "body": "from one"})
	expectOnce(t, bob, "from one")
	ev = two.Expect(t, carbon("sent", "from one"), eventTimeout)
	if ev.Str("inner_from") != one.JID || ev.Str("inner_to") != bob.JID {
		t.Errorf("sent carbon %v", ev)
	}
	one.Never(t, carbon("sent", "from one"), 0)

	one.MustDo(t, map[string]any{"cmd": "send", "to": bob.JID, "body": "private",
		"extra": []string{"<private xmlns='urn:xmpp:carbons:2'/>", "<no-copy xmlns='urn:xmpp:hints'/>"}})
	expectOnce(t, bob, "private")
	two.Never(t, carbon("sent", "private"), 500*time.Millisecond)

	two.MustDo(t, map[string]any{"cmd": "carbons", "enable": false})
	bob.MustDo(t, map[string]any{"cmd": "send", "to": one.JID, "body": "after disable"})
	expectOnce(t, one, "after disable")
	two.Never(t, carbon("received", "after disable"), 500*time.Millisecond)
}
