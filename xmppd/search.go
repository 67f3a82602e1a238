package xmppd

import (
	"strconv"
	"strings"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0055 Jabber Search with XEP-0004 data forms, over the directory.
//
// The service is a subdomain, directory.<domain>, listed in the domain's
// disco#items with the identity category "directory", type "user", as
// ejabberd's vjud.<domain> is: that is what Gajim's and Psi+'s service
// discovery offer a "Search" button for. Searches read the directory
// backend's snapshot, never the LDAP server: a search costs a scan of
// memory, not a query per keystroke against a domain controller.

const (
	nsJabberSearch = "jabber:iq:search"
	nsSearchXData  = "jabber:x:data"

	// SearchSubdomain is the label of the search service's address.
	SearchSubdomain = "directory"
	// MaxSearchResults bounds one search's answer (and says so in the
	// form): a directory is looked up, not exported.
	MaxSearchResults = 50
)

// PersonCard is what a directory search may show of a person. Only the
// fields the configuration allows are sent.
type PersonCard struct {
	Username    string
	DisplayName string
	Mail        string
	Department  string
	Title       string
}

// DirectorySearcher is implemented by directories that can be searched
// (XEP-0055). Search returns up to max people matching every non-empty
// term of q as a case-insensitive substring; the keys are search field
// names ("name", "email", "department", "title"), only those enabled.
type DirectorySearcher interface {
	Search(q map[string]string, max int) []PersonCard
}

// searchField is one field of the search form.
type searchField struct {
	name, label string
	value       func(p *PersonCard) string
}

var searchFieldDefs = []searchField{
	{"name", "Name", func(p *PersonCard) string {
		if p.DisplayName != "" {
			return p.DisplayName
		}
		return p.Username
	}},
	{"email", "Email", func(p *PersonCard) string { return p.Mail }},
	{"department", "Department", func(p *PersonCard) string { return p.Department }},
	{"title", "Title", func(p *PersonCard) string { return p.Title }},
}

// SearchFieldNames lists the field names EnableSearch accepts.
func SearchFieldNames() []string {
	out := make([]string, len(searchFieldDefs))
	for i, f := range searchFieldDefs {
		out[i] = f.name
	}
	return out
}

// directorySearch is the directory.<domain> service.
type directorySearch struct {
	s      *Server
	d      DirectorySearcher
	jid    string
	fields []searchField // enabled, in form order
}

// EnableSearch serves XEP-0055 search of d at directory.<domain> for the
// given fields (a subset of SearchFieldNames, data minimisation: only
// these can be searched and are shown). No fields: no service. Call
// before Serve.
func (s *Server) EnableSearch(d DirectorySearcher, fields []string) {
	ds := &directorySearch{s: s, d: d, jid: SearchSubdomain + "." + s.Domain}
	for _, f := range searchFieldDefs {
		for _, want := range fields {
			if strings.EqualFold(want, f.name) {
				ds.fields = append(ds.fields, f)
				break
			}
		}
	}
	if d == nil || len(ds.fields) == 0 {
		return
	}
	s.AddComponent(ds.jid, "User directory", ds)
}

// RouteStanza answers the stanzas the core routes to the service. Only
// bound sessions of users the directory still knows may search (a user
// removed since the last sync keeps a session until it is closed).
func (ds *directorySearch) RouteStanza(el *wire.Element) {
	s := ds.s
	a, conn, ok := s.resolve(el.Attr("from"))
	if !ok || a.kind != addrLocalFull || conn == nil {
		return
	}
	typ := el.Attr("type")
	if typ == "error" || el.Local == "presence" || el.Local == "iq" && typ == "result" {
		return
	}
	if el.Local != "iq" {
		ds.reply(errorReply(el, ds.jid, errServiceUnavailable))
		return
	}
	if el.Attr("to") != ds.jid {
		// Addresses under the service (someone@directory.<domain>) do
		// not exist.
		ds.reply(errorReply(el, el.Attr("to"), errItemNotFound))
		return
	}
	q := el.FirstChild()
	if q == nil {
		ds.reply(errorReply(el, ds.jid, errBadRequest))
		return
	}
	if _, exists := s.Directory.Person(a.user); !exists {
		ds.reply(errorReply(el, ds.jid, errForbidden))
		return
	}
	switch {
	case q.Space == nsDiscoInfo && typ == "get":
		ds.discoInfo(el, q)
	case q.Space == nsDiscoItems && typ == "get":
		r, _ := queryResult(el, nsDiscoItems)
		ds.reply(ds.stamp(r))
	case q.Space == nsJabberSearch && q.Local == "query" && typ == "get":
		ds.reply(ds.stamp(ds.form(el)))
	case q.Space == nsJabberSearch && q.Local == "query" && typ == "set":
		ds.search(el, q)
	default:
		ds.reply(errorReply(el, ds.jid, errServiceUnavailable))
	}
}

// reply answers the asking session directly: the answer must reach it
// even when the directory no longer has its user (forbidden).
func (ds *directorySearch) reply(r *wire.Element) {
	if c := ds.s.router.lookupFull(r.Attr("to")); c != nil {
		deliver(c, r.AppendXML(make([]byte, 0, 512), nsClient))
	}
}

// stamp addresses a result built by iqResult from the service.
func (ds *directorySearch) stamp(r *wire.Element) *wire.Element {
	r.SetAttr("from", ds.jid)
	return r
}

func (ds *directorySearch) discoInfo(el, q *wire.Element) {
	if q.Attr("node") != "" {
		ds.reply(errorReply(el, ds.jid, errItemNotFound))
		return
	}
	r, rq := queryResult(el, nsDiscoInfo)
	rq.Add(elem(nsDiscoInfo, "identity", "category", "directory", "type", "user", "name", "User directory"))
	for _, f := range []string{nsDiscoInfo, nsDiscoItems, nsJabberSearch, nsSearchXData} {
		rq.Add(elem(nsDiscoInfo, "feature", "var", f))
	}
	ds.reply(ds.stamp(r))
}

func textEl(space, local, text string) *wire.Element {
	return (&wire.Element{Space: space, Local: local}).AddText(text)
}

// form answers a get with the search form (XEP-0055 §3.1).
func (ds *directorySearch) form(el *wire.Element) *wire.Element {
	r, q := queryResult(el, nsJabberSearch)
	q.RemoveAttr("node")
	instr := "Fill in one or more fields; each matches any part of the value, in any case. At most " +
		strconv.Itoa(MaxSearchResults) + " people are shown: narrow the search to find more."
	q.Add(textEl(nsJabberSearch, "instructions", instr))
	x := elem(nsSearchXData, "x", "type", "form")
	x.Add(textEl(nsSearchXData, "title", "Search the company directory"), textEl(nsSearchXData, "instructions", instr))
	x.Add(elem(nsSearchXData, "field", "type", "hidden", "var", "FORM_TYPE").Add(textEl(nsSearchXData, "value", nsJabberSearch)))
	for _, f := range ds.fields {
		x.Add(elem(nsSearchXData, "field", "type", "text-single", "var", f.name, "label", f.label))
	}
	q.Add(x)
	return r
}

// search answers a submitted form (XEP-0055 §3.2) with a result form:
// the reported fields, then one item per person.
func (ds *directorySearch) search(el, q *wire.Element) {
	x := q.Child(nsSearchXData, "x")
	if x == nil || x.Attr("type") != "submit" {
		ds.reply(errorReply(el, ds.jid, errBadRequest.withText("submit the data form of the search (get it first)")))
		return
	}
	terms := make(map[string]string, len(ds.fields))
	for _, nd := range x.Nodes {
		f := nd.El
		if f == nil || f.Space != nsSearchXData || f.Local != "field" {
			continue
		}
		v := f.Attr("var")
		if v == "FORM_TYPE" {
			continue
		}
		var value string
		if ve := f.Child(nsSearchXData, "value"); ve != nil {
			value = strings.TrimSpace(ve.Text())
		}
		if !ds.enabled(v) {
			if value != "" {
				// Searching by a field the configuration withholds
				// would reveal it (data minimisation).
				ds.reply(errorReply(el, ds.jid, errNotAcceptable.withText("the field "+v+" cannot be searched")))
				return
			}
			continue
		}
		if value != "" {
			terms[v] = value
		}
	}
	if len(terms) == 0 {
		ds.reply(errorReply(el, ds.jid, errNotAcceptable.withText("fill in at least one field")))
		return
	}
	people := ds.d.Search(terms, MaxSearchResults+1)
	title := "Search results"
	if len(people) > MaxSearchResults {
		people = people[:MaxSearchResults]
		title = "The first " + strconv.Itoa(MaxSearchResults) + " results: narrow the search to find more"
	}

	r, rq := queryResult(el, nsJabberSearch)
	rq.RemoveAttr("node")
	rx := elem(nsSearchXData, "x", "type", "result")
	rx.Add(textEl(nsSearchXData, "title", title))
	rx.Add(elem(nsSearchXData, "field", "type", "hidden", "var", "FORM_TYPE").Add(textEl(nsSearchXData, "value", nsJabberSearch)))
	rep := elem(nsSearchXData, "reported")
	rep.Add(elem(nsSearchXData, "field", "var", "jid", "label", "JID", "type", "jid-single"))
	for _, f := range ds.fields {
		rep.Add(elem(nsSearchXData, "field", "var", f.name, "label", f.label, "type", "text-single"))
	}
	rx.Add(rep)
	for i := range people {
		p := &people[i]
		it := elem(nsSearchXData, "item")
		it.Add(elem(nsSearchXData, "field", "var", "jid").Add(textEl(nsSearchXData, "value", p.Username+"@"+ds.s.Domain)))
		for _, f := range ds.fields {
			it.Add(elem(nsSearchXData, "field", "var", f.name).Add(textEl(nsSearchXData, "value", f.value(p))))
		}
		rx.Add(it)
	}
	rq.Add(rx)
	ds.reply(ds.stamp(r))
}

func (ds *directorySearch) enabled(name string) bool {
	for _, f := range ds.fields {
		if f.name == name {
			return true
		}
	}
	return false
}
