package xmppd

import (
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// rosterVer returns the ver of a roster result, or ok false for the empty
// result of §2.6.3.
func rosterVer(t *testing.T, el *wire.Element) (ver string, ok bool) {
	t.Helper()
	q := el.Child(nsRoster, "query")
	if q == nil {
		if len(el.Nodes) != 0 {
			t.Fatalf("roster result without query but with content: %s", el)
		}
		return "", false
	}
	if !q.HasAttr("ver") {
		t.Fatalf("roster result without ver (RFC 6121 §2.6.3): %s", el)
	}
	return q.Attr("ver"), true
}

// TestRosterVersioningAcrossSessions verifies RFC 6121 §2.6 where the
// roster test does not: the stream feature, versions that outlive a
// session, what a client without a cache or with an unknown version gets,
// and changes that do not come from the user (a contact's answer, the
// directory's shared roster).
func TestRosterVersioningAcrossSessions(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t, "alice/features")
	c.header()
	c.send(plainAuth("", "alice", "alice-pw"))
	c.expectSuccess()
	if feats := c.restart(); feats.Child(nsRosterVer, "ver") == nil {
		t.Fatalf("no roster versioning feature (§2.6.1): %s", feats)
	}
	c.nc.Close()

	a1 := ts.login(t, "alice", "a1")
	v1, ok := rosterVer(t, a1.rosterGet(""))
	if !ok || v1 == "" {
		t.Fatal("no version on the first roster")
	}
	// §2.6.2: ver='' means "no cache": the whole roster.
	a1.send(`<iq type='get' id='empty-ver'><query xmlns='jabber:iq:roster' ver=''/></iq>`)
	if v, ok := rosterVer(t, a1.waitFor("roster", is("iq", "id", "empty-ver"))); !ok || v != v1 {
		t.Fatalf("roster for ver='': %v %q", ok, v)
	}
	// An unknown version gets the whole roster too.
	if v, ok := rosterVer(t, a1.rosterGet("no-such-version")); !ok || v != v1 {
		t.Fatalf("unknown version: %v %q", ok, v)
	}
	a1.nc.Close()

	// The version outlives the session: a client's cache stays valid.
	a2 := ts.login(t, "alice", "a2")
	if _, ok := rosterVer(t, a2.rosterGet(v1)); ok {
		t.Fatal("a new session with the current version got the whole roster")
	}

	// A contact's answer changes the roster, the push carries the new
	// version, and the old version now gets the whole roster.
	dave := ts.online(t, "dave", "d", 0)
	a2.send(`<presence type='subscribe' to='dave@example.com'/>`)
	push := a2.waitFor("push ask", isRosterPush("dave@example.com", "none", "subscribe"))
	a2.send(`<iq type='result' id='` + push.Attr("id") + `'/>`)
	dave.waitFor("subscription request", is("presence", "type", "subscribe"))
	dave.send(`<presence type='subscribed' to='alice@example.com'/>`)
	push = a2.waitFor("push to", isRosterPush("dave@example.com", "to", ""))
	v2 := push.Child(nsRoster, "query").Attr("ver")
	if v2 == "" || v2 == v1 {
		t.Fatalf("push version %q after %q", v2, v1)
	}
	el := a2.rosterGet(v1)
	if v, ok := rosterVer(t, el); !ok || v != v2 || rosterItems(t, el)["dave@example.com"] == nil {
		t.Fatalf("roster for the old version: %s", el)
	}
	if _, ok := rosterVer(t, a2.rosterGet(v2)); ok {
		t.Fatal("the pushed version is not current")
	}

	// The shared roster is part of the version: a colleague renamed in
	// the directory changes it. (fakeDir lists colleagues in map order,
	// and the version hashes them in the order given, so this test keeps
	// to one colleague; staticdir's order is stable.)
	ts.dir.mu.Lock()
	u := ts.dir.users["bob"]
	u.display = "Robert Brown"
	ts.dir.users["bob"] = u
	ts.dir.mu.Unlock()
	el = a2.rosterGet(v2)
	v3, ok := rosterVer(t, el)
	if !ok || v3 == v2 || rosterItems(t, el)["bob@example.com"].Attr("name") != "Robert Brown" {
		t.Fatalf("roster after a directory change, asked with the old version: %s", el)
	}
	if _, ok := rosterVer(t, a2.rosterGet(v3)); ok {
		t.Fatal("the version after the directory change is not stable")
	}
}
