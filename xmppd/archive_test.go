package xmppd

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ownchat/ownchat/mam"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

func withArchive(s *Server) { s.Archive = ArchiveSettings{Enabled: true, MaxPage: 50} }

const (
	aliceBare = "alice@" + testDomain
	bobBare   = "bob@" + testDomain
)

// stanzaIDs lists the XEP-0359 stanza-ids of a message as "by id".
func stanzaIDs(el *wire.Element) []string {
	var out []string
	for _, n := range el.Nodes {
		if n.El != nil && n.El.Space == nsSID && n.El.Local == "stanza-id" {
			out = append(out, n.El.Attr("by")+" "+n.El.Attr("id"))
		}
	}
	return out
}

// archived reads owner's whole archive from the store.
func archived(t *testing.T, ts *testServer, owner string) []store.ArchiveRecord {
	t.Helper()
	if err := ts.Store.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	p, err := ts.Store.QueryArchive(store.ArchiveQuery{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	return p.Records
}

// mamQuery runs a query and returns the forwarded messages' result
// elements and the fin, or the error IQ as fin.
func (c *client) mamQuery(payload string) (results []*wire.Element, fin *wire.Element) {
	c.tb.Helper()
	id := c.id()
	c.send(`<iq type='set' id='` + id + `'><query xmlns='urn:xmpp:mam:2' queryid='` + id + `'>` + payload + `</query></iq>`)
	var other []*wire.Element
	defer func() { c.pending = append(other, c.pending...) }()
	for {
		el := c.stanza()
		if el.Local == "iq" && el.Attr("id") == id {
			return results, el
		}
		if r := el.Child(mam.NS, "result"); r != nil && r.Attr("queryid") == id {
			if el.Attr("from") == "" || el.Attr("to") != c.jid {
				c.tb.Fatalf("result addresses: %s", el)
			}
			results = append(results, r)
			continue
		}
		other = append(other, el)
	}
}

func forwardedBody(r *wire.Element) string {
	m := r.Child(mam.NSForward, "forwarded").Child(nsClient, "message")
	if m == nil {
		return ""
	}
	return bodyText(m)
}

func rsm(fin *wire.Element, name string) string {
	set := fin.Child(mam.NS, "fin").Child(mam.NSRSM, "set")
	if e := set.Child(mam.NSRSM, name); e != nil {
		return e.Text()
	}
	return ""
}

// TestArchiveBothSides covers the archive point: a chat message between two
// online users is in both archives, the recipient's copy carries the
// recipient's stanza-id equal to the archive id, a forged stanza-id is
// stripped, and MAM returns it to both.
func TestArchiveBothSides(t *testing.T) {
	ts := newTestServer(t, withArchive)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	bob.drain()

	alice.send(`<message type='chat' to='` + bobBare + `' id='m1'><body>hello</body>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='` + bobBare + `' id='forged'/>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='other.example' id='keep'/></message>`)
	m := bob.expect("the message", hasBody("hello"))
	ids := stanzaIDs(m)
	bobRecs := archived(t, ts, bobBare)
	aliceRecs := archived(t, ts, aliceBare)
	if len(bobRecs) != 1 || len(aliceRecs) != 1 {
		t.Fatalf("archives: bob %d alice %d records, want 1 each", len(bobRecs), len(aliceRecs))
	}
	want := []string{"other.example keep", bobBare + " " + bobRecs[0].ID.String()}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("stanza-ids %q, want %q", ids, want)
	}
	if r := bobRecs[0]; r.With != aliceBare || r.Outgoing || r.Kind != store.KindChat {
		t.Fatalf("bob's record %+v", r)
	}
	if r := aliceRecs[0]; r.With != bobBare || !r.Outgoing || r.ID == bobRecs[0].ID {
		t.Fatalf("alice's record %+v", r)
	}

	for _, c := range []*client{alice, bob} {
		res, fin := c.mamQuery("")
		if fin.Attr("type") != "result" || len(res) != 1 || forwardedBody(res[0]) != "hello" {
			t.Fatalf("%s: MAM: %d results, fin %s", c.name, len(res), fin)
		}
		if fin.Child(mam.NS, "fin").Attr("complete") != "true" || rsm(fin, "count") != "1" {
			t.Fatalf("%s: fin %s", c.name, fin)
		}
		fm := res[0].Child(mam.NSForward, "forwarded").Child(nsClient, "message")
		if fm.Attr("from") != alice.jid || fm.Attr("to") != bobBare {
			t.Fatalf("forwarded %s", fm)
		}
	}
	_, fin := bob.mamQuery("")
	if got := rsm(fin, "first"); got != bobRecs[0].ID.String() {
		t.Fatalf("bob's result id %s, want the stanza-id %s", got, bobRecs[0].ID)
	}

	// Not archived: chat states alone, headlines, errors.
	alice.send(`<message type='chat' to='` + bobBare + `'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	alice.send(`<message type='headline' to='` + bobBare + `'><body>news</body></message>`)
	alice.send(`<message type='error' to='` + bobBare + `'><body>err</body></message>`)
	alice.send(`<message type='chat' to='` + bobBare + `'><body>quiet</body><no-store xmlns='urn:xmpp:hints'/></message>`)
	alice.drain()
	bob.drain()
	if n := len(archived(t, ts, bobBare)); n != 1 {
		t.Fatalf("bob's archive has %d records, want still 1", n)
	}

	// Disco: the account advertises MAM and stanza-ids.
	r := alice.iq("get", aliceBare, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	for _, f := range []string{mam.NS, mam.NSExtended, nsSID} {
		if !hasFeature(r, f) {
			t.Fatalf("account disco lacks %s: %s", f, r)
		}
	}
}

// TestArchiveOffline: the offline copy and both archive records are written
// together and the delivered offline message carries the archive id.
func TestArchiveOffline(t *testing.T) {
	ts := newTestServer(t, withArchive)
	alice := ts.online(t, "alice", "a", 0)
	alice.send(`<message type='chat' to='` + bobBare + `'><body>while you were out</body></message>`)
	alice.drain()
	recs, err := ts.Store.QueryArchive(store.ArchiveQuery{Owner: bobBare}) // no flush: same transaction
	if err != nil || len(recs.Records) != 1 {
		t.Fatalf("bob's archive: %v %v", recs.Records, err)
	}
	bob := ts.online(t, "bob", "b", 0)
	m := bob.waitFor("offline message", hasBody("while you were out"))
	if got := stanzaIDs(m); len(got) != 1 || got[0] != bobBare+" "+recs.Records[0].ID.String() {
		t.Fatalf("stanza-ids %q, want bob's archive id %s", got, recs.Records[0].ID)
	}
	if n := len(archived(t, ts, aliceBare)); n != 1 {
		t.Fatalf("alice's archive has %d records", n)
	}
}

// TestArchiveCarbonStanzaID: the sender's other resources get the sent
// carbon with the sender's stanza-id (by the sender's bare JID).
func TestArchiveCarbonStanzaID(t *testing.T) {
	ts := newTestServer(t, withArchive)
	a1 := ts.online(t, "alice", "one", 0)
	a2 := ts.online(t, "alice", "two", 0)
	bob := ts.online(t, "bob", "b", 0)
	a2.enableCarbons(true)
	a1.drain()
	a2.drain()
	a1.send(`<message type='chat' to='` + bob.jid + `'><body>copy me</body></message>`)
	bob.waitFor("message", hasBody("copy me"))
	fw := carbonOf(t, a2.waitFor("sent carbon", isCarbon), "sent", aliceBare, a2.jid)
	recs := archived(t, ts, aliceBare)
	if len(recs) != 1 {
		t.Fatalf("alice's archive: %d", len(recs))
	}
	if got := stanzaIDs(fw); len(got) != 1 || got[0] != aliceBare+" "+recs[0].ID.String() {
		t.Fatalf("sent carbon stanza-ids %q, want alice's id %s", got, recs[0].ID)
	}
}

// TestArchivePaging pages through 25 messages forwards and backwards and
// checks the XEP-0313 errors.
func TestArchivePaging(t *testing.T) {
	ts := newTestServer(t, withArchive)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	carol := ts.online(t, "carol", "c", 0)
	const n = 25
	for i := range n {
		alice.send(fmt.Sprintf(`<message type='chat' to='%s'><body>m%02d</body></message>`, bobBare, i))
	}
	alice.drain() // alice's messages are handled before carol's
	carol.send(`<message type='chat' to='` + aliceBare + `'><body>from carol</body></message>`)
	carol.drain()
	alice.drain()
	bob.drain()

	var got []string
	after := ""
	for page := 0; ; page++ {
		set := `<set xmlns='http://jabber.org/protocol/rsm'><max>10</max>` + after + `</set>`
		res, fin := alice.mamQuery(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='with'><value>` + bobBare + `</value></field></x>` + set)
		if fin.Attr("type") != "result" {
			t.Fatalf("page %d: %s", page, fin)
		}
		for _, r := range res {
			got = append(got, forwardedBody(r))
		}
		if rsm(fin, "count") != fmt.Sprint(n) {
			t.Fatalf("count %q", rsm(fin, "count"))
		}
		if fin.Child(mam.NS, "fin").Attr("complete") == "true" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		after = `<after>` + rsm(fin, "last") + `</after>`
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("m%02d", i))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("forward pages: %v", got)
	}

	got = nil
	before := ""
	for {
		res, fin := alice.mamQuery(`<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before>` + before + `</before></set>`)
		var page []string
		for _, r := range res {
			page = append(page, forwardedBody(r))
		}
		got = append(page, got...)
		if fin.Child(mam.NS, "fin").Attr("complete") == "true" {
			break
		}
		before = rsm(fin, "first")
	}
	if len(got) != n+1 || got[n] != "from carol" || strings.Join(got[:n], " ") != strings.Join(want, " ") {
		t.Fatalf("backward pages: %v", got)
	}

	// Flip-page: same page, newest first.
	res, _ := alice.mamQuery(`<set xmlns='http://jabber.org/protocol/rsm'><max>3</max></set><flip-page/>`)
	if len(res) != 3 || forwardedBody(res[0]) != "m02" || forwardedBody(res[2]) != "m00" {
		t.Fatalf("flipped page: %d results", len(res))
	}
	// Count only.
	res, fin := alice.mamQuery(`<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>`)
	if len(res) != 0 || rsm(fin, "count") != fmt.Sprint(n+1) {
		t.Fatalf("max 0: %d results, %s", len(res), fin)
	}

	for _, tt := range []struct{ payload, cond string }{
		{`<set xmlns='http://jabber.org/protocol/rsm'><after>0000000000000001</after></set>`, "item-not-found"},
		{`<set xmlns='http://jabber.org/protocol/rsm'><before>nonsense</before></set>`, "item-not-found"},
		{`<x xmlns='jabber:x:data' type='submit'><field var='start'><value>soon</value></field></x>`, "bad-request"},
		{`<x xmlns='jabber:x:data' type='submit'><field var='fulltext'><value>x</value></field></x>`, "feature-not-implemented"},
	} {
		_, fin := alice.mamQuery(tt.payload)
		if !isStanzaError("iq", tt.cond)(fin) {
			t.Fatalf("%s: want %s, got %s", tt.payload, tt.cond, fin)
		}
	}

	// Metadata: the first and the last record.
	recs := archived(t, ts, aliceBare)
	md := alice.iq("get", "", `<metadata xmlns='urn:xmpp:mam:2'/>`).Child(mam.NS, "metadata")
	if md == nil || md.Child(mam.NS, "start").Attr("id") != recs[0].ID.String() || md.Child(mam.NS, "end").Attr("id") != recs[len(recs)-1].ID.String() {
		t.Fatalf("metadata %v", md)
	}
	// The form.
	if f := alice.iq("get", "", `<query xmlns='urn:xmpp:mam:2'/>`); f.Child(mam.NS, "query").Child("jabber:x:data", "x") == nil {
		t.Fatalf("form: %s", f)
	}
}

// TestArchivePrefs: preferences decide per owner, and compliance mode
// refuses opting out and archives no-store messages.
func TestArchivePrefs(t *testing.T) {
	t.Run("user choice", func(t *testing.T) {
		ts := newTestServer(t, withArchive)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		if r := bob.iq("get", "", `<prefs xmlns='urn:xmpp:mam:2'/>`); r.Child(mam.NS, "prefs").Attr("default") != "always" {
			t.Fatalf("default prefs: %s", r)
		}
		r := bob.iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid>`+aliceBare+`</jid></never></prefs>`)
		if r.Attr("type") != "result" {
			t.Fatalf("set prefs: %s", r)
		}
		if v, _ := ts.Store.Get(prefsBucket, bobBare); v == nil {
			t.Fatal("prefs not stored under the bare JID")
		}
		bob.drain()
		alice.send(`<message type='chat' to='` + bobBare + `'><body>off the record</body></message>`)
		m := bob.expect("message", hasBody("off the record"))
		if ids := stanzaIDs(m); len(ids) != 0 {
			t.Fatalf("stanza-id for an unarchived message: %v", ids)
		}
		if len(archived(t, ts, bobBare)) != 0 || len(archived(t, ts, aliceBare)) != 1 {
			t.Fatal("bob's never list not applied, or alice's archive affected")
		}
		if r := bob.iq("get", "", `<prefs xmlns='urn:xmpp:mam:2'/>`); !strings.Contains(r.String(), aliceBare) {
			t.Fatalf("prefs get: %s", r)
		}
	})
	t.Run("roster default", func(t *testing.T) {
		ts := newTestServer(t, withArchive)
		bob := ts.online(t, "bob", "b", 0)
		requireResult(t, "prefs", bob.iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='roster'/>`))
		// dave is in bob's personal roster; alice is a colleague (both in
		// Engineering); carol is neither.
		requireResult(t, "roster add", bob.iq("set", "", `<query xmlns='jabber:iq:roster'><item jid='dave@`+testDomain+`'/></query>`))
		bob.drain()
		for _, u := range []string{"alice", "carol", "dave"} {
			c := ts.online(t, u, "x", 0)
			c.send(`<message type='chat' to='` + bobBare + `'><body>from ` + u + `</body></message>`)
			bob.waitFor("message from "+u, hasBody("from "+u))
		}
		var with []string
		for _, r := range archived(t, ts, bobBare) {
			with = append(with, r.With)
		}
		if want := []string{"alice@" + testDomain, "dave@" + testDomain}; strings.Join(with, " ") != strings.Join(want, " ") {
			t.Fatalf("bob's archive with %v, want %v", with, want)
		}
	})
	t.Run("forced", func(t *testing.T) {
		ts := newTestServer(t, func(s *Server) { withArchive(s); s.Archive.Forced = true })
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		for _, p := range []string{
			`<prefs xmlns='urn:xmpp:mam:2' default='never'/>`,
			`<prefs xmlns='urn:xmpp:mam:2' default='roster'/>`,
			`<prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid>` + aliceBare + `</jid></never></prefs>`,
		} {
			r := bob.iq("set", "", p)
			if !isStanzaError("iq", "not-allowed")(r) || !strings.Contains(r.String(), "archiving is required by company policy") {
				t.Fatalf("%s: %s", p, r)
			}
		}
		if r := bob.iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='always'/>`); r.Attr("type") != "result" {
			t.Fatalf("always: %s", r)
		}
		bob.drain()
		alice.send(`<message type='chat' to='` + bobBare + `'><body>kept</body><no-store xmlns='urn:xmpp:hints'/></message>`)
		bob.expect("message", hasBody("kept"))
		if len(archived(t, ts, bobBare)) != 1 || len(archived(t, ts, aliceBare)) != 1 {
			t.Fatal("compliance mode did not archive a no-store message")
		}
	})
}

// TestArchiveDisabled: nothing advertised, nothing archived, queries get
// feature-not-implemented.
func TestArchiveDisabled(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	bob.drain()
	alice.send(`<message type='chat' to='` + bobBare + `'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='` + bobBare + `' id='x'/></message>`)
	bob.expect("message", hasBody("hi"))
	if n := len(archived(t, ts, bobBare)); n != 0 {
		t.Fatalf("archived %d with the archive off", n)
	}
	for _, to := range []string{aliceBare, testDomain} {
		r := alice.iq("get", to, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if hasFeature(r, mam.NS) || hasFeature(r, nsSID) {
			t.Fatalf("%s advertises the archive: %s", to, r)
		}
	}
	if _, fin := alice.mamQuery(""); !isStanzaError("iq", "feature-not-implemented")(fin) {
		t.Fatalf("query: %s", fin)
	}
}

// TestArchiveSkip: Skip (retention "none") keeps one side's archive empty,
// is asked once per owner, and asked again after ArchivePolicyChanged.
func TestArchiveSkip(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	skip := func(owner string, room bool, groups []string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked[owner]++
		return owner == bobBare && len(groups) == 1 && groups[0] == "Engineering" && !room
	}
	ts := newTestServer(t, func(s *Server) { withArchive(s); s.Archive.Skip = skip })
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	bob.drain()
	for range 3 {
		alice.send(`<message type='chat' to='` + bobBare + `'><body>x</body></message>`)
		if ids := stanzaIDs(bob.expect("message", hasBody("x"))); len(ids) != 0 {
			t.Fatalf("stanza-id from a skipped archive: %v", ids)
		}
	}
	if len(archived(t, ts, bobBare)) != 0 || len(archived(t, ts, aliceBare)) != 3 {
		t.Fatal("Skip not applied per owner")
	}
	mu.Lock()
	if asked[bobBare] != 1 || asked[aliceBare] != 1 {
		t.Fatalf("Skip asked %v, want once per owner", asked)
	}
	mu.Unlock()
	ts.ArchivePolicyChanged()
	alice.send(`<message type='chat' to='` + bobBare + `'><body>x</body></message>`)
	bob.expect("message", hasBody("x"))
	mu.Lock()
	if asked[bobBare] != 2 {
		t.Fatalf("Skip not asked again after a policy change: %v", asked)
	}
	mu.Unlock()
	room := "room@conference." + testDomain
	archivedRoom := ts.RoomArchived(room) && ts.RoomArchived(room)
	mu.Lock()
	defer mu.Unlock()
	if !archivedRoom || asked[room] != 1 {
		t.Fatalf("room: %v", asked)
	}
}

// BenchmarkRouteMessageArchive is BenchmarkRouteMessage with the archive
// off and on (both parties' archives written through the group-commit
// writer): issue 6 wants on to cost less than 20 % of throughput.
func BenchmarkRouteMessageArchive(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchRouteMessage(b) })
	b.Run("on", func(b *testing.B) {
		benchRouteMessage(b, withArchive)
	})
}
