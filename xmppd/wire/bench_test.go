package wire

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

// stanzaReader hands out a header and then the same stanza forever. With
// perRead it returns at most one stanza per Read, as on a chat connection
// where messages arrive one by one (the parser goes idle in between);
// otherwise it fills every Read (pipelined, as in a burst or on s2s).
type stanzaReader struct {
	hdr, stanza []byte
	perRead     bool
	pos         int // position in hdr (negative: header done) or stanza
	hdrDone     bool
}

func (r *stanzaReader) Read(b []byte) (int, error) {
	n := 0
	if !r.hdrDone {
		n = copy(b, r.hdr[r.pos:])
		if r.pos += n; r.pos == len(r.hdr) {
			r.hdrDone, r.pos = true, 0
		}
		return n, nil
	}
	for n < len(b) {
		m := copy(b[n:], r.stanza[r.pos:])
		n += m
		if r.pos += m; r.pos == len(r.stanza) {
			r.pos = 0
			if r.perRead {
				break
			}
		}
	}
	return n, nil
}

func benchParse(b *testing.B, stanza string, perRead bool) {
	r := &stanzaReader{hdr: []byte(testHeader), stanza: []byte(stanza), perRead: perRead}
	p := NewParser(r, Limits{})
	if _, _, err := p.Next(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(stanza)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := p.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseTypical: one message per Read, so every stanza goes through
// the idle path (buffer released, 1-byte read, buffer taken again).
func BenchmarkParseTypical(b *testing.B) { benchParse(b, typical, true) }

// BenchmarkParseTypicalPipelined: many messages per Read.
func BenchmarkParseTypicalPipelined(b *testing.B) { benchParse(b, typical, false) }

// BenchmarkParseLarge: a 64 KiB message body with some escaping.
func BenchmarkParseLarge(b *testing.B) {
	body := strings.Repeat("Lorem ipsum dolor sit amet, &amp; consectetur adipiscing elit. ", 1000)
	benchParse(b, "<message to='a@b'><body>"+body+"</body></message>", false)
}

// benchEncodingXML reads the same input with encoding/xml's Token (with
// namespace translation, which is what a server needs) for comparison.
func benchEncodingXML(b *testing.B, stanza string, reserialize bool) {
	r := &stanzaReader{hdr: []byte(testHeader), stanza: []byte(stanza)}
	d := xml.NewDecoder(r)
	if _, err := d.Token(); err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	b.SetBytes(int64(len(stanza)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out.Reset()
		depth := 0
		for {
			tok, err := d.Token()
			if err != nil {
				b.Fatal(err)
			}
			if reserialize {
				enc.EncodeToken(tok)
			}
			switch tok.(type) {
			case xml.StartElement:
				depth++
			case xml.EndElement:
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if reserialize {
			enc.Flush()
		}
	}
}

func BenchmarkEncodingXMLTypical(b *testing.B) { benchEncodingXML(b, typical, false) }

func BenchmarkEncodingXMLParseAndReserialize(b *testing.B) { benchEncodingXML(b, typical, true) }

func BenchmarkAppendXML(b *testing.B) {
	el := parseStanza(b, typical)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(typical)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = el.AppendXML(buf[:0], "jabber:client")
	}
}

// BenchmarkParseAndReserialize is the forwarding hot path: parse, stamp
// 'from', serialize once.
func BenchmarkParseAndReserialize(b *testing.B) {
	r := &stanzaReader{hdr: []byte(testHeader), stanza: []byte(typical), perRead: true}
	p := NewParser(r, Limits{})
	if _, _, err := p.Next(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(typical)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, el, err := p.Next()
		if err != nil {
			b.Fatal(err)
		}
		el.SetAttr("from", "alice@example.com/phone")
		buf = el.AppendXML(buf[:0], "jabber:client")
	}
}

func BenchmarkCopy(b *testing.B) {
	el := parseStanza(b, typical)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = el.Copy()
	}
}
