package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzParser feeds arbitrary streams to the parser. It must never panic or
// fail in a way other than *Error / io.EOF; reading byte by byte must give
// exactly the same results; and everything accepted must serialize to XML
// that parses back to an equal tree.
func FuzzParser(f *testing.F) {
	seeds := []string{
		corpusStream,
		testHeader + typical,
		"<?xml version='1.0' encoding='UTF-8'?>" + testHeader + "</stream:stream>",
		"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' xmlns='jabber:server'><db:result from='a' to='b'>k</db:result><x xmlns='urn:x'><db:verify id='1'/></x></s:stream>",
		testHeader + `<a x="&amp;&#x41;" xmlns:p='urn:p' p:y='&lt;'><![CDATA[]]>]]&gt;<p:b/>` + "\r\n" + `</a>`,
		testHeader + "<a xmlns=''><b xmlns='urn:b'><c/></b></a>",
		testHeader + "<a>&#xD;&#9;\t\r\n</a><b x='&#xD;&#9;\t\r\n'/>",
		testHeader + "<a><!-- x --></a>",
		testHeader + "<a>&ent;</a>",
		testHeader + "<a></b>",
		testHeader + "<日本 属性='値'>😀</日本>",
		"<stream xmlns='http://etherx.jabber.org/streams'><a/></stream>",
		"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
		testHeader + "<a xml:lang='en' xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxStanzaBytes: 8 << 10, MaxDepth: 16, MaxAttrs: 8}
		whole, err1 := collect(bytes.NewReader(data), lim)
		bytewise, err2 := collect(iotest.OneByteReader(bytes.NewReader(data)), lim)
		var pe1, pe2 *Error
		if errors.As(err1, &pe1) != errors.As(err2, &pe2) || pe1 != nil && (pe1.Condition != pe2.Condition || pe1.Offset != pe2.Offset) {
			t.Fatalf("errors differ: %v / %v", err1, err2)
		}
		if pe1 == nil && err1 != io.EOF {
			t.Fatalf("unexpected error %v", err1)
		}
		if len(whole) != len(bytewise) {
			t.Fatalf("%d events vs %d byte by byte", len(whole), len(bytewise))
		}
		for i := range whole {
			if whole[i] != bytewise[i] {
				t.Fatalf("event %d differs:\n%v\n%v", i, whole[i], bytewise[i])
			}
		}
		checkReparse(t, data, lim)
	})
}

// checkReparse parses data again, serializes every event and parses that
// back, comparing the trees.
func checkReparse(t *testing.T, data []byte, lim Limits) {
	p := NewParser(bytes.NewReader(data), lim)
	var hdr []byte
	var def string
	for n := 0; n < 1000; n++ {
		k, el, err := p.Next()
		if err != nil {
			return
		}
		switch k {
		case StreamStart:
			def = el.Attr("xmlns")
			hdr = el.AppendStart(nil, "")
			q := NewParser(bytes.NewReader(hdr), lim)
			k2, el2, err := q.Next()
			if err != nil || k2 != StreamStart {
				t.Fatalf("header %s does not parse: %v", hdr, err)
			}
			if d := diffElement(el, el2, ""); d != "" {
				t.Fatalf("header %s: %s", hdr, d)
			}
		case Stanza:
			out := el.AppendXML(append([]byte(nil), hdr...), def)
			q := NewParser(bytes.NewReader(out), Limits{})
			q.Next()
			k2, el2, err := q.Next()
			if err != nil || k2 != Stanza {
				t.Fatalf("reserialized %s does not parse: %v", out, err)
			}
			if d := diffElement(el, el2, ""); d != "" {
				t.Fatalf("reserialized %s: %s", out, d)
			}
		case StreamEnd:
			return
		}
	}
}
