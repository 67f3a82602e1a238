package wire

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct{ name, in, out string }{
		{"typical", typical, ""},
		{"prefixed", `<foo:bar xmlns:foo='urn:example:foo' foo:attr='v'/>`, ""},
		{"prefixed with children", `<foo:bar xmlns:foo='urn:example:foo'><foo:baz foo:x='1'>t</foo:baz><plain/></foo:bar>`, ""},
		{"double quotes", `<a x="1" y="it's"/>`, `<a x='1' y='it&apos;s'/>`},
		{"xml:lang", `<message xml:lang='de' to='a@b'><body xml:lang='en'>hi</body></message>`, ""},
		{"mixed content", `<p xmlns='urn:x'>one <b>two</b> three<br/>four</p>`, ""},
		{"cdata", `<a><![CDATA[<x>&amp;]]></a>`, `<a>&lt;x&gt;&amp;amp;</a>`},
		{"cdata merges with text", `<a>x<![CDATA[y]]>z<![CDATA[]]></a>`, `<a>xyz</a>`},
		{"entities", `<a x='&lt;&amp;&quot;&apos;&gt;'>&#65;&#x42;&#x1F600;&lt;&gt;&amp;&apos;&quot;</a>`, `<a x='&lt;&amp;&quot;&apos;>'>AB😀&lt;&gt;&amp;'"</a>`},
		{"attr white space normalized", "<a x='1\t2\n3\r\n4\r5'/>", `<a x='1 2 3 4 5'/>`},
		{"attr char refs kept", `<a x='&#9;&#10;&#13;'/>`, `<a x='&#x9;&#xA;&#xD;'/>`},
		{"text line ends", "<a>1\r\n2\r3\n</a>", "<a>1\n2\n3\n</a>"},
		{"text CR ref kept", `<a>&#13;</a>`, `<a>&#xD;</a>`},
		{"gt and brackets in text", `<a>a > b ]] ]></a>`, `<a>a &gt; b ]] ]&gt;</a>`},
		{"nested default ns", `<iq type='get' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>`, ""},
		{"undeclare default", `<a xmlns='urn:x'><b xmlns=''><c/></b></a>`, ""},
		{"space in tags", "<a  x = '1'\n><b\t/></a\n>", `<a x='1'><b/></a>`},
		{"unicode", "<body xmlns:ü='urn:ü' ü:ä='ö'>héllo 日本 😀 \u0085</body>", ""},
		{"unicode names", `<日本 属性='値'/>`, ""},
		{"stream prefix", `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, ""},
		{"whitespace only text kept", "<a>\n  <b/>\n</a>", ""},
		{"empty element pair", `<a></a>`, `<a/>`},
		{"xml prefix declared", `<a xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.out
			if want == "" {
				want = tt.in
			}
			el := parseStanza(t, tt.in)
			if got := string(el.AppendXML(nil, "jabber:client")); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestNamespaces(t *testing.T) {
	el := parseStanza(t, `<iq type='get'><q:query xmlns:q='urn:q' xmlns='urn:d'><item/><q:x q:a='1' xml:lang='en'/></q:query><ping xmlns='urn:xmpp:ping'/></iq>`)
	check := func(e *Element, space, prefix, local string) {
		t.Helper()
		if e == nil || e.Space != space || e.Prefix != prefix || e.Local != local {
			t.Fatalf("got %+v, want {%s}%s:%s", e, space, prefix, local)
		}
	}
	check(el, "jabber:client", "", "iq")
	q := el.Child("urn:q", "query")
	check(q, "urn:q", "q", "query")
	check(q.Child("", "item"), "urn:d", "", "item")
	check(q.Child("urn:q", "x"), "urn:q", "q", "x")
	check(el.Child("urn:xmpp:ping", "ping"), "urn:xmpp:ping", "", "ping")
	if el.Child("urn:other", "ping") != nil {
		t.Error("Child matched wrong namespace")
	}
}

func TestStreamPrefixDeclaredOnStanza(t *testing.T) {
	hdr := "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>"
	p := NewParser(strings.NewReader(hdr+`<db:result to='a' from='b'>key</db:result><message><db:x/></message><stream:features/>`), Limits{})
	p.Next()
	want := []string{
		`<db:result to='a' from='b' xmlns:db='jabber:server:dialback'>key</db:result>`,
		`<message xmlns:db='jabber:server:dialback'><db:x/></message>`,
		`<stream:features/>`, // the stream's own prefix is not re-declared
	}
	for _, w := range want {
		_, el, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(el.AppendXML(nil, "jabber:server")); got != w {
			t.Errorf("got  %s\nwant %s", got, w)
		}
	}
}

func TestStreamHeaders(t *testing.T) {
	tests := []struct {
		name, in  string
		space     string // default namespace of the stanzas
		end       string // end tag
		selfClose bool
	}{
		{"single quotes", testHeader, "jabber:client", "</stream:stream>", false},
		{"double quotes", `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com">`, "jabber:client", "</stream:stream>", false},
		{"xml decl", "<?xml version='1.0'?>" + testHeader, "jabber:client", "</stream:stream >", false},
		{"xml decl with encoding", "<?xml version=\"1.0\" encoding=\"utf-8\" standalone='yes' ?>\n\n" + testHeader, "jabber:client", "</stream:stream>", false},
		{"leading white space", "\r\n  " + testHeader, "jabber:client", "</stream:stream>", false},
		{"other prefix", "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' xml:lang='en'>", "jabber:server", "</s:stream>", false},
		{"unprefixed", "<stream xmlns='http://etherx.jabber.org/streams'>", StreamsNS, "</stream>", false},
		{"no content namespace", "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", "", "</stream:stream>", false},
		{"self-closing", "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if !tt.selfClose {
				in += "<presence/>" + tt.end + "garbage after the end is ignored"
			}
			p := NewParser(strings.NewReader(in), Limits{})
			k, el, err := p.Next()
			if err != nil || k != StreamStart || el.Space != StreamsNS || el.Local != "stream" || len(el.Nodes) != 0 {
				t.Fatalf("header: %v %v %+v", k, err, el)
			}
			if !tt.selfClose {
				k, el, err = p.Next()
				if err != nil || k != Stanza || el.Local != "presence" || el.Space != tt.space {
					t.Fatalf("stanza: %v %v %+v", k, err, el)
				}
			}
			if k, el, err = p.Next(); err != nil || k != StreamEnd || el != nil {
				t.Fatalf("end: %v %v %+v", k, err, el)
			}
			if _, _, err = p.Next(); err != io.EOF {
				t.Fatalf("after end: %v", err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	h := testHeader
	tests := []struct{ name, in, cond string }{
		{"mismatched tag", h + "<message><body>x</message>", NotWellFormed},
		{"end tag prefix of name", h + "<message><b>x</bo></message>", NotWellFormed},
		{"bad utf-8 text", h + "<message>\xff</message>", NotWellFormed},
		{"bad utf-8 attr", h + "<message to='\xc3'/>", NotWellFormed},
		{"bad utf-8 name", h + "<m\xc3/>", NotWellFormed},
		{"surrogate utf-8", h + "<m>\xed\xa0\x80</m>", NotWellFormed},
		{"U+FFFE", h + "<m>\uFFFE</m>", NotWellFormed},
		{"control char text", h + "<message>\x01</message>", NotWellFormed},
		{"control char attr", h + "<message to='\x1b'/>", NotWellFormed},
		{"control char cdata", h + "<m><![CDATA[\x00]]></m>", NotWellFormed},
		{"char ref zero", h + "<a>&#0;</a>", NotWellFormed},
		{"char ref surrogate", h + "<a>&#xD800;</a>", NotWellFormed},
		{"char ref too big", h + "<a>&#x110000;</a>", NotWellFormed},
		{"char ref huge", h + "<a>&#99999999999999999999999;</a>", NotWellFormed},
		{"char ref empty", h + "<a>&#;</a>", NotWellFormed},
		{"char ref bad digit", h + "<a>&#12a;</a>", NotWellFormed},
		{"char ref X", h + "<a>&#X41;</a>", NotWellFormed},
		{"ref unterminated", h + "<a>&amp</a>", NotWellFormed},
		{"bare ampersand", h + "<a>fish & chips</a>", NotWellFormed},
		{"undeclared element prefix", h + "<p:a/>", NotWellFormed},
		{"undeclared attr prefix", h + "<a p:x='1'/>", NotWellFormed},
		{"prefix out of scope", h + "<a><b xmlns:p='u'/><p:c/></a>", NotWellFormed},
		{"duplicate attribute", h + "<a x='1' x='2'/>", NotWellFormed},
		{"duplicate expanded attribute", h + "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>", NotWellFormed},
		{"duplicate xmlns", h + "<a xmlns='u' xmlns='v'/>", NotWellFormed},
		{"lt in attr", h + "<a x='<'/>", NotWellFormed},
		{"unquoted attr", h + "<a x=1/>", NotWellFormed},
		{"attr without value", h + "<a x/>", NotWellFormed},
		{"missing space between attrs", h + "<a x='1'y='2'/>", NotWellFormed},
		{"cdata end in text", h + "<a>]]></a>", NotWellFormed},
		{"two colons", h + "<a:b:c xmlns:a='u'/>", NotWellFormed},
		{"empty prefix", h + "<:a/>", NotWellFormed},
		{"empty local", h + "<a: xmlns:a='u'/>", NotWellFormed},
		{"digit name", h + "<1a/>", NotWellFormed},
		{"space after lt", h + "< a/>", NotWellFormed},
		{"undeclare prefix", h + "<a xmlns:p=''/>", NotWellFormed},
		{"xmlns element prefix", h + "<xmlns:a/>", NotWellFormed},
		{"declare xmlns prefix", h + "<a xmlns:xmlns='u'/>", NotWellFormed},
		{"rebind xml prefix", h + "<a xmlns:xml='u'/>", NotWellFormed},
		{"bind xml namespace", h + "<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>", NotWellFormed},
		{"xml namespace default", h + "<a xmlns='http://www.w3.org/XML/1998/namespace'/>", NotWellFormed},
		{"bad bang", h + "<a><!1></a>", NotWellFormed},
		{"mismatch caught early", h + "<message><a></b>", NotWellFormed},
		{"mismatch longer", h + "<message><a></ab></message>", NotWellFormed},
		{"slash in start tag", h + "<message/ ", NotWellFormed},
		{"bad cdata start", h + "<a><![CDAT[x]]></a>", NotWellFormed},
		{"slash not before gt", h + "<a / >", NotWellFormed},
		{"lt in start tag", h + "<a <b/>", NotWellFormed},
		{"wrong stream end", h + "</message>", NotWellFormed},
		{"stream end with junk", h + "</stream:streamx>", NotWellFormed},
		{"garbage instead of stream", "GET / HTTP/1.1\r\n", NotWellFormed},
		{"end tag first", "</stream:stream>", NotWellFormed},
		{"xml decl without version", "<?xml encoding='UTF-8'?>" + h, NotWellFormed},
		{"xml decl version 2", "<?xml version='2.0'?>" + h, NotWellFormed},

		{"comment between stanzas", h + "<!-- c -->", RestrictedXML},
		{"comment in stanza", h + "<a><!-- c --></a>", RestrictedXML},
		{"pi between stanzas", h + "<?pi x?>", RestrictedXML},
		{"pi in stanza", h + "<a><?pi?></a>", RestrictedXML},
		{"doctype", "<!DOCTYPE stream [<!ENTITY x 'y'>]>" + h, RestrictedXML},
		{"comment before header", "<?xml version='1.0'?><!-- hi -->" + h, RestrictedXML},
		{"entity in text", h + "<a>&foo;</a>", RestrictedXML},
		{"entity in attr", h + "<a x='&nbsp;'/>", RestrictedXML},
		{"second xml decl", "<?xml version='1.0'?><?xml version='1.0'?>" + h, RestrictedXML},
		{"xml decl after header", h + "<?xml version='1.0'?>", RestrictedXML},
		{"stylesheet pi", "<?xml-stylesheet href='x'?>" + h, RestrictedXML},

		{"invalid stream namespace", "<stream:stream xmlns:stream='urn:wrong'>", InvalidNamespace},
		{"missing stream namespace", "<stream:stream xmlns='jabber:client' to='example.com'>", InvalidNamespace},
		{"unprefixed client stream", "<stream xmlns='jabber:client'>", InvalidNamespace},
		{"stanza instead of header", "<message/>", InvalidNamespace},

		{"text between stanzas", h + "hello", BadFormat},
		{"cdata between stanzas", h + "<![CDATA[x]]>", BadFormat},
		{"wrong stream element", "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>", BadFormat},

		{"latin-1", "<?xml version='1.0' encoding='ISO-8859-1'?>" + h, UnsupportedEncoding},

		{"too deep", h + strings.Repeat("<a>", 65) + strings.Repeat("</a>", 65), PolicyViolation},
		{"too many attributes", h + "<a" + manyAttrs(65) + "/>", PolicyViolation},
		{"too many declarations in scope", h + "<a" + manyDecls(0, 40) + "><b" + manyDecls(40, 40) + "/></a>", PolicyViolation},
		{"too big", h + "<a>" + strings.Repeat("x", DefaultMaxStanzaBytes) + "</a>", PolicyViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				_, err := collect(r, Limits{})
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("got %v, want %s", err, tt.cond)
				}
				if pe.Condition != tt.cond {
					t.Fatalf("got %v, want %s", err, tt.cond)
				}
			}
		})
	}
}

func manyDecls(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		b.WriteString(" xmlns:p" + strconv.Itoa(i) + "='urn:x'")
	}
	return b.String()
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(" a")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("='1'")
	}
	return b.String()
}

func TestLimitsAtBoundary(t *testing.T) {
	// Exactly at the limits is fine.
	deep := strings.Repeat("<a>", 64) + strings.Repeat("</a>", 64)
	attrs := "<a" + manyAttrs(64) + "/>"
	big := "<a>" + strings.Repeat("x", 1000-7) + "</a>"
	for _, s := range []string{deep, attrs, big} {
		evs, err := collect(strings.NewReader(testHeader+s), Limits{MaxStanzaBytes: max(1000, len(s))})
		if err != io.EOF || len(evs) != 2 {
			t.Errorf("%.40q: %v %d", s, err, len(evs))
		}
	}
	_, err := collect(strings.NewReader(testHeader+"<a>"+strings.Repeat("x", 1000-6)+"</a>"), Limits{MaxStanzaBytes: 1000})
	if pe := (*Error)(nil); !errors.As(err, &pe) || pe.Condition != PolicyViolation {
		t.Errorf("one byte over: %v", err)
	}
}

func TestErrorIsSticky(t *testing.T) {
	p := NewParser(strings.NewReader(testHeader+"<a><!-- x --></a><b/>"), Limits{})
	p.Next()
	_, _, err1 := p.Next()
	_, _, err2 := p.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("%v, %v", err1, err2)
	}
	pe := err1.(*Error)
	if pe.Offset != int64(len(testHeader)+3) {
		t.Errorf("offset %d, want %d", pe.Offset, len(testHeader)+3)
	}
	if got := string(pe.AppendXML(nil)); got != "<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>comment</text></stream:error>" {
		t.Error(got)
	}
}

// corpusStream is a stream exercising most of the syntax, for reader tests.
var corpusStream = "<?xml version='1.0'?>\n" + testHeader + "\n " + typical + " \n\t" +
	`<presence><show>away</show><status xml:lang="en">Out &amp; about &#x1F600;</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>` +
	`<iq type='set' id='x'><foo:bar xmlns:foo='urn:foo' foo:a='&lt;&gt;'><![CDATA[a<b>c]]>tail</foo:bar></iq>` +
	"<message><body>line1\r\nline2</body></message>  " +
	`<r xmlns='urn:xmpp:sm:3'/>` + "\n\n\n" +
	"</stream:stream>"

func TestReaderShapes(t *testing.T) {
	want, err := collect(strings.NewReader(corpusStream), Limits{})
	if err != io.EOF || len(want) != 7 {
		t.Fatalf("%v, %d events", err, len(want))
	}
	readers := map[string]func() io.Reader{
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(corpusStream)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(corpusStream)) },
		"data err": func() io.Reader { return iotest.DataErrReader(strings.NewReader(corpusStream)) },
		"chunks": func() io.Reader {
			s := &script{}
			for i := 0; i < len(corpusStream); i += 7 {
				s.chunks = append(s.chunks, corpusStream[i:min(i+7, len(corpusStream))])
			}
			return s
		},
	}
	for name, mk := range readers {
		got, err := collect(mk(), Limits{})
		if err != io.EOF {
			t.Errorf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: event %d\n got %v\nwant %v", name, i, got[i], want[i])
			}
		}
	}
}

func TestKeepalive(t *testing.T) {
	s := &script{chunks: []any{testHeader, " ", "\n", " \t ", "<presence/>", "  ", "\r\n"}}
	p := NewParser(s, Limits{})
	p.Next()
	if k, el, err := p.Next(); err != nil || k != Stanza || el.Local != "presence" {
		t.Fatalf("%v %v %v", k, el, err)
	}
	if _, _, err := p.Next(); err != io.EOF {
		t.Fatalf("want EOF after keepalives, got %v", err)
	}
	if p.buf != nil {
		t.Error("buffer held after keepalives")
	}
}

// TestIdleReleasesBuffer checks the idle strategy: between stanzas no read
// buffer is held and the parser blocks in a 1-byte read.
func TestIdleReleasesBuffer(t *testing.T) {
	s := &script{chunks: []any{testHeader, typical, "   ", typical + typical, "<presence"}}
	p := NewParser(s, Limits{})
	for i := 0; i < 4; i++ {
		if _, _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if p.buf == nil {
				t.Error("buffer released while a stanza was still buffered")
			}
			continue
		}
		if p.buf != nil {
			t.Errorf("after event %d: buffer still held", i)
		}
	}
	// Reads: 1-byte wait, then the rest of the header, and so on.
	for i, n := range s.sizes {
		if i%2 == 0 && n != 1 && i < 8 {
			t.Errorf("read %d: %d bytes, want an idle 1-byte read (sizes %v)", i, n, s.sizes)
		}
	}
	if _, _, err := p.Next(); err != io.EOF {
		t.Fatalf("truncated stanza: %v", err)
	}
}

func TestReadErrorResumes(t *testing.T) {
	s := &script{chunks: []any{testHeader, "<message><bo", timeoutError{}, "dy>hi</body></message>", timeoutError{}, "<presence/>"}}
	p := NewParser(s, Limits{})
	p.Next()
	var errs int
	var got []string
	for len(got) < 2 {
		_, el, err := p.Next()
		if err != nil {
			var te timeoutError
			if !errors.As(err, &te) {
				t.Fatal(err)
			}
			if errs++; errs > 2 {
				t.Fatal("too many errors")
			}
			continue
		}
		got = append(got, el.String())
	}
	if got[0] != "<message xmlns='jabber:client'><body>hi</body></message>" || got[1] != "<presence xmlns='jabber:client'/>" || errs != 2 {
		t.Errorf("%q, %d errors", got, errs)
	}
}

// endless supplies a stanza opening and then text forever.
type endless struct {
	prefix string
	fill   byte
	n      int64 // bytes handed out
}

func (e *endless) Read(b []byte) (int, error) {
	if e.n >= 10<<20 {
		return 0, io.EOF
	}
	n := 0
	if e.n < int64(len(e.prefix)) {
		n = copy(b, e.prefix[e.n:])
	} else {
		for n < len(b) {
			b[n] = e.fill
			n++
		}
	}
	e.n += int64(n)
	return n, nil
}

func TestSizeLimitWhileReading(t *testing.T) {
	for _, tt := range []struct {
		name, prefix string
		fill         byte
	}{
		{"text", testHeader + "<message><body>", 'a'},
		{"attribute", testHeader + "<message to='", 'a'},
		{"cdata", testHeader + "<message><![CDATA[", 'a'},
		{"start tag", testHeader + "<message", ' '},
		{"header", "<stream:stream to='", 'a'},
	} {
		for _, limit := range []int{0, 10000} {
			r := &endless{prefix: tt.prefix, fill: tt.fill}
			p := NewParser(r, Limits{MaxStanzaBytes: limit})
			var err error
			for err == nil {
				_, _, err = p.Next()
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Condition != PolicyViolation {
				t.Fatalf("%s: %v", tt.name, err)
			}
			max := int64(p.lim.MaxStanzaBytes + bufSize + len(tt.prefix))
			if r.n > max {
				t.Errorf("%s/%d: read %d bytes, more than %d", tt.name, limit, r.n, max)
			}
		}
	}
}

func TestDepthLimitWhileReading(t *testing.T) {
	r := &endless{prefix: testHeader, fill: 'x'}
	r.prefix += strings.Repeat("<a>", 100)
	s := &script{chunks: []any{r.prefix, errors.New("must not be reached")}}
	_, err := collect(s, Limits{MaxDepth: 50})
	var pe *Error
	if !errors.As(err, &pe) || pe.Condition != PolicyViolation {
		t.Fatal(err)
	}
}

func TestReset(t *testing.T) {
	// The injected message after <starttls/> arrives in the same read and
	// must be dropped by Reset (STARTTLS command injection).
	s1 := &script{chunks: []any{"<?xml version='1.0'?>" + testHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message><body>injected</body></message>"}}
	p := NewParser(s1, Limits{})
	if k, _, _ := p.Next(); k != StreamStart {
		t.Fatal(k)
	}
	if _, el, err := p.Next(); err != nil || el.Local != "starttls" || el.Space != "urn:ietf:params:xml:ns:xmpp-tls" {
		t.Fatal(el, err)
	}
	p.Reset(strings.NewReader("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'><presence/>"))
	if k, _, err := p.Next(); k != StreamStart || err != nil {
		t.Fatal(k, err)
	}
	if _, el, err := p.Next(); err != nil || el.Local != "presence" || el.Space != "jabber:server" {
		t.Fatal(el, err)
	}
	// Reset also clears a sticky error.
	p.Reset(strings.NewReader("<!-- -->"))
	if _, _, err := p.Next(); err == nil {
		t.Fatal("want error")
	}
	p.Reset(strings.NewReader(testHeader))
	if k, _, err := p.Next(); k != StreamStart || err != nil {
		t.Fatal(k, err)
	}
}

func TestElementsDoNotAliasBuffer(t *testing.T) {
	in := testHeader + typical + `<message><body>second</body></message>`
	p := NewParser(iotest.HalfReader(strings.NewReader(in)), Limits{})
	p.Next()
	_, first, _ := p.Next()
	before := first.String()
	p.Next()
	// Scribble over pooled buffers; the first stanza must not change.
	for i := 0; i < 10; i++ {
		b := bufPool.Get().(*[]byte)
		for j := range *b {
			(*b)[j] = 'X'
		}
		bufPool.Put(b)
	}
	if after := first.String(); after != before {
		t.Errorf("stanza changed:\n%s\n%s", before, after)
	}
}

func TestParsedSlabsAreIsolated(t *testing.T) {
	el := parseStanza(t, `<message to='a'><x a='1'/><y b='2'>t</y></message>`)
	x, y := el.Nodes[0].El, el.Nodes[1].El
	x.SetAttr("new", "v")                               // must not overwrite y's attribute
	x.Add(&Element{Space: "jabber:client", Local: "z"}) // must not overwrite y's text node
	el.SetAttr("from", "me@example.com/r")
	if got := string(el.AppendXML(nil, "jabber:client")); got != `<message to='a' from='me@example.com/r'><x a='1' new='v'><z/></x><y b='2'>t</y></message>` {
		t.Error(got)
	}
	if y.Attr("b") != "2" || y.Text() != "t" {
		t.Error("neighbour clobbered")
	}
}

func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	in := []byte(testHeader + strings.Repeat(typical, 200))
	p := NewParser(bytes.NewReader(in), Limits{})
	p.Next()
	p.Next() // warm the pools
	n := testing.AllocsPerRun(100, func() {
		if _, _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if n > 6 {
		t.Errorf("%.1f allocations per typical stanza, want <= 6", n)
	}
	el := parseStanza(t, typical)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		el.SetAttr("from", "alice@example.com/phone")
		buf = el.AppendXML(buf[:0], "jabber:client")
	}); n != 0 {
		t.Errorf("%.1f allocations for SetAttr+AppendXML, want 0", n)
	}
}

func TestDuplicateAcrossStreamScope(t *testing.T) {
	hdr := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:s' xmlns:y='urn:s'>"
	for _, s := range []string{
		`<a xmlns:p='urn:s' x:v='1' p:v='2'/>`, // stream scope vs stanza scope
		`<a xmlns:p='urn:s' p:v='1' x:v='2'/>`,
		`<a x:v='1' y:v='2'/>`, // both from the stream scope
	} {
		_, err := collect(strings.NewReader(hdr+s), Limits{})
		if pe := (*Error)(nil); !errors.As(err, &pe) || pe.Condition != NotWellFormed {
			t.Errorf("%s: %v", s, err)
		}
	}
	evs, err := collect(strings.NewReader(hdr+`<a x:v='1' v='2' xmlns:q='urn:q' q:v='3'/>`), Limits{})
	if err != io.EOF || len(evs) != 2 {
		t.Errorf("distinct attributes rejected: %v", err)
	}
}
