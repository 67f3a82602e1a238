package xmppd

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// cardDir is a searchable directory for the protocol tests: the matching
// itself is tested with real data in ldapsync and staticdir, and end to
// end in e2e/directory_test.go.
type cardDir struct {
	mu    sync.Mutex
	cards []PersonCard
	asked []map[string]string
}

func (d *cardDir) Search(q map[string]string, max int) []PersonCard {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked = append(d.asked, q)
	var out []PersonCard
	for _, c := range d.cards {
		if v := q["name"]; v != "" && !strings.Contains(strings.ToLower(c.DisplayName), strings.ToLower(v)) {
			continue
		}
		if v := q["department"]; v != "" && !strings.Contains(strings.ToLower(c.Department), strings.ToLower(v)) {
			continue
		}
		out = append(out, c)
		if len(out) == max {
			break
		}
	}
	return out
}

func searchServer(t *testing.T, fields ...string) (*testServer, *cardDir) {
	cd := &cardDir{cards: []PersonCard{
		{Username: "alice", DisplayName: "Alice Anderson", Mail: "alice@corp.example", Department: "Engineering", Title: "CTO"},
		{Username: "carol", DisplayName: "Carol Clark", Mail: "carol@corp.example", Department: "Sales"},
	}}
	for i := range 60 {
		cd.cards = append(cd.cards, PersonCard{Username: fmt.Sprintf("temp%02d", i), DisplayName: fmt.Sprintf("Temp Worker %02d", i), Department: "Temps"})
	}
	ts := newTestServer(t, func(s *Server) { s.EnableSearch(cd, fields) })
	return ts, cd
}

// searchFormVars returns the var attributes of the fields of a data form.
func searchFormVars(x *wire.Element) []string {
	var out []string
	for _, n := range x.Nodes {
		if n.El != nil && n.El.Local == "field" {
			out = append(out, n.El.Attr("var"))
		}
	}
	return out
}

func submit(fields map[string]string) string {
	var b strings.Builder
	b.WriteString(`<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'>`)
	b.WriteString(`<field var='FORM_TYPE' type='hidden'><value>jabber:iq:search</value></field>`)
	for k, v := range fields {
		fmt.Fprintf(&b, `<field var='%s'><value>%s</value></field>`, k, v)
	}
	b.WriteString(`</x></query>`)
	return b.String()
}

// searchItems returns the items of a result form as "var=value" lists.
func searchItems(t *testing.T, r *wire.Element) (reported []string, items []string) {
	t.Helper()
	x := r.Child(nsJabberSearch, "query").Child(nsSearchXData, "x")
	if x == nil || x.Attr("type") != "result" {
		t.Fatalf("no result form: %s", r)
	}
	reported = searchFormVars(x.Child(nsSearchXData, "reported"))
	for _, n := range x.Nodes {
		if n.El == nil || n.El.Local != "item" {
			continue
		}
		var kv []string
		for _, f := range n.El.Nodes {
			if f.El != nil {
				kv = append(kv, f.El.Attr("var")+"="+f.El.Child(nsSearchXData, "value").Text())
			}
		}
		items = append(items, strings.Join(kv, " "))
	}
	return reported, items
}

func TestSearchDiscovery(t *testing.T) {
	ts, _ := searchServer(t, "name", "department")
	alice := ts.login(t, "alice", "a")
	r := alice.iq("get", testDomain, `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
	found := false
	for _, n := range r.Child(nsDiscoItems, "query").Nodes {
		found = found || n.El != nil && n.El.Attr("jid") == "directory."+testDomain
	}
	if !found {
		t.Fatalf("directory service not in the domain's disco#items: %s", r)
	}
	r = alice.iq("get", "directory."+testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	q := r.Child(nsDiscoInfo, "query")
	if id := q.Child(nsDiscoInfo, "identity"); id == nil || id.Attr("category") != "directory" || id.Attr("type") != "user" {
		t.Fatalf("identity: %s", r)
	}
	feats := map[string]bool{}
	for _, n := range q.Nodes {
		if n.El != nil && n.El.Local == "feature" {
			feats[n.El.Attr("var")] = true
		}
	}
	if !feats[nsJabberSearch] || !feats[nsSearchXData] {
		t.Fatalf("features: %s", r)
	}
	r = alice.iq("get", "nobody@directory."+testDomain, `<query xmlns='jabber:iq:search'/>`)
	if c := stanzaErrorCondition(r); c != "item-not-found" {
		t.Fatalf("an address under the service: %s", r)
	}
}

func TestSearchForm(t *testing.T) {
	tests := []struct {
		fields []string
		want   string
	}{
		{[]string{"name", "department", "title"}, "FORM_TYPE name department title"},
		{[]string{"email", "name"}, "FORM_TYPE name email"}, // form order is fixed
		{[]string{"department"}, "FORM_TYPE department"},
	}
	for _, tc := range tests {
		ts, _ := searchServer(t, tc.fields...)
		alice := ts.login(t, "alice", "a")
		r := alice.iq("get", "directory."+testDomain, `<query xmlns='jabber:iq:search'/>`)
		if r.Attr("type") != "result" || r.Attr("from") != "directory."+testDomain {
			t.Fatalf("get: %s", r)
		}
		x := r.Child(nsJabberSearch, "query").Child(nsSearchXData, "x")
		if x == nil || x.Attr("type") != "form" {
			t.Fatalf("no form: %s", r)
		}
		if got := strings.Join(searchFormVars(x), " "); got != tc.want {
			t.Errorf("fields %v: form has %q, want %q", tc.fields, got, tc.want)
		}
		if !strings.Contains(x.Child(nsSearchXData, "instructions").Text(), "50") {
			t.Errorf("the instructions do not state the limit: %s", x)
		}
	}
}

func TestSearchResults(t *testing.T) {
	ts, cd := searchServer(t, "name", "department")
	alice := ts.login(t, "alice", "a")
	to := "directory." + testDomain

	r := alice.iq("set", to, submit(map[string]string{"name": "CLARK"}))
	reported, items := searchItems(t, r)
	if got := strings.Join(reported, " "); got != "jid name department" {
		t.Errorf("reported %q", got)
	}
	// Mail and title are not configured: never sent.
	if len(items) != 1 || items[0] != "jid=carol@example.com name=Carol Clark department=Sales" {
		t.Errorf("items %q", items)
	}

	// At most 50; the directory is asked for one more to know.
	r = alice.iq("set", to, submit(map[string]string{"department": "temps"}))
	_, items = searchItems(t, r)
	title := r.Child(nsJabberSearch, "query").Child(nsSearchXData, "x").Child(nsSearchXData, "title").Text()
	if len(items) != MaxSearchResults || !strings.Contains(title, "narrow") {
		t.Errorf("%d items, title %q", len(items), title)
	}
	cd.mu.Lock()
	last := cd.asked[len(cd.asked)-1]
	cd.mu.Unlock()
	if len(last) != 1 || last["department"] != "temps" {
		t.Errorf("directory asked %v", last)
	}

	for _, tc := range []struct {
		name, payload, cond string
	}{
		{"a field not configured", submit(map[string]string{"email": "alice"}), "not-acceptable"},
		{"no terms", submit(map[string]string{"name": "  "}), "not-acceptable"},
		{"no form", `<query xmlns='jabber:iq:search'><nick>al</nick></query>`, "bad-request"},
		{"other namespace", `<query xmlns='jabber:iq:version'/>`, "service-unavailable"},
	} {
		r := alice.iq("set", to, tc.payload)
		if c := stanzaErrorCondition(r); c != tc.cond {
			t.Errorf("%s: %s, want %s: %s", tc.name, c, tc.cond, r)
		}
	}
	cd.mu.Lock()
	n := len(cd.asked)
	cd.mu.Unlock()
	if n != 2 {
		t.Errorf("refused searches reached the directory: %d searches", n)
	}
}

// TestSearchRemovedUser: a user the directory no longer has (their session
// ends at the next sync) cannot search meanwhile.
func TestSearchRemovedUser(t *testing.T) {
	ts, _ := searchServer(t, "name")
	carol := ts.login(t, "carol", "c")
	ts.dir.mu.Lock()
	delete(ts.dir.users, "carol")
	ts.dir.mu.Unlock()
	r := carol.iq("set", "directory."+testDomain, submit(map[string]string{"name": "a"}))
	if c := stanzaErrorCondition(r); c != "forbidden" {
		t.Fatalf("got %s: %s", c, r)
	}
}

func TestSearchDisabled(t *testing.T) {
	ts, _ := searchServer(t) // search_fields = []
	alice := ts.login(t, "alice", "a")
	r := alice.iq("get", "directory."+testDomain, `<query xmlns='jabber:iq:search'/>`)
	if c := stanzaErrorCondition(r); c != "remote-server-not-found" {
		t.Fatalf("got %s: %s", c, r)
	}
}
