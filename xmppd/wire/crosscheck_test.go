package wire

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// crossCorpus are stanzas for the encoding/xml cross-check. The header
// declares a prefix so stream-level scope is covered too.
var crossCorpus = []string{
	typical,
	`<presence><show>away</show><status xml:lang='en'>Out &amp; about &#x1F600;</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.com' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`,
	`<iq type='set' id='x'><foo:bar xmlns:foo='urn:foo' foo:a='&lt;&gt;' b='"q"'><![CDATA[a<b>c]]>tail<foo:baz/></foo:bar></iq>`,
	"<message><body>line1\r\nline2\rline3\ttab</body></message>",
	`<p xmlns='urn:html'>one <b>two</b> three<br/>four<i xmlns=''>five</i></p>`,
	`<a x='&#9;&#10;&#13;' y='&amp;&apos;'>&#13;&#10;</a>`,
	`<db:result xmlns:db='jabber:server:dialback' to='a' from='b'>key</db:result>`,
	`<x:y/>`,
	`<message xmlns:a='urn:a' xmlns:b='urn:b' a:x='1' b:x='2'><a:c b:y='3'><b:d/></a:c></message>`,
	"<body>héllo 日本 😀 \u0085 \U0010FFFD</body>",
	`<iq type='result' id='r'><query xmlns='jabber:iq:roster' ver='v1'><item jid='a@b' name='A &amp; B' subscription='both'><group>Friends</group></item></query></iq>`,
	`<a><b><c><d><e>deep</e></d></c></b></a>`,
}

// xmlNode is a namespace-resolved view of a tree used by both sides.
type xmlNode struct {
	space, local string
	attrs        []xml.Attr
	content      []any // string or *xmlNode
}

// fromElement resolves our tree the way encoding/xml names things:
// xmlns -> {"", xmlns}, xmlns:p -> {xmlns, p}, p:x -> {uri(p), x}.
func fromElement(e *Element, scope map[string]string) *xmlNode {
	inner := make(map[string]string, len(scope))
	for k, v := range scope {
		inner[k] = v
	}
	for _, a := range e.Attrs {
		if p, ok := strings.CutPrefix(a.Name, "xmlns:"); ok {
			inner[p] = a.Value
		}
	}
	n := &xmlNode{space: e.Space, local: e.Local}
	for _, a := range e.Attrs {
		var name xml.Name
		switch p, l, ok := strings.Cut(a.Name, ":"); {
		case a.Name == "xmlns":
			name = xml.Name{Local: "xmlns"}
		case !ok:
			name = xml.Name{Local: a.Name}
		case p == "xmlns":
			name = xml.Name{Space: "xmlns", Local: l}
		case p == "xml":
			name = xml.Name{Space: xmlNS, Local: l}
		default:
			name = xml.Name{Space: inner[p], Local: l}
		}
		n.attrs = append(n.attrs, xml.Attr{Name: name, Value: a.Value})
	}
	for _, c := range e.Nodes {
		if c.El != nil {
			n.content = append(n.content, fromElement(c.El, inner))
		} else {
			n.content = appendText(n.content, c.Text)
		}
	}
	return n
}

func appendText(c []any, s string) []any {
	if len(c) > 0 {
		if prev, ok := c[len(c)-1].(string); ok {
			c[len(c)-1] = prev + s
			return c
		}
	}
	return append(c, s)
}

// fromDecoder reads one element (whose start was just read) from d.
func fromDecoder(t *testing.T, d *xml.Decoder, start xml.StartElement) *xmlNode {
	n := &xmlNode{space: start.Name.Space, local: start.Name.Local, attrs: start.Attr}
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("encoding/xml: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n.content = append(n.content, fromDecoder(t, d, tok.Copy()))
		case xml.CharData:
			n.content = appendText(n.content, string(tok))
		case xml.EndElement:
			return n
		default:
			t.Fatalf("unexpected token %T", tok)
		}
	}
}

func diffNode(a, b *xmlNode) string {
	if a.space != b.space || a.local != b.local {
		return "name {" + a.space + "}" + a.local + " vs {" + b.space + "}" + b.local
	}
	if len(a.attrs) != len(b.attrs) {
		return a.local + ": attribute count"
	}
	for i := range a.attrs {
		if a.attrs[i] != b.attrs[i] {
			return a.local + ": attribute " + a.attrs[i].Name.Space + " " + a.attrs[i].Name.Local + "=" + a.attrs[i].Value +
				" vs " + b.attrs[i].Name.Space + " " + b.attrs[i].Name.Local + "=" + b.attrs[i].Value
		}
	}
	if len(a.content) != len(b.content) {
		return a.local + ": content length"
	}
	for i := range a.content {
		switch x := a.content[i].(type) {
		case string:
			if y, ok := b.content[i].(string); !ok || x != y {
				return a.local + ": text " + x
			}
		case *xmlNode:
			y, ok := b.content[i].(*xmlNode)
			if !ok {
				return a.local + ": element vs text"
			}
			if d := diffNode(x, y); d != "" {
				return d
			}
		}
	}
	return ""
}

// TestCrossCheckEncodingXML serializes what we parsed and checks that
// encoding/xml sees the same namespace-resolved names, attributes and text.
func TestCrossCheckEncodingXML(t *testing.T) {
	hdr := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:stream-level'>"
	for _, s := range crossCorpus {
		p := NewParser(strings.NewReader(hdr+s), Limits{})
		if _, _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
		_, el, err := p.Next()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		out := string(el.AppendXML(nil, "jabber:client"))

		d := xml.NewDecoder(strings.NewReader(hdr + out + "</stream:stream>"))
		d.Strict = true
		var start xml.StartElement
		for i := 0; i < 2; i++ { // stream header, then the stanza
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			start = tok.(xml.StartElement)
		}
		theirs := fromDecoder(t, d, start)
		ours := fromElement(el, map[string]string{"x": "urn:stream-level", "stream": StreamsNS})
		if diff := diffNode(ours, theirs); diff != "" {
			t.Errorf("%s\nserialized %s\n%s", s, out, diff)
		}
		if tok, err := d.Token(); err != nil || tok.(xml.EndElement).Name.Local != "stream" {
			t.Errorf("trailing data after %s: %v %v", out, tok, err)
		}
		if _, err := d.Token(); err != io.EOF {
			t.Errorf("trailing data after %s: %v", out, err)
		}
	}
}
