package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// XEP-0313 message archive with a real client: slixmpp's xep_0313 plugin
// pages with xep_0059 (RSM) through the user archive and a room archive,
// and the archive survives a restart.

const mamArchiveConf = `
[archive]
enabled = true
default_retention = "forever"
max_page = 100
`

// mamMessages runs mam_query and returns the messages as (body, id, from,
// stanza_id) maps.
func mamMessages(t *testing.T, s *Slix, args map[string]any) []Event {
	t.Helper()
	cmd := map[string]any{"cmd": "mam_query"}
	for k, v := range args {
		cmd[k] = v
	}
	data := s.MustDo(t, cmd)
	raw, _ := data["messages"].([]any)
	out := make([]Event, 0, len(raw))
	for _, m := range raw {
		out = append(out, Event(m.(map[string]any)))
	}
	return out
}

func bodies(ms []Event) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Str("body")
	}
	return out
}

// TestMAM1000 sends 1,000 messages alice -> bob and pages through both
// archives forwards and backwards with max 50: every message exactly once,
// in order; the result ids equal the stanza-ids bob received; filters
// with/start/end; the archive is still there after a restart.
func TestMAM1000(t *testing.T) {
	cs := startCore(t, mamArchiveConf)
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "e2e")
	carol := mucLogin(t, cs, "carol", "e2e")
	bobJID := "bob@" + domain

	const n = 1000
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("m%04d", i)
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bobJID, "body": want[i]})
	}
	// Bob got them all, each with a stanza-id by his archive.
	received := map[string]string{}
	for len(received) < n {
		ev := bob.Expect(t, func(e Event) bool { return e.Name() == "message" && strings.HasPrefix(e.Str("body"), "m") }, 30*time.Second)
		received[ev.Str("body")] = stanzaIDOf(ev.Str("xml"), bobJID)
	}
	time.Sleep(5 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	carol.MustDo(t, map[string]any{"cmd": "send", "to": "alice@" + domain, "body": "from carol"})
	alice.Expect(t, Is("message", "body", "from carol"), eventTimeout)

	check := func(what string, got []string, want []string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: got %d messages, want %d; first differences: %v", what, len(got), len(want), firstDiff(got, want))
		}
	}

	t.Run("forwards", func(t *testing.T) {
		ms := mamMessages(t, alice, map[string]any{"with": bobJID, "max": 50})
		check("alice forwards", bodies(ms), want)
		ms = mamMessages(t, bob, map[string]any{"max": 50})
		check("bob forwards", bodies(ms), want)
		for _, m := range ms {
			if m.Str("id") != received[m.Str("body")] || m.Str("id") == "" {
				t.Fatalf("bob's result %s has id %q, the message came with stanza-id %q", m.Str("body"), m.Str("id"), received[m.Str("body")])
			}
		}
	})
	t.Run("backwards", func(t *testing.T) {
		ms := mamMessages(t, bob, map[string]any{"max": 50, "reverse": true})
		rev := make([]string, n)
		for i := range want {
			rev[n-1-i] = want[i]
		}
		check("bob backwards", bodies(ms), rev)
	})
	t.Run("filters", func(t *testing.T) {
		ms := mamMessages(t, alice, map[string]any{"with": "carol@" + domain})
		check("with carol", bodies(ms), []string{"from carol"})
		ms = mamMessages(t, alice, map[string]any{"start": mid.Format(time.RFC3339Nano)})
		check("start", bodies(ms), []string{"from carol"})
		ms = mamMessages(t, alice, map[string]any{"end": mid.Format(time.RFC3339Nano), "max": 100})
		check("end", bodies(ms), want)
	})

	t.Run("restart", func(t *testing.T) {
		for _, s := range []*Slix{alice, bob, carol} {
			bye(t, s)
		}
		if err := cs.Xmppd.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		cs.Xmppd = StartXmppd(t, cs.Config)
		bob2 := mucLogin(t, cs, "Bob", "again")
		ms := mamMessages(t, bob2, map[string]any{"max": 100})
		check("bob after restart", bodies(ms), want)
	})
}

// TestMAMRoom: the room archives its groupchat messages; an occupant
// queries the room JID and gets them from the room, with the room's
// stanza-ids as the archive ids; a non-occupant of the open room may not.
func TestMAMRoom(t *testing.T) {
	cs := startCore(t, mamArchiveConf)
	alice := mucLogin(t, cs, "alice", "e2e")
	bob := mucLogin(t, cs, "Bob", "e2e")
	dave := mucLogin(t, cs, "dave", "e2e")
	mucJoin(t, alice, "Alice", nil)
	configure(t, alice, nil)
	mucJoin(t, bob, "Bob", nil)

	info := alice.MustDo(t, map[string]any{"cmd": "disco_info", "jid": mucRoom})
	if !containsAny(info["features"], "urn:xmpp:mam:2") {
		t.Fatalf("room disco#info lacks urn:xmpp:mam:2: %v", info["features"])
	}
	sent := []string{"one", "two", "three"}
	ids := map[string]string{}
	for _, b := range sent {
		alice.MustDo(t, map[string]any{"cmd": "muc_send", "room": mucRoom, "body": b})
		ev := bob.Expect(t, Is("message", "from", mucRoom+"/Alice", "type", "groupchat", "body", b), mucWait)
		ids[b] = stanzaIDOf(ev.Str("xml"), mucRoom)
	}
	ms := mamMessages(t, bob, map[string]any{"jid": mucRoom, "max": 2})
	if got := strings.Join(bodies(ms), ","); got != "one,two,three" {
		t.Fatalf("room archive: %q", got)
	}
	for _, m := range ms {
		if m.Str("from") != mucRoom+"/Alice" || m.Str("id") != ids[m.Str("body")] {
			t.Fatalf("room result %v; stanza-ids %v", m, ids)
		}
	}
	// slixmpp's iterator ends quietly on an error, so the refusal is
	// checked on the raw IQ.
	_, err := dave.Do(map[string]any{"cmd": "raw_iq", "xml": `<iq type='set' to='` + mucRoom + `'><query xmlns='urn:xmpp:mam:2'/></iq>`})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Condition != "forbidden" {
		t.Fatalf("non-occupant query of the room archive: %v, want forbidden", err)
	}
	if ms := mamMessages(t, dave, map[string]any{"jid": mucRoom}); len(ms) != 0 {
		t.Fatalf("a non-occupant read %d messages of the room archive", len(ms))
	}
	// Once joined, dave may.
	mucJoin(t, dave, "Dave", nil)
	if ms := mamMessages(t, dave, map[string]any{"jid": mucRoom}); len(ms) != len(sent) {
		t.Fatalf("occupant dave read %d messages, want %d", len(ms), len(sent))
	}
}

// stanzaIDOf returns the id of the XEP-0359 stanza-id by `by` in raw XML.
func stanzaIDOf(raw, by string) string {
	for _, part := range strings.Split(raw, "<")[1:] {
		if !strings.Contains(part, "urn:xmpp:sid:0") || !strings.HasPrefix(part, "stanza-id") {
			continue
		}
		if attrOf(part, "by") == by {
			return attrOf(part, "id")
		}
	}
	return ""
}

func attrOf(tag, name string) string {
	for _, q := range []string{`"`, `'`} {
		k := " " + name + "=" + q
		if i := strings.Index(tag, k); i >= 0 {
			rest := tag[i+len(k):]
			if j := strings.Index(rest, q); j >= 0 {
				return rest[:j]
			}
		}
	}
	return ""
}

func containsAny(v any, s string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstDiff(got, want []string) []string {
	var out []string
	for i := 0; i < max(len(got), len(want)) && len(out) < 5; i++ {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			out = append(out, fmt.Sprintf("#%d got %q want %q", i, g, w))
		}
	}
	return out
}
