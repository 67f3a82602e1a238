package mam

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// parse reads one element the way the server's stream parser does.
func parse(t *testing.T, s string) *wire.Element {
	t.Helper()
	hdr := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
	p := wire.NewParser(io.MultiReader(strings.NewReader(hdr), strings.NewReader(s)), wire.Limits{MaxStanzaBytes: 1 << 20})
	if _, _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	_, el, err := p.Next()
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}

const (
	id1 = "0006000000000001"
	id2 = "0006000000000002"
)

func form(fields string) string {
	return `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>` + fields + `</x>`
}

func fld(name string, values ...string) string {
	s := `<field var='` + name + `'>`
	for _, v := range values {
		s += `<value>` + v + `</value>`
	}
	return s + `</field>`
}

func TestParseQuery(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := store.ArchiveQuery{Owner: "a@x", Max: 50, Count: true}
	with := func(f func(q *Request)) Request {
		r := Request{Query: base}
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		query string
		want  Request
		cond  string // error condition, "" for success
	}{
		{"empty", ``, with(func(*Request) {}), ""},
		{"queryid", `<query xmlns='urn:xmpp:mam:2' queryid='q1'/>`, with(func(r *Request) { r.QueryID = "q1" }), ""},
		{"with bare", form(fld("with", "Bob@X")), with(func(r *Request) { r.Query.With = "bob@x" }), ""},
		{"with full", form(fld("with", "room@c.x/Nick")), with(func(r *Request) { r.Query.With = "room@c.x/Nick" }), ""},
		{"with malformed", form(fld("with", "@x")), Request{}, "bad-request"},
		{"with two values", form(fld("with", "b@x", "c@x")), Request{}, "bad-request"},
		{"start end", form(fld("start", "2026-01-02T03:04:05Z") + fld("end", "2026-01-02T04:04:05.5+01:00")),
			with(func(r *Request) { r.Query.Start = t0; r.Query.End = t0.Add(500 * time.Millisecond) }), ""},
		{"end before start", form(fld("start", "2026-01-02T03:04:05Z") + fld("end", "2025-01-02T03:04:05Z")), Request{}, "bad-request"},
		{"bad start", form(fld("start", "yesterday")), Request{}, "bad-request"},
		{"wrong FORM_TYPE", `<x xmlns='jabber:x:data' type='submit'>` + fld("FORM_TYPE", "urn:xmpp:mam:1") + `</x>`, Request{}, "bad-request"},
		{"unknown field", form(fld("urn:example:search", "x")), Request{}, "feature-not-implemented"},
		{"after-id", form(fld("after-id", id1)), with(func(r *Request) {
			r.Query.AfterID = 0x6000000000001
			r.MustExist = []store.ArchiveID{0x6000000000001}
		}), ""},
		{"before-id and after-id", form(fld("after-id", id1) + fld("before-id", id2)), with(func(r *Request) {
			r.Query.AfterID, r.Query.BeforeID = 0x6000000000001, 0x6000000000002
			r.MustExist = []store.ArchiveID{0x6000000000001, 0x6000000000002}
		}), ""},
		{"after-id malformed", form(fld("after-id", "zzz")), Request{}, "item-not-found"},
		{"ids", form(fld("ids", id1, "nonsense", id2)), with(func(r *Request) {
			r.Query.IDs = []store.ArchiveID{0x6000000000001, 0x6000000000002}
		}), ""},
		{"ids all unknown", form(fld("ids", "nonsense")), with(func(r *Request) {
			r.Query.IDs = []store.ArchiveID{^store.ArchiveID(0)}
		}), ""},
		{"rsm max", `<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set>`, with(func(r *Request) { r.Query.Max = 10 }), ""},
		{"rsm max capped", `<set xmlns='http://jabber.org/protocol/rsm'><max>1000</max></set>`, with(func(*Request) {}), ""},
		{"rsm max 0", `<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>`, with(func(r *Request) { r.Query.Max = 1; r.CountOnly = true }), ""},
		{"rsm max negative", `<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>`, Request{}, "bad-request"},
		{"rsm max junk", `<set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set>`, Request{}, "bad-request"},
		{"rsm after", `<set xmlns='http://jabber.org/protocol/rsm'><max>5</max><after>` + id1 + `</after></set>`, with(func(r *Request) {
			r.Query.Max, r.Query.AfterID = 5, 0x6000000000001
			r.MustExist = []store.ArchiveID{0x6000000000001}
		}), ""},
		{"rsm after unknown format", `<set xmlns='http://jabber.org/protocol/rsm'><after>abc</after></set>`, Request{}, "item-not-found"},
		{"rsm last page", `<set xmlns='http://jabber.org/protocol/rsm'><before/></set>`, with(func(r *Request) { r.Query.Backward = true }), ""},
		{"rsm before id", `<set xmlns='http://jabber.org/protocol/rsm'><before>` + id2 + `</before></set>`, with(func(r *Request) {
			r.Query.Backward, r.Query.BeforeID = true, 0x6000000000002
			r.MustExist = []store.ArchiveID{0x6000000000002}
		}), ""},
		{"rsm before and form before-id: tighter wins", form(fld("before-id", id1)) + `<set xmlns='http://jabber.org/protocol/rsm'><before>` + id2 + `</before></set>`, with(func(r *Request) {
			r.Query.Backward, r.Query.BeforeID = true, 0x6000000000001
			r.MustExist = []store.ArchiveID{0x6000000000001, 0x6000000000002}
		}), ""},
		{"rsm index", `<set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set>`, Request{}, "feature-not-implemented"},
		{"flip-page", `<flip-page/>`, with(func(r *Request) { r.Flip = true }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.query
			if !strings.HasPrefix(q, "<query") {
				q = `<query xmlns='urn:xmpp:mam:2'>` + q + `</query>`
			}
			got, err := ParseQuery(parse(t, q), "a@x", 50)
			if tt.cond != "" {
				var e *Error
				if !errors.As(err, &e) || e.Condition != tt.cond {
					t.Fatalf("error %v, want %s", err, tt.cond)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestAppendResult(t *testing.T) {
	id := store.ArchiveIDAt(time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC))
	for _, st := range []string{
		`<message xmlns='jabber:client' from='b@x/r' to='a@x' type='chat'><body>hi &amp; bye</body></message>`,
		`<message from='b@x/r' to='a@x' type='chat'><body>hi &amp; bye</body></message>`, // no xmlns: added
	} {
		rec := store.ArchiveRecord{ID: id, Stanza: []byte(st)}
		b := AppendResult(nil, "a@x/phone", "a@x", "q'1", &rec)
		el := parse(t, string(b))
		if el.Attr("to") != "a@x/phone" || el.Attr("from") != "a@x" {
			t.Fatalf("addresses: %s", b)
		}
		res := el.Child(NS, "result")
		if res == nil || res.Attr("queryid") != "q'1" || res.Attr("id") != id.String() {
			t.Fatalf("result: %s", b)
		}
		fw := res.Child(NSForward, "forwarded")
		d := fw.Child(NSDelay, "delay")
		if d == nil || d.Attr("stamp") != "2026-03-04T05:06:07.123456Z" {
			t.Fatalf("delay: %s", b)
		}
		m := fw.Child(nsClient, "message")
		if m == nil || m.Child(nsClient, "body").Text() != "hi & bye" {
			t.Fatalf("forwarded message not in jabber:client: %s", b)
		}
	}
}

func TestFin(t *testing.T) {
	recs := []store.ArchiveRecord{{ID: 0x6000000000001}, {ID: 0x6000000000002}}
	tests := []struct {
		name string
		req  Request
		page store.ArchivePage
		want string
	}{
		{"complete page", Request{}, store.ArchivePage{Records: recs, Complete: true, Count: 2},
			`<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><first>0006000000000001</first><last>0006000000000002</last><count>2</count></set></fin>`},
		{"more to come, count unknown", Request{}, store.ArchivePage{Records: recs, Count: -1},
			`<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><first>0006000000000001</first><last>0006000000000002</last></set></fin>`},
		{"empty", Request{}, store.ArchivePage{Complete: true},
			`<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><count>0</count></set></fin>`},
		{"count only", Request{CountOnly: true}, store.ArchivePage{Records: recs[:1], Count: 7},
			`<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><count>7</count></set></fin>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fin(&tt.req, &tt.page).String(); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	if got := Metadata(0, 0).String(); got != `<metadata xmlns='urn:xmpp:mam:2'/>` {
		t.Fatalf("empty: %s", got)
	}
	a := store.ArchiveIDAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	got := Metadata(a, a+1).String()
	want := `<metadata xmlns='urn:xmpp:mam:2'><start id='` + a.String() + `' timestamp='2026-01-01T00:00:00.000000Z'/><end id='` + (a + 1).String() + `' timestamp='2026-01-01T00:00:00.000001Z'/></metadata>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestQueryFormParsesBack(t *testing.T) {
	// Every field the form offers must be accepted by ParseQuery when
	// submitted (with a value where one is required).
	values := map[string]string{"with": "b@x", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
		"before-id": id2, "after-id": id1, "ids": id1, "FORM_TYPE": NS}
	var fields bytes.Buffer
	x := QueryForm().Child(nsData, "x")
	for _, n := range x.Nodes {
		v := n.El.Attr("var")
		val, ok := values[v]
		if !ok {
			t.Fatalf("form field %s has no test value", v)
		}
		fields.WriteString(fld(v, val))
	}
	q := `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>` + fields.String() + `</x></query>`
	if _, err := ParseQuery(parse(t, q), "a@x", 0); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestPrefs(t *testing.T) {
	tests := []struct {
		name   string
		xml    string
		cond   string
		forced string // CheckForced condition
		want   Prefs
	}{
		{"always", `<prefs xmlns='urn:xmpp:mam:2' default='always'/>`, "", "", Prefs{Default: Always}},
		{"roster with lists", `<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>A@x</jid></always><never><jid>n@x/res</jid><jid>spam.example</jid></never></prefs>`,
			"", "not-allowed", Prefs{Default: Roster, Always: []string{"a@x"}, Never: []string{"n@x", "spam.example"}}},
		{"always with never list", `<prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid>n@x</jid></never></prefs>`,
			"", "not-allowed", Prefs{Default: Always, Never: []string{"n@x"}}},
		{"never", `<prefs xmlns='urn:xmpp:mam:2' default='never'/>`, "", "not-allowed", Prefs{Default: Never}},
		{"bad default", `<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>`, "bad-request", "", Prefs{}},
		{"no default", `<prefs xmlns='urn:xmpp:mam:2'/>`, "bad-request", "", Prefs{}},
		{"bad jid", `<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>@@</jid></always></prefs>`, "jid-malformed", "", Prefs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePrefs(parse(t, tt.xml))
			if tt.cond != "" {
				var e *Error
				if !errors.As(err, &e) || e.Condition != tt.cond {
					t.Fatalf("error %v, want %s", err, tt.cond)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("got %+v want %+v", p, tt.want)
			}
			if back := UnmarshalPrefs(p.Marshal()); !reflect.DeepEqual(back, p) {
				t.Fatalf("marshal round trip: %+v", back)
			}
			if back, err := ParsePrefs(p.Element()); err != nil || !reflect.DeepEqual(back, p) {
				t.Fatalf("element round trip: %+v %v (%s)", back, err, p.Element())
			}
			var e *Error
			err = p.CheckForced()
			if tt.forced == "" && err != nil || tt.forced != "" && (!errors.As(err, &e) || e.Condition != tt.forced) {
				t.Fatalf("CheckForced: %v, want %q", err, tt.forced)
			}
		})
	}
	if p := UnmarshalPrefs(nil); !reflect.DeepEqual(p, DefaultPrefs) {
		t.Fatalf("no stored prefs: %+v", p)
	}
}

func TestArchives(t *testing.T) {
	roster := func(j string) bool { return j == "friend@x" }
	p := Prefs{Default: Roster, Always: []string{"boss@x", "both@x"}, Never: []string{"both@x", "spam.example"}}
	tests := []struct {
		prefs  Prefs
		with   string
		forced bool
		want   bool
	}{
		{DefaultPrefs, "anyone@x", false, true},
		{p, "friend@x", false, true},
		{p, "stranger@x", false, false},
		{p, "boss@x", false, true},
		{p, "both@x", false, false}, // never wins
		{p, "x@spam.example", false, false},
		{p, "x@spam.example", true, true}, // compliance overrides
		{Prefs{Default: Never, Always: []string{"boss@x"}}, "boss@x", false, true},
		{Prefs{Default: Never}, "friend@x", false, false},
		{Prefs{Default: Never}, "friend@x", true, true},
	}
	for i, tt := range tests {
		if got := tt.prefs.Archives(tt.with, tt.forced, roster); got != tt.want {
			t.Errorf("%d: %+v.Archives(%s, forced=%v) = %v", i, tt.prefs, tt.with, tt.forced, got)
		}
	}
}
