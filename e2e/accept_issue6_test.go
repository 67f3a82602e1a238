package e2e

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Acceptance of issue 6 (archive, retention, legal hold, export, audit):
// what the issue pins and the other e2e tests do not prove end to end,
// driven through the real binary, real slixmpp clients and `xmppd ctl`.

// a6Users is the directory of these tests: alice and carol are in Legal,
// bob in no group.
const a6Users = `
[[directory.user]]
name = "alice"
password = "alice-pw"
groups = ["Legal"]
[[directory.user]]
name = "bob"
password = "bob-pw"
[[directory.user]]
name = "carol"
password = "carol-pw"
groups = ["Legal"]
`

type a6Server struct {
	*Xmppd
	Config, DataDir string
	C2S, HTTP       int
}

func a6ConfigText(dataDir string, c2s, http int, users, archive string) string {
	return fmt.Sprintf(`
domain = %q
data_dir = %q
log_level = "debug"
[listen]
c2s = "127.0.0.1:%d"
http = "127.0.0.1:%d"
[tls]
require_encryption = false
[directory]
backend = "static"
%s
%s`, domain, dataDir, c2s, http, users, archive)
}

// a6Start writes the config and starts xmppd on it.
func a6Start(t *testing.T, users, archive string) *a6Server {
	t.Helper()
	dir := t.TempDir()
	s := &a6Server{DataDir: filepath.Join(dir, "data"), C2S: FreePort(), HTTP: FreePort()}
	s.Config = filepath.Join(dir, "xmppd.toml")
	s.write(t, users, archive)
	s.Xmppd = StartXmppd(t, s.Config)
	return s
}

func (s *a6Server) write(t *testing.T, users, archive string) {
	t.Helper()
	if err := os.WriteFile(s.Config, []byte(a6ConfigText(s.DataDir, s.C2S, s.HTTP, users, archive)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// login starts a client for user with initial presence, so bare-JID
// messages reach it online.
func (s *a6Server) login(t *testing.T, user string) *Slix {
	t.Helper()
	c := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: user + "-pw", Port: s.C2S, Resource: "r", NoVerify: true})
	c.WaitSession(t)
	c.MustDo(t, map[string]any{"cmd": "presence"})
	// The server handles a connection's stanzas in order: once the ping is
	// answered the session is available, so a bare-JID message sent next
	// is delivered online rather than stored offline.
	c.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	return c
}

// a6Form renders a MAM data form; pairs are var, value (a var may repeat
// for multi-valued fields such as ids).
func a6Form(pairs ...string) string {
	vals := map[string][]string{}
	var order []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, ok := vals[pairs[i]]; !ok {
			order = append(order, pairs[i])
		}
		vals[pairs[i]] = append(vals[pairs[i]], pairs[i+1])
	}
	var b strings.Builder
	b.WriteString(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>`)
	for _, v := range order {
		b.WriteString(`<field var='` + v + `'>`)
		for _, x := range vals[v] {
			b.WriteString(`<value>` + x + `</value>`)
		}
		b.WriteString(`</field>`)
	}
	b.WriteString(`</x>`)
	return b.String()
}

func a6RSM(max int, extra string) string {
	return fmt.Sprintf(`<set xmlns='http://jabber.org/protocol/rsm'><max>%d</max>%s</set>`, max, extra)
}

// a6Result is one <result/> message of a raw MAM query.
type a6Result struct{ ID, From, Body, XML string }

// a6Fin is what the final IQ says.
type a6Fin struct {
	Complete           bool
	First, Last, Count string
	XML                string
}

var bodyRE = regexp.MustCompile(`<body[^>]*>([^<]*)</body>`)

// a6MAM sends one raw MAM query (payload inside <query/>) to `to` ("" for
// the own archive) and returns the results and the fin, or the stanza
// error condition.
func a6MAM(t *testing.T, c *Slix, to, payload string) ([]a6Result, a6Fin, string) {
	t.Helper()
	toAttr := ""
	if to != "" {
		toAttr = ` to='` + to + `'`
	}
	qid := "q" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ev, err := c.Do(map[string]any{"cmd": "mam_raw", "xml": `<iq type='set'` + toAttr + `><query xmlns='urn:xmpp:mam:2' queryid='` + qid + `'>` + payload + `</query></iq>`})
	var ce *CommandError
	if errors.As(err, &ce) && ce.Type != "driver" {
		return nil, a6Fin{}, ce.Condition
	}
	if err != nil {
		t.Fatalf("mam_raw %s: %v", payload, err)
	}
	data := ev.Map("data")
	var res []a6Result
	raw, _ := data["results"].([]any)
	for _, r := range raw {
		e := Event(r.(map[string]any))
		m := bodyRE.FindStringSubmatch(e.Str("xml"))
		body := ""
		if m != nil {
			body = m[1]
		}
		res = append(res, a6Result{ID: e.Str("id"), From: e.Str("from"), Body: body, XML: e.Str("xml")})
	}
	var iq struct {
		Fin struct {
			Complete string `xml:"complete,attr"`
			Set      struct {
				First string `xml:"first"`
				Last  string `xml:"last"`
				Count string `xml:"count"`
			} `xml:"http://jabber.org/protocol/rsm set"`
		} `xml:"urn:xmpp:mam:2 fin"`
	}
	finXML := data.Str("xml")
	if err := xml.Unmarshal([]byte(finXML), &iq); err != nil {
		t.Fatalf("fin %q: %v", finXML, err)
	}
	return res, a6Fin{Complete: iq.Fin.Complete == "true" || iq.Fin.Complete == "1",
		First: iq.Fin.Set.First, Last: iq.Fin.Set.Last, Count: iq.Fin.Set.Count, XML: finXML}, ""
}

func a6Bodies(rs []a6Result) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Body
	}
	return strings.Join(out, ",")
}

// TestAccept6MAMQueryProtocol: XEP-0313 #extended and XEP-0059 exactly as a
// client sends them (raw query IQs from slixmpp): with + RSM max, fin
// first/last/count/complete, after-id, before-id, ids, flip-page, RSM
// before (last page), count only, an unknown id, user preferences
// (default never), compliance mode forcing "always", and the export
// fields of the same messages.
func TestAccept6MAMQueryProtocol(t *testing.T) {
	requireSlixmpp(t)
	start := time.Now().Add(-time.Second)
	s := a6Start(t, a6Users, "[archive]\nenabled = true\ndefault_retention = \"forever\"\nmax_page = 100\n")
	alice, bob := s.login(t, "alice"), s.login(t, "bob")
	aliceJID, bobJID := "alice@"+domain, "bob@"+domain

	const n = 12
	for i := range n {
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bobJID, "body": fmt.Sprintf("m%02d", i)})
	}
	for i := range n {
		bob.Expect(t, Is("message", "body", fmt.Sprintf("m%02d", i)), eventTimeout)
	}
	mid := time.Now()

	info := bob.MustDo(t, map[string]any{"cmd": "disco_info", "jid": bobJID})
	for _, f := range []string{"urn:xmpp:mam:2", "urn:xmpp:mam:2#extended", "urn:xmpp:sid:0"} {
		if !containsAny(info["features"], f) {
			t.Errorf("bob's account disco#info lacks %s: %v", f, info["features"])
		}
	}

	want := func(what string, got []a6Result, bodies ...string) {
		t.Helper()
		if g := a6Bodies(got); g != strings.Join(bodies, ",") {
			t.Fatalf("%s: got [%s], want %v", what, g, bodies)
		}
	}
	ids := map[string]string{}

	// Page 1 of 3: with + max 5.
	res, fin, cond := a6MAM(t, bob, "", a6Form("with", aliceJID)+a6RSM(5, ""))
	if cond != "" {
		t.Fatalf("first page: %s", cond)
	}
	want("page 1", res, "m00", "m01", "m02", "m03", "m04")
	if fin.Complete || fin.Count != strconv.Itoa(n) || fin.First != res[0].ID || fin.Last != res[4].ID {
		t.Errorf("page 1 fin: %+v; want not complete, count %d, first/last = the result ids %s/%s", fin, n, res[0].ID, res[4].ID)
	}
	for _, r := range res {
		ids[r.Body] = r.ID
		if r.From != "" && r.From != bobJID {
			t.Errorf("a result of bob's archive comes from %q (XEP-0313 §4.2: the archive's bare JID)", r.From)
		}
		if !strings.Contains(r.XML, "urn:xmpp:forward:0") || !strings.Contains(r.XML, "urn:xmpp:delay") {
			t.Errorf("result without <forwarded/> and <delay/>: %s", r.XML)
		}
	}
	// Page 2 by after-id (#extended), page 3 ends the archive: complete.
	res, fin, _ = a6MAM(t, bob, "", a6Form("with", aliceJID, "after-id", ids["m04"])+a6RSM(5, ""))
	want("after-id m04", res, "m05", "m06", "m07", "m08", "m09")
	if fin.Complete {
		t.Errorf("page 2 says complete: %s", fin.XML)
	}
	for _, r := range res {
		ids[r.Body] = r.ID
	}
	res, fin, _ = a6MAM(t, bob, "", a6Form("with", aliceJID, "after-id", ids["m09"])+a6RSM(5, ""))
	want("after-id m09", res, "m10", "m11")
	if !fin.Complete {
		t.Errorf("the last page lacks complete='true': %s", fin.XML)
	}
	for _, r := range res {
		ids[r.Body] = r.ID
	}
	// RSM <after/> with the fin's last id pages the same way (XEP-0059).
	res, _, _ = a6MAM(t, bob, "", a6RSM(3, "<after>"+ids["m04"]+"</after>"))
	want("RSM after m04", res, "m05", "m06", "m07")

	res, fin, _ = a6MAM(t, bob, "", a6Form("before-id", ids["m03"])+a6RSM(5, ""))
	want("before-id m03", res, "m00", "m01", "m02")
	// The count is not checked here: like RSM <before/>, before-id bounds
	// the page, and XEP-0313 lets clients not depend on <count/>.
	if !fin.Complete || fin.First != ids["m00"] || fin.Last != ids["m02"] {
		t.Errorf("before-id m03 fin: %s; want complete, first m00, last m02", fin.XML)
	}
	res, _, _ = a6MAM(t, bob, "", a6Form("ids", ids["m07"], "ids", ids["m02"]))
	got := strings.Split(a6Bodies(res), ",")
	slices.Sort(got)
	if strings.Join(got, ",") != "m02,m07" {
		t.Errorf("ids m07,m02: got %q, want exactly m02 and m07", a6Bodies(res))
	}
	res, _, _ = a6MAM(t, bob, "", a6RSM(3, "")+"<flip-page/>")
	want("flip-page", res, "m02", "m01", "m00")
	// RSM <before/> empty: the last page, still in chronological order.
	res, fin, _ = a6MAM(t, bob, "", a6RSM(3, "<before/>"))
	want("RSM before (last page)", res, "m09", "m10", "m11")
	if fin.First != ids["m09"] || fin.Last != ids["m11"] {
		t.Errorf("last page fin first/last %s/%s, want %s/%s", fin.First, fin.Last, ids["m09"], ids["m11"])
	}
	res, fin, _ = a6MAM(t, bob, "", a6RSM(0, ""))
	if len(res) != 0 || fin.Count != strconv.Itoa(n) {
		t.Errorf("max 0: %d results, count %q; want 0 and %d", len(res), fin.Count, n)
	}
	if _, _, cond := a6MAM(t, bob, "", a6Form("after-id", "no-such-id")); cond != "item-not-found" {
		t.Errorf("after-id of an unknown id: %q, want item-not-found", cond)
	}

	t.Run("prefs", func(t *testing.T) {
		r := bob.MustDo(t, map[string]any{"cmd": "raw_iq", "xml": `<iq type='get'><prefs xmlns='urn:xmpp:mam:2'/></iq>`})
		if !regexp.MustCompile(`default=["']always["']`).MatchString(r.Str("xml")) {
			t.Fatalf("default prefs: %s", r.Str("xml"))
		}
		bob.MustDo(t, map[string]any{"cmd": "raw_iq", "xml": `<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>`})
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bobJID, "body": "unarchived"})
		ev := bob.Expect(t, Is("message", "body", "unarchived"), eventTimeout)
		if id := stanzaIDOf(ev.Str("xml"), bobJID); id != "" {
			t.Errorf("bob (prefs never) got a stanza-id by his archive: %s", id)
		}
		if _, fin, _ := a6MAM(t, bob, "", a6RSM(0, "")); fin.Count != strconv.Itoa(n) {
			t.Errorf("bob's archive after prefs never: count %s, want %d", fin.Count, n)
		}
		if _, fin, _ := a6MAM(t, alice, "", a6RSM(0, "")); fin.Count != strconv.Itoa(n+1) {
			t.Errorf("alice's archive (her prefs: always): count %s, want %d", fin.Count, n+1)
		}
		bob.MustDo(t, map[string]any{"cmd": "raw_iq", "xml": `<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='always'/></iq>`})
	})

	t.Run("export fields", func(t *testing.T) {
		out := mustCtl(t, s.Config, "archive", "export", "-user", bobJID)
		checkJSONExport(t, []byte(out), bobJID)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != n+1 {
			t.Fatalf("bob's export: %d lines, want %d messages and the manifest", len(lines), n)
		}
		for _, l := range lines[:n] {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"id", "time", "from", "to", "type", "body", "stanza"} {
				if _, ok := m[k].(string); !ok {
					t.Errorf("export line lacks string %q: %s", k, l)
				}
			}
			body, _ := m["body"].(string)
			if id := ids[body]; id == "" || m["id"] != id {
				t.Errorf("export id %v of %q, want the MAM id / stanza-id %q", m["id"], body, id)
			}
			ts, err := time.Parse(time.RFC3339, m["time"].(string))
			if err != nil || ts.Before(start) || ts.After(time.Now()) {
				t.Errorf("export time %v: %v (want RFC 3339 within the test)", m["time"], err)
			}
			if m["type"] != "chat" || !strings.HasPrefix(m["from"].(string), aliceJID) || !strings.HasPrefix(m["to"].(string), bobJID) {
				t.Errorf("export from/to/type: %s", l)
			}
			if !strings.Contains(m["stanza"].(string), "<body>"+body+"</body>") {
				t.Errorf("raw stanza lacks the body: %s", l)
			}
		}
		count := func(args ...string) int {
			t.Helper()
			return len(checkJSONExport(t, []byte(mustCtl(t, s.Config, append([]string{"archive", "export", "-user", bobJID}, args...)...)), bobJID))
		}
		if got := count("-since", mid.Add(time.Hour).UTC().Format(time.RFC3339)); got != 0 {
			t.Errorf("-since in an hour: %d messages", got)
		}
		if got := count("-until", "2000-01-01"); got != 0 {
			t.Errorf("-until 2000-01-01: %d messages", got)
		}
		if got := count("-since", "2000-01-01", "-until", mid.Add(time.Hour).UTC().Format(time.RFC3339)); got != n {
			t.Errorf("-since 2000-01-01 -until in an hour: %d messages, want %d", got, n)
		}
		if got := count("-with", "carol@"+domain); got != 0 {
			t.Errorf("-with carol: %d messages", got)
		}
		// XML without -manifest: the manifest goes to stderr.
		xmlOut, errOut, code := ctlRun(t, s.Config, "archive", "export", "-user", bobJID, "-format", "xml")
		if code != 0 || xml.Unmarshal([]byte(xmlOut), new(struct{})) != nil || strings.Count(xmlOut, "<body>m") != n {
			t.Errorf("XML export: exit %d, %d bodies, stderr %q", code, strings.Count(xmlOut, "<body>m"), errOut)
		}
		if !strings.Contains(errOut, `"count":`+strconv.Itoa(n)) && !strings.Contains(errOut, `"count": `+strconv.Itoa(n)) {
			t.Errorf("XML export without -manifest: no manifest with count %d on stderr: %q", n, errOut)
		}
	})

	t.Run("compliance mode", func(t *testing.T) {
		cm := a6Start(t, a6Users, "[archive]\nenabled = true\ndefault_retention = \"forever\"\ncompliance_mode = true\n")
		a, b := cm.login(t, "alice"), cm.login(t, "bob")
		_, err := b.Do(map[string]any{"cmd": "raw_iq", "xml": `<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>`})
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Condition != "not-allowed" {
			t.Errorf("prefs never in compliance mode: %v, want not-allowed", err)
		}
		a.MustDo(t, map[string]any{"cmd": "send", "to": bobJID, "body": "kept anyway", "extra": "<no-store xmlns='urn:xmpp:hints'/>"})
		ev := b.Expect(t, Is("message", "body", "kept anyway"), eventTimeout)
		if stanzaIDOf(ev.Str("xml"), bobJID) == "" {
			t.Errorf("compliance mode: a no-store message reached bob without his archive's stanza-id: %s", ev.Str("xml"))
		}
		if got := exportBodies(t, cm.Config, bobJID); !slices.Equal(got, []string{"kept anyway"}) {
			t.Errorf("bob's archive in compliance mode: %q", got)
		}
	})
}

var a6TotalRE = regexp.MustCompile(`(?m)^total\s+(\d+)\s+(\d+)\s+(\d+)$`)

// a6WaitExpired polls `retention preview` (the dry run) until it reports
// at least msgs expired messages: the event the test waits for is the
// rules' clock passing, not a fixed sleep.
func a6WaitExpired(t *testing.T, cfg string, msgs int) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errOut, code := ctlRun(t, cfg, "retention", "preview")
		if code != 0 {
			t.Fatalf("retention preview: exit %d: %s", code, errOut)
		}
		if m := a6TotalRE.FindStringSubmatch(out); m != nil {
			if got, _ := strconv.Atoi(m[2]); got >= msgs {
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention preview never reached %d expired messages:\n%s", msgs, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func a6RoomExport(t *testing.T, cfg, room string) []string {
	t.Helper()
	out := mustCtl(t, cfg, "archive", "export", "-room", room)
	return checkJSONExport(t, []byte(out), room)
}

// TestAccept6RetentionRules: precedence with the real binary (user > group,
// room > kind), "none" means never archived, room archives expire by
// room:/kind: rules, and a legal hold on a room (-room) keeps its expired
// messages across a restart until released.
func TestAccept6RetentionRules(t *testing.T) {
	requireSlixmpp(t)
	conference := "conference." + domain
	keep, brief, held := "keep@"+conference, "brief@"+conference, "held@"+conference
	archive := fmt.Sprintf(`[archive]
enabled = true
default_retention = "forever"
[[archive.rule]]
match = "group:Legal"
retention = "1s"
[[archive.rule]]
match = "user:alice@%[1]s"
retention = "forever"
[[archive.rule]]
match = "user:bob@%[1]s"
retention = "none"
[[archive.rule]]
match = "kind:groupchat"
retention = "1s"
[[archive.rule]]
match = "room:%[2]s"
retention = "forever"
`, domain, keep)
	s := a6Start(t, a6Users, archive)
	aliceJID, bobJID, carolJID := "alice@"+domain, "bob@"+domain, "carol@"+domain
	alice, bob, carol := s.login(t, "alice"), s.login(t, "bob"), s.login(t, "carol")

	carol.MustDo(t, map[string]any{"cmd": "send", "to": aliceJID, "body": "c1"})
	alice.Expect(t, Is("message", "body", "c1"), eventTimeout)
	alice.MustDo(t, map[string]any{"cmd": "send", "to": bobJID, "body": "a1"})
	if ev := bob.Expect(t, Is("message", "body", "a1"), eventTimeout); stanzaIDOf(ev.Str("xml"), bobJID) != "" {
		t.Errorf("bob (retention none) got a stanza-id by his archive: %s", ev.Str("xml"))
	}

	for _, room := range []string{keep, brief, held} {
		alice.MustDo(t, map[string]any{"cmd": "muc_join", "room": room, "nick": "Alice"})
		alice.MustDo(t, map[string]any{"cmd": "muc_config_submit", "room": room, "fields": map[string]any{}})
		body := "in " + strings.Split(room, "@")[0]
		alice.MustDo(t, map[string]any{"cmd": "muc_send", "room": room, "body": body})
		alice.Expect(t, Is("message", "from", room+"/Alice", "type", "groupchat", "body", body), mucWait)
	}
	mustCtl(t, s.Config, "hold", "add", "-room", held, "-case", "ROOM-1", "-reason", "board inquiry")

	if got := exportBodies(t, s.Config, bobJID); len(got) != 0 {
		t.Errorf("bob's archive (none): %q", got)
	}
	// carol: c1 (Legal 1s); brief: kind 1s; held is held; alice (user
	// forever beats group) and keep (room forever beats kind) stay.
	a6WaitExpired(t, s.Config, 2)
	out := mustCtl(t, s.Config, "archive", "purge")
	if m := removedRE.FindStringSubmatch(out); m == nil || m[1] != "2" {
		t.Errorf("purge: %q; want removed 2 messages", out)
	}
	if !regexp.MustCompile(`(?m)^kind:groupchat\s+1s\s+2\s+1\s+1 \(1 archives\)$`).MatchString(out) {
		t.Errorf("purge table: want kind:groupchat with 2 archives, 1 removed, 1 held:\n%s", out)
	}
	if got := exportBodies(t, s.Config, aliceJID); !slices.Equal(got, []string{"a1", "c1"}) {
		t.Errorf("alice's archive (user forever beats group 1s): %q", got)
	}
	if got := exportBodies(t, s.Config, carolJID); len(got) != 0 {
		t.Errorf("carol's archive (group 1s): %q", got)
	}
	for room, want := range map[string]int{keep: 1, brief: 0, held: 1} {
		if got := len(a6RoomExport(t, s.Config, room)); got != want {
			t.Errorf("room %s archive after the purge: %d messages, want %d", room, got, want)
		}
	}

	// Holds are durable: after a restart the room is still held.
	for _, c := range []*Slix{alice, bob, carol} {
		bye(t, c)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s.Xmppd = StartXmppd(t, s.Config)
	if out := mustCtl(t, s.Config, "hold", "list"); !strings.Contains(out, "ROOM-1") || !strings.Contains(out, held) {
		t.Errorf("hold list after a restart:\n%s", out)
	}
	mustCtl(t, s.Config, "archive", "purge")
	if got := len(a6RoomExport(t, s.Config, held)); got != 1 {
		t.Errorf("held room after a restart and a purge: %d messages, want 1", got)
	}
	mustCtl(t, s.Config, "hold", "release", "-case", "ROOM-1")
	out = mustCtl(t, s.Config, "archive", "purge")
	if m := removedRE.FindStringSubmatch(out); m == nil || m[1] != "1" {
		t.Errorf("purge after the release: %q; want removed 1", out)
	}
	if got := len(a6RoomExport(t, s.Config, held)); got != 0 {
		t.Errorf("released room after a purge: %d messages", got)
	}
	audit := mustCtl(t, s.Config, "audit", "list")
	for _, want := range []string{"hold add", "hold release", held, "archive purge"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit list lacks %q:\n%s", want, audit)
		}
	}
}

// TestAccept6OfflineFollowsRetention: "Offline messages ... follow the
// same rules": a message waiting for carol (Legal, 1s) expires with her
// archive copy; the purge counts it as offline and it is never delivered.
func TestAccept6OfflineFollowsRetention(t *testing.T) {
	requireSlixmpp(t)
	s := a6Start(t, a6Users, "[archive]\nenabled = true\ndefault_retention = \"forever\"\n[[archive.rule]]\nmatch = \"group:Legal\"\nretention = \"1s\"\n")
	bob := s.login(t, "bob")
	bob.MustDo(t, map[string]any{"cmd": "send", "to": "carol@" + domain, "body": "while you were out"})
	a6WaitExpired(t, s.Config, 1) // carol's archive copy
	out := mustCtl(t, s.Config, "archive", "purge")
	if m := removedRE.FindStringSubmatch(out); m == nil || m[1] != "1" || m[2] != "1" {
		t.Errorf("purge: %q; want removed 1 messages (1 offline)", out)
	}
	carol := s.login(t, "carol")
	carol.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
	carol.Never(t, Is("message", "body", "while you were out"), 500*time.Millisecond)
}

// a6LegalArchive keeps Legal forever and everyone else 1s.
const a6LegalArchive = `[archive]
enabled = true
default_retention = "1s"
[[archive.rule]]
match = "group:Legal"
retention = "forever"
`

// a6LegalMessage has alice (Legal) send bob one message on a fresh
// server and returns it stopped.
func a6LegalMessage(t *testing.T) *a6Server {
	t.Helper()
	s := a6Start(t, a6Users, a6LegalArchive)
	alice, bob := s.login(t, "alice"), s.login(t, "bob")
	alice.MustDo(t, map[string]any{"cmd": "send", "to": "bob@" + domain, "body": "privileged"})
	bob.Expect(t, Is("message", "body", "privileged"), eventTimeout)
	bye(t, alice)
	bye(t, bob)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAccept6GroupRuleWithoutEarlierPurge: a person's group rule must hold
// whether or not a scheduled purge has run since their messages were
// archived: (a) `ctl archive purge` with the server stopped, alice still
// in Legal in the config; (b) alice leaves the directory (removed from the
// static list) before any purge ran: "their archive follows the rules
// ... never silently lost".
func TestAccept6GroupRuleWithoutEarlierPurge(t *testing.T) {
	requireSlixmpp(t)
	aliceJID := "alice@" + domain
	t.Run("offline purge", func(t *testing.T) {
		s := a6LegalMessage(t)
		a6WaitExpired(t, s.Config, 1) // bob's copy (default 1s)
		out := mustCtl(t, s.Config, "archive", "purge")
		if got := exportBodies(t, s.Config, aliceJID); len(got) != 1 {
			t.Errorf("alice is in Legal (forever) in the config, yet `ctl archive purge` with the server stopped left %d of her 1 message; purge said %q", len(got), out)
		}
	})
	t.Run("leaver", func(t *testing.T) {
		s := a6LegalMessage(t)
		s.write(t, strings.Replace(a6Users, "name = \"alice\"\npassword = \"alice-pw\"\ngroups = [\"Legal\"]\n", "name = \"zed\"\npassword = \"zed-pw\"\n", 1), a6LegalArchive)
		s.Xmppd = StartXmppd(t, s.Config)
		a6WaitExpired(t, s.Config, 1)
		out := mustCtl(t, s.Config, "archive", "purge")
		if got := exportBodies(t, s.Config, aliceJID); len(got) != 1 {
			t.Errorf("alice left the directory while in Legal (forever), yet the purge left %d of her 1 message; purge said %q", len(got), out)
		}
	})
}

// TestAccept6CtlFailures: every failing ctl command exits non-zero with
// exactly one line on stderr and nothing on stdout, with the server
// running (admin socket) and with it stopped (store opened directly).
func TestAccept6CtlFailures(t *testing.T) {
	s := a6Start(t, a6Users, "[archive]\nenabled = true\n")
	u := "alice@" + domain
	cases := [][]string{
		{"archive", "export"},
		{"archive", "export", "-user", u, "-room", "r@conference." + domain},
		{"archive", "export", "-user", u, "-format", "csv"},
		{"archive", "export", "-user", u, "-since", "yesterday"},
		{"archive", "export", "-user", u, "-o", filepath.Join(t.TempDir(), "no", "such", "dir")},
		{"archive", "purge", "-now", "2030-01-01T00:00:00Z"},
		{"archive", "frob"},
		{"retention", "preview", "-now", "soon"},
		{"hold", "add", "-user", u},
		{"hold", "add", "-case", "X"},
		{"hold", "release"},
		{"hold", "release", "-case", "no-such-case"},
		{"user", "erase"},
		{"audit", "list", "-n", "many"},
		{"audit", "verify", "extra"},
	}
	check := func(t *testing.T, args []string) {
		t.Helper()
		out, errOut, code := ctlRun(t, s.Config, args...)
		if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") || len(strings.TrimSpace(errOut)) < 10 {
			t.Errorf("ctl %s: exit %d, stdout %q, stderr %q; want non-zero and one line", strings.Join(args, " "), code, out, errOut)
		}
	}
	t.Run("online", func(t *testing.T) {
		for _, args := range append(cases, []string{"compact"}) {
			check(t, args)
		}
	})
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Run("offline", func(t *testing.T) {
		for _, args := range append(cases, []string{"sessions"}) {
			check(t, args)
		}
	})
}

// TestAccept6AuditRemovedRecord: `audit verify` on a copy of the store
// where one record was deleted (in the middle, and the newest) exits 1
// and names it; the original verifies.
func TestAccept6AuditRemovedRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xmppd.toml")
	dataDir := filepath.Join(dir, "data")
	if err := os.WriteFile(cfg, []byte(a6ConfigText(dataDir, FreePort(), FreePort(), a6Users, "[archive]\nenabled = true\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, cfg, "hold", "add", "-user", "alice@"+domain, "-case", "A")
	mustCtl(t, cfg, "hold", "add", "-user", "bob@"+domain, "-case", "B")
	mustCtl(t, cfg, "hold", "release", "-case", "A")
	if out := mustCtl(t, cfg, "audit", "verify"); !strings.HasPrefix(out, "audit log intact: 3 records") {
		t.Fatalf("verify of the original: %q", out)
	}
	raw, err := os.ReadFile(filepath.Join(dataDir, "ownchat.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{2, 3} {
		t.Run(fmt.Sprintf("record %d removed", seq), func(t *testing.T) {
			cdir := filepath.Join(t.TempDir(), "data")
			if err := os.MkdirAll(cdir, 0o700); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(cdir, "ownchat.db")
			if err := os.WriteFile(db, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			bdb, err := bolt.Open(db, 0o600, &bolt.Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = bdb.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("audit"))
				if b == nil {
					return errors.New("no audit bucket")
				}
				key := make([]byte, 8)
				for i := range 8 {
					key[i] = byte(seq >> (56 - 8*i))
				}
				if b.Get(key) == nil {
					return fmt.Errorf("no audit record %d", seq)
				}
				return b.Delete(key)
			})
			if cerr := bdb.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			ccfg := filepath.Join(filepath.Dir(cdir), "xmppd.toml")
			if err := os.WriteFile(ccfg, []byte(a6ConfigText(cdir, FreePort(), FreePort(), a6Users, "[archive]\nenabled = true\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := ctlRun(t, ccfg, "audit", "verify")
			if code != 1 || !strings.Contains(out, fmt.Sprintf("record %d is missing", seq)) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
				t.Errorf("verify with record %d removed: exit %d\nstdout: %s\nstderr: %s", seq, code, out, errOut)
			}
		})
	}
}
