package wire

import "unicode/utf8"

// AppendXML appends e to b so that it is correct inside a parent whose
// default namespace is parentNS (pass the stream's content namespace, e.g.
// "jabber:client", for a top-level stanza).
//
// An xmlns attribute in Attrs is authoritative and written as is. An element
// without prefix and without xmlns attribute whose Space differs from
// parentNS gets xmlns='Space' written. Children are written relative to their
// parent's default namespace the same way. Prefixes are written as they are;
// their declarations must be in Attrs of the element or an ancestor that is
// written too (parsed top-level elements are always self-contained).
// Duplicate namespace declarations in Attrs are written once.
//
// Text is escaped with AppendEscaped and attribute values with
// AppendAttrEscaped, both of which replace characters XML cannot carry with
// U+FFFD, so the output is always well-formed. AppendXML does not allocate
// when b has enough capacity.
func (e *Element) AppendXML(b []byte, parentNS string) []byte {
	b, ns := e.appendStart(b, parentNS)
	if len(e.Nodes) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for i := range e.Nodes {
		if n := &e.Nodes[i]; n.El != nil {
			b = n.El.AppendXML(b, ns)
		} else {
			b = AppendEscaped(b, n.Text)
		}
	}
	return e.AppendEnd(b)
}

// AppendStart appends only the start tag of e (for example the server's own
// <stream:stream> header), with the same namespace rules as AppendXML.
func (e *Element) AppendStart(b []byte, parentNS string) []byte {
	b, _ = e.appendStart(b, parentNS)
	return append(b, '>')
}

// AppendEnd appends the end tag of e, e.g. "</stream:stream>".
func (e *Element) AppendEnd(b []byte) []byte {
	b = append(b, "</"...)
	if e.Prefix != "" {
		b = append(b, e.Prefix...)
		b = append(b, ':')
	}
	b = append(b, e.Local...)
	return append(b, '>')
}

// String returns AppendXML(nil, "") as a string, for logs and tests.
func (e *Element) String() string { return string(e.AppendXML(nil, "")) }

// appendStart writes "<name attrs" without the closing '>' and returns the
// default namespace in scope for e's children.
func (e *Element) appendStart(b []byte, parentNS string) ([]byte, string) {
	b = append(b, '<')
	if e.Prefix != "" {
		b = append(b, e.Prefix...)
		b = append(b, ':')
	}
	b = append(b, e.Local...)
	ns := parentNS
	declared := false
	for i := range e.Attrs {
		if e.Attrs[i].Name == "xmlns" {
			declared = true
			ns = e.Attrs[i].Value
			break
		}
	}
	if !declared && e.Prefix == "" && e.Space != parentNS {
		b = append(b, " xmlns='"...)
		b = AppendAttrEscaped(b, e.Space)
		b = append(b, '\'')
		ns = e.Space
	}
	sawDefault := false
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if len(a.Name) >= 5 && a.Name[:5] == "xmlns" {
			if a.Name == "xmlns" {
				if sawDefault {
					continue
				}
				sawDefault = true
			} else if declaredBefore(e.Attrs[:i], a.Name) {
				continue
			}
		}
		b = append(b, ' ')
		b = append(b, a.Name...)
		b = append(b, '=', '\'')
		b = AppendAttrEscaped(b, a.Value)
		b = append(b, '\'')
	}
	return b, ns
}

func declaredBefore(attrs []Attr, name string) bool {
	for i := range attrs {
		if attrs[i].Name == name {
			return true
		}
	}
	return false
}

// Escape classes: 0 copies the byte, escUTF8 checks a multi-byte sequence,
// anything else indexes escapes.
var textEsc, attrEsc [256]uint8

const escUTF8 = 255

var escapes = [...]string{
	1: "&amp;", 2: "&lt;", 3: "&gt;", 4: "&#xD;", 5: "\uFFFD",
	6: "&apos;", 7: "&quot;", 8: "&#x9;", 9: "&#xA;",
}

func init() {
	for c := 0; c < 0x20; c++ {
		textEsc[c], attrEsc[c] = 5, 5
	}
	for c := 0x80; c < 0x100; c++ {
		textEsc[c], attrEsc[c] = escUTF8, escUTF8
	}
	textEsc['&'], textEsc['<'], textEsc['>'], textEsc['\r'] = 1, 2, 3, 4
	textEsc['\t'], textEsc['\n'] = 0, 0
	attrEsc['&'], attrEsc['<'], attrEsc['\r'] = 1, 2, 4
	attrEsc['\''], attrEsc['"'], attrEsc['\t'], attrEsc['\n'] = 6, 7, 8, 9
}

// AppendEscaped appends s escaped as XML character data: & < > and CR become
// references (CR so that a receiver's line-end normalization, XML 1.0 §2.11,
// does not turn it into LF). Characters outside XML 1.0 Char (§2.2) and
// invalid UTF-8 are replaced with U+FFFD, so strings from outside XML (LDAP,
// configuration) cannot break the stream.
func AppendEscaped(b []byte, s string) []byte { return appendEsc(b, s, &textEsc) }

// AppendAttrEscaped appends s escaped for an attribute value delimited by
// either ' or ": & < ' " become entity references and TAB, LF, CR become
// character references so attribute-value normalization (XML 1.0 §3.3.3)
// keeps them. Invalid characters are replaced as in AppendEscaped.
func AppendAttrEscaped(b []byte, s string) []byte { return appendEsc(b, s, &attrEsc) }

func appendEsc(b []byte, s string, tab *[256]uint8) []byte {
	last := 0
	for i := 0; i < len(s); {
		k := tab[s[i]]
		if k == 0 {
			i++
			continue
		}
		if k == escUTF8 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r != utf8.RuneError || size > 1) && r != 0xFFFE && r != 0xFFFF {
				i += size
				continue
			}
			b = append(b, s[last:i]...)
			b = append(b, "\uFFFD"...)
			i += size
			last = i
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, escapes[k]...)
		i++
		last = i
	}
	return append(b, s[last:]...)
}
