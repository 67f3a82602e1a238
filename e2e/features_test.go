package e2e

import (
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestSessionFeatures drives XEP-0191 blocking, XEP-0049 private storage,
// XEP-0054 vcard-temp, XEP-0012 last activity, XEP-0115 caps and roster
// versioning (RFC 6121 §2.6) with slixmpp's own plugins.
func TestSessionFeatures(t *testing.T) {
	cs := startCore(t, "")
	alice, aliceSession := cs.login(t, "alice", "")
	bob, _ := cs.login(t, "bob", "")
	carol, _ := cs.login(t, "carol", "")
	aliceBare, bobBare, carolBare := "alice@"+domain, "bob@"+domain, "carol@"+domain
	for _, s := range []*Slix{alice, bob, carol} {
		s.MustDo(t, map[string]any{"cmd": "roster_get"})
		s.MustDo(t, map[string]any{"cmd": "presence"})
	}

	t.Run("caps", func(t *testing.T) {
		if !slices.Contains(aliceSession.Strings("features"), "{http://jabber.org/protocol/caps}c") {
			t.Fatalf("no caps in the stream features: %v", aliceSession.Strings("features"))
		}
		info := alice.MustDo(t, map[string]any{"cmd": "disco_info", "jid": domain})
		for _, f := range []string{"urn:xmpp:blocking", "vcard-temp", "jabber:iq:last"} {
			if !slices.Contains(info.Strings("features"), f) {
				t.Errorf("disco#info lacks %s: %v", f, info.Strings("features"))
			}
		}
		// The client may ask for node#ver (XEP-0115 §6.2); ver is the hash
		// of the answer, computed here as a client does (§5.1).
		ver := capsVerOf(info)
		byNode := alice.MustDo(t, map[string]any{"cmd": "disco_info", "jid": domain, "node": "https://ownchat.example/caps#" + ver})
		if capsVerOf(byNode) != ver {
			t.Errorf("node#ver answered differently: %v", byNode)
		}
	})

	t.Run("blocking", func(t *testing.T) {
		if l := alice.MustDo(t, map[string]any{"cmd": "blocklist"}); len(l.Strings("items")) != 0 {
			t.Fatalf("initial block list %v", l)
		}
		alice.MustDo(t, map[string]any{"cmd": "block", "jids": []string{carolBare}})
		alice.Expect(t, func(e Event) bool {
			return e.Name() == "iq" && e.Str("type") == "set" && strings.Contains(e.Str("xml"), "urn:xmpp:blocking") && strings.Contains(e.Str("xml"), carolBare)
		}, eventTimeout)
		if l := alice.MustDo(t, map[string]any{"cmd": "blocklist"}); !slices.Equal(l.Strings("items"), []string{carolBare}) {
			t.Fatalf("block list %v", l)
		}
		carol.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "can you hear me?"})
		bounce := carol.Expect(t, Is("message", "type", "error"), eventTimeout)
		if bounce.Map("error").Str("condition") != "service-unavailable" {
			t.Errorf("bounce to the blocked sender %v, want service-unavailable", bounce)
		}
		alice.MustDo(t, map[string]any{"cmd": "send", "to": carolBare, "body": "psst"})
		own := alice.Expect(t, Is("message", "type", "error"), eventTimeout)
		if own.Map("error").Str("condition") != "not-acceptable" || !strings.Contains(own.Str("xml"), "urn:xmpp:blocking:errors") {
			t.Errorf("error to the blocking sender %v, want not-acceptable with <blocked/>", own)
		}
		if _, err := carol.Do(map[string]any{"cmd": "vcard_get", "jid": aliceBare}); !isCondition(err, "service-unavailable") {
			t.Errorf("vCard of a user who blocks: %v", err)
		}
		alice.Never(t, Is("message", "body", "can you hear me?"), 300*time.Millisecond)
		carol.Never(t, Is("message", "body", "psst"), 0)

		alice.MustDo(t, map[string]any{"cmd": "unblock"}) // all
		if l := alice.MustDo(t, map[string]any{"cmd": "blocklist"}); len(l.Strings("items")) != 0 {
			t.Fatalf("block list after unblock all %v", l)
		}
		carol.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "and now?"})
		alice.Expect(t, Is("message", "body", "and now?"), eventTimeout)
	})

	t.Run("private storage", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "private_store",
			"xml": "<storage xmlns='storage:rosternotes'><note jid='" + bobBare + "'>met at the offsite</note></storage>"})
		alice2 := cs.second(t, "alice")
		got := alice2.MustDo(t, map[string]any{"cmd": "private_get", "ns": "storage:rosternotes", "name": "storage"})
		if !strings.Contains(got.Str("xml"), "met at the offsite") {
			t.Errorf("private_get from another session: %v", got)
		}
		if got := bob.MustDo(t, map[string]any{"cmd": "private_get", "ns": "storage:rosternotes", "name": "storage"}); strings.Contains(got.Str("xml"), "offsite") {
			t.Errorf("bob reads alice's private data: %v", got)
		}
		bye(t, alice2)
	})

	t.Run("vcard", func(t *testing.T) {
		alice.MustDo(t, map[string]any{"cmd": "vcard_set", "fields": map[string]string{"FN": "Alice Anders", "NICKNAME": "ali", "TITLE": "Engineer"}})
		for _, c := range []struct {
			s   *Slix
			jid string
		}{{alice, ""}, {bob, aliceBare}, {carol, aliceBare}} {
			got := c.s.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": c.jid})
			f := got.Map("fields")
			if f.Str("FN") != "Alice Anders" || f.Str("NICKNAME") != "ali" || f.Str("TITLE") != "Engineer" {
				t.Errorf("%s reads %v", c.s.Opts.JID, got)
			}
		}
		if _, err := bob.Do(map[string]any{"cmd": "vcard_get", "jid": carolBare}); !isCondition(err, "service-unavailable") {
			t.Errorf("vCard of a user without one: %v", err)
		}
	})

	t.Run("last activity", func(t *testing.T) {
		if got := alice.MustDo(t, map[string]any{"cmd": "last", "jid": domain}); got["seconds"].(float64) < 0 {
			t.Errorf("uptime %v", got)
		}
		if got := bob.MustDo(t, map[string]any{"cmd": "last", "jid": aliceBare}); got["seconds"].(float64) != 0 {
			t.Errorf("online colleague: %v", got)
		}
		if _, err := carol.Do(map[string]any{"cmd": "last", "jid": aliceBare}); !isCondition(err, "forbidden") {
			t.Errorf("not subscribed: %v, want forbidden", err)
		}
		alice.MustDo(t, map[string]any{"cmd": "presence", "type": "unavailable", "status": "gone fishing"})
		bob.Expect(t, Is("presence", "type", "unavailable", "from", alice.JID), eventTimeout)
		got := bob.MustDo(t, map[string]any{"cmd": "last", "jid": aliceBare})
		if s := got["seconds"].(float64); s < 0 || s > 10 || got.Str("status") != "gone fishing" {
			t.Errorf("after logout: %v", got)
		}
		alice.MustDo(t, map[string]any{"cmd": "presence"})
	})

	t.Run("roster versioning", func(t *testing.T) {
		first := carol.MustDo(t, map[string]any{"cmd": "roster_get"})
		ver := first.Str("ver")
		if ver == "" {
			t.Fatalf("no roster version: %v", first)
		}
		if again := carol.MustDo(t, map[string]any{"cmd": "roster_get", "ver": ver}); again["unchanged"] != true {
			t.Errorf("roster with the current version: %v", again)
		}
		carol.MustDo(t, map[string]any{"cmd": "roster_set", "jid": "dave@" + domain, "name": "Dave"})
		push := carol.Expect(t, Is("roster_push"), eventTimeout)
		if push.Str("ver") == "" || push.Str("ver") == ver {
			t.Errorf("push version %q after %q", push.Str("ver"), ver)
		}
		stale := carol.MustDo(t, map[string]any{"cmd": "roster_get", "ver": ver})
		if stale["unchanged"] == true || stale.Str("ver") != push.Str("ver") || rosterItem(stale["items"], "dave@"+domain) == nil {
			t.Errorf("roster for an old version: %v", stale)
		}
		// A new session with the cached version needs nothing.
		carol2 := cs.second(t, "carol")
		if got := carol2.MustDo(t, map[string]any{"cmd": "roster_get", "ver": push.Str("ver")}); got["unchanged"] != true {
			t.Errorf("new session with the current version: %v", got)
		}
	})
}

// second logs user in with another resource than login's, so that the
// first session stays.
func (cs *coreServer) second(t *testing.T, user string) *Slix {
	t.Helper()
	s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: user + "-pw", Port: cs.C2S, NoVerify: true, Resource: "e2e-second"})
	s.WaitSession(t)
	return s
}

// capsVerOf computes the XEP-0115 §5.1 verification string of a
// disco_info result.
func capsVerOf(info Event) string {
	var parts []string
	ids, _ := info["identities"].([]any)
	for _, v := range ids {
		id := Event(v.(map[string]any))
		parts = append(parts, id.Str("category")+"/"+id.Str("type")+"/"+id.Str("lang")+"/"+id.Str("name"))
	}
	sort.Strings(parts)
	feats := info.Strings("features")
	sort.Strings(feats)
	s := ""
	for _, x := range append(parts, feats...) {
		s += x + "<"
	}
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func isCondition(err error, cond string) bool {
	ce, ok := err.(*CommandError)
	return ok && ce.Condition == cond
}
