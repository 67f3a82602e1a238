package wire

import (
	"strings"
	"testing"
)

func TestElementAPI(t *testing.T) {
	el := parseStanza(t, `<message to='a@b' type='chat'>x<body>hi</body>y<thread>t1</thread><body xmlns='urn:other'>no</body></message>`)
	if el.Attr("to") != "a@b" || el.Attr("missing") != "" || !el.HasAttr("type") || el.HasAttr("from") {
		t.Error("Attr/HasAttr")
	}
	if el.Text() != "xy" {
		t.Errorf("Text %q", el.Text())
	}
	if c := el.FirstChild(); c == nil || c.Local != "body" || c.Text() != "hi" {
		t.Errorf("FirstChild %v", c)
	}
	if c := el.Child("urn:other", "body"); c == nil || c.Text() != "no" {
		t.Errorf("Child ns %v", c)
	}
	if c := el.Child("", "thread"); c == nil || c.Text() != "t1" {
		t.Errorf("Child any %v", c)
	}
	el.SetAttr("type", "normal")
	el.SetAttr("from", "c@d/r")
	el.RemoveAttr("to")
	if got := el.Attrs; len(got) != 2 || got[0] != (Attr{"type", "normal"}) || got[1] != (Attr{"from", "c@d/r"}) {
		t.Errorf("attrs %v", got)
	}
	if (&Element{}).FirstChild() != nil || (&Element{}).Text() != "" {
		t.Error("empty element")
	}
}

func TestBuild(t *testing.T) {
	iq := New("jabber:client", "iq", "type", "result", "id", "1").Add(
		New("urn:xmpp:ping", "ping"),
		New("jabber:iq:roster", "query").Add(New("", "item", "jid", "a@b").AddText("x & y").AddText("")),
	)
	want := `<iq xmlns='jabber:client' type='result' id='1'><ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:roster'><item xmlns='' jid='a@b'>x &amp; y</item></query></iq>`
	if got := iq.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := New("urn:x", "a", "xmlns", "urn:x", "b", "c").Attrs; len(got) != 2 {
		t.Errorf("explicit xmlns duplicated: %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("odd attrs did not panic")
		}
	}()
	New("", "a", "b")
}

func TestCopy(t *testing.T) {
	el := parseStanza(t, `<message to='a'><body>hi</body><x xmlns='urn:x'><y a='1'/>text</x></message>`)
	c := el.Copy()
	if d := diffElement(el, c, ""); d != "" {
		t.Fatal(d)
	}
	c.SetAttr("to", "changed")
	c.Nodes[1].El.Nodes[0].El.SetAttr("a", "2")
	c.Nodes[0].El.AddText("more")
	c.Nodes[1].El.Nodes[0].El.SetAttr("new", "v")
	if el.Attr("to") != "a" || el.Nodes[1].El.Nodes[0].El.Attr("a") != "1" || el.Nodes[0].El.Text() != "hi" {
		t.Error("copy shares memory with the original")
	}
	if c.Nodes[1].El.Nodes[1].Text != "text" {
		t.Error("copy lost text")
	}
}

func TestAppendXMLNamespaces(t *testing.T) {
	tests := []struct {
		name     string
		el       *Element
		parentNS string
		want     string
	}{
		{"same ns no xmlns", &Element{Space: "jabber:client", Local: "message"}, "jabber:client", "<message/>"},
		{"different ns", &Element{Space: "urn:x", Local: "a"}, "jabber:client", "<a xmlns='urn:x'/>"},
		{"empty ns in ns parent", &Element{Local: "a"}, "jabber:client", "<a xmlns=''/>"},
		{"explicit xmlns wins", &Element{Space: "urn:x", Local: "a", Attrs: []Attr{{"xmlns", "urn:y"}}}, "", "<a xmlns='urn:y'/>"},
		{"duplicate xmlns dropped", &Element{Space: "urn:x", Local: "a", Attrs: []Attr{{"xmlns", "urn:x"}, {"xmlns", "urn:x"}, {"xmlns:p", "u"}, {"xmlns:p", "u"}}}, "", "<a xmlns='urn:x' xmlns:p='u'/>"},
		{"prefixed keeps parent default", (&Element{Space: "urn:p", Prefix: "p", Local: "a", Attrs: []Attr{{"xmlns:p", "urn:p"}}}).Add(&Element{Space: "jabber:client", Local: "b"}), "jabber:client", "<p:a xmlns:p='urn:p'><b/></p:a>"},
		{"children relative to parent", New("urn:x", "a").Add(&Element{Space: "urn:x", Local: "b"}, &Element{Space: "urn:y", Local: "c"}), "", "<a xmlns='urn:x'><b/><c xmlns='urn:y'/></a>"},
		{"escaping", New("", "a", "v", "<&'\"\t\n\r>").AddText("<&>\r\"'"), "", "<a v='&lt;&amp;&apos;&quot;&#x9;&#xA;&#xD;>'>&lt;&amp;&gt;&#xD;\"'</a>"},
	}
	for _, tt := range tests {
		if got := string(tt.el.AppendXML(nil, tt.parentNS)); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
	hdr := New(StreamsNS, "stream", "xmlns", "jabber:client", "xmlns:stream", StreamsNS, "version", "1.0")
	hdr.Prefix = "stream"
	if got := string(hdr.AppendEnd(hdr.AppendStart(nil, ""))); got != "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'></stream:stream>" {
		t.Error(got)
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, text, attr string }{
		{"plain", "plain", "plain"},
		{"a<b>c&d", "a&lt;b&gt;c&amp;d", "a&lt;b>c&amp;d"},
		{`'"`, `'"`, "&apos;&quot;"},
		{"\t\n\r", "\t\n&#xD;", "&#x9;&#xA;&#xD;"},
		{"x\x00y\x1fz\x7f", "x\uFFFDy\uFFFDz\x7f", "x\uFFFDy\uFFFDz\x7f"},
		{"bad\xffutf8\xc3", "bad\uFFFDutf8\uFFFD", "bad\uFFFDutf8\uFFFD"},
		{"\uFFFE\uFFFF\uFFFD日本😀", "\uFFFD\uFFFD\uFFFD日本😀", "\uFFFD\uFFFD\uFFFD日本😀"},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD", "\uFFFD\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		if got := string(AppendEscaped(nil, tt.in)); got != tt.text {
			t.Errorf("AppendEscaped(%q) = %q, want %q", tt.in, got, tt.text)
		}
		if got := string(AppendAttrEscaped(nil, tt.in)); got != tt.attr {
			t.Errorf("AppendAttrEscaped(%q) = %q, want %q", tt.in, got, tt.attr)
		}
		// Whatever goes in, the result parses back (parseStanza fails otherwise),
		// and valid input comes back unchanged.
		el := parseStanza(t, "<a v='"+string(AppendAttrEscaped(nil, tt.in))+"'>"+string(AppendEscaped(nil, tt.in))+"</a>")
		if valid := strings.ToValidUTF8(tt.in, "") == tt.in && !strings.ContainsAny(tt.in, "\x00\x1f\uFFFE\uFFFF"); valid &&
			(el.Attr("v") != tt.in || el.Text() != tt.in) {
			t.Errorf("%q came back as %q / %q", tt.in, el.Attr("v"), el.Text())
		}
	}
}

func TestReplaceDefaultNS(t *testing.T) {
	el := parseStanza(t, `<message to='a'><body>hi</body><p:x xmlns:p='urn:p'><y/></p:x><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>inner</body></message></forwarded></sent></message>`)
	el.ReplaceDefaultNS("jabber:client", "jabber:server")
	want := `<message to='a'><body>hi</body><p:x xmlns:p='urn:p'><y/></p:x><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>inner</body></message></forwarded></sent></message>`
	if got := string(el.AppendXML(nil, "jabber:server")); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if el.Child("jabber:server", "body") == nil {
		t.Error("body not moved")
	}
}
