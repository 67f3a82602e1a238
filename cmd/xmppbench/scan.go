package main

import (
	"bytes"
	"errors"
)

// errTruncated reports a stream that ended inside an element.
var errTruncated = errors.New("xmppbench: stream ended inside an element")

// streamSplitter is a bufio.SplitFunc (its split method) that cuts an XMPP
// stream into top-level tokens without decoding XML: the stream header
// (<stream:stream ...>, RFC 6120 §4.2), each first-level child of the stream
// (stanzas, features, SASL and TLS negotiation elements, RFC 6120 §4.1) and
// the closing </stream:stream>. Whitespace between first-level elements
// (keepalives, RFC 6120 §4.6.1) and the XML declaration are dropped.
//
// It only tracks element depth: '<' in text is always markup, and '>' is
// only looked for outside quoted attribute values, so that is all a
// well-formed stream needs. encoding/xml would allocate per token; this
// returns slices of the scanner's buffer and allocates nothing.
//
// An element that arrives in pieces is re-scanned from its start when more
// bytes come in; that is quadratic only for elements larger than the read
// size, which a load generator never asks for.
type streamSplitter struct {
	// open is set once the stream header has been returned: from then on
	// tokens are the header's children. A stream restart (after STARTTLS
	// or SASL, RFC 6120 §4.3.3) clears it with reset.
	open bool
}

// reset expects a new stream header, as after a stream restart.
func (s *streamSplitter) reset() { s.open = false }

// split implements bufio.SplitFunc.
func (s *streamSplitter) split(data []byte, atEOF bool) (advance int, token []byte, err error) {
	start := 0
	for {
		j := bytes.IndexByte(data[start:], '<')
		if j < 0 {
			// Only character data (whitespace keepalives) so far.
			return len(data), nil, nil
		}
		start += j
		end, kind := s.element(data, start)
		switch kind {
		case tokMore:
			if atEOF {
				return len(data), nil, errTruncated
			}
			// Drop the whitespace already skipped, keep the element.
			return start, nil, nil
		case tokSkip:
			start = end
			continue
		case tokHeader:
			s.open = true
		case tokClose:
			s.open = false
		}
		return end, data[start:end], nil
	}
}

// Token kinds reported by element.
const (
	tokMore    = iota // incomplete: need more bytes
	tokSkip           // XML declaration, comment or processing instruction at top level
	tokHeader         // stream header (unclosed start tag at depth 0)
	tokElement        // complete first-level element
	tokClose          // end tag of the stream
)

// element scans the markup that starts at data[start] == '<' and returns
// the offset just past the top-level token and its kind.
func (s *streamSplitter) element(data []byte, start int) (end, kind int) {
	depth := 0
	i := start
	for {
		// i is at '<'.
		if i+1 >= len(data) {
			return 0, tokMore
		}
		switch data[i+1] {
		case '/': // end tag
			gt := bytes.IndexByte(data[i:], '>')
			if gt < 0 {
				return 0, tokMore
			}
			i += gt + 1
			depth--
			if depth == 0 {
				return i, tokElement
			}
			if depth < 0 {
				// </stream:stream> closing the stream itself.
				return i, tokClose
			}
		case '?': // XML declaration or processing instruction
			e := bytes.Index(data[i:], []byte("?>"))
			if e < 0 {
				return 0, tokMore
			}
			i += e + 2
			if depth == 0 {
				return i, tokSkip
			}
		case '!': // comment, CDATA section or DOCTYPE
			term := []byte(">")
			if bytes.HasPrefix(data[i:], []byte("<!--")) {
				term = []byte("-->")
			} else if bytes.HasPrefix(data[i:], []byte("<![CDATA[")) {
				term = []byte("]]>")
			} else if len(data)-i < len("<![CDATA[") {
				return 0, tokMore // cannot tell which yet
			}
			e := bytes.Index(data[i:], term)
			if e < 0 {
				return 0, tokMore
			}
			i += e + len(term)
			if depth == 0 {
				return i, tokSkip
			}
		default: // start tag
			gt := tagEnd(data, i+1)
			if gt < 0 {
				return 0, tokMore
			}
			i = gt + 1
			if data[gt-1] != '/' {
				if depth == 0 && !s.open {
					return i, tokHeader
				}
				depth++
			} else if depth == 0 {
				return i, tokElement
			}
		}
		// Skip character data to the next markup.
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			return 0, tokMore
		}
		i += j
	}
}

// tagEnd returns the index of the '>' closing the tag whose name starts at
// data[i], skipping quoted attribute values (which may contain '>'), or -1.
func tagEnd(data []byte, i int) int {
	var quote byte
	for ; i < len(data); i++ {
		c := data[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// tokenName returns the qualified name of the element a token starts
// with ("message", "stream:features", "/stream:stream" for the close).
func tokenName(tok []byte) []byte {
	if len(tok) < 2 || tok[0] != '<' {
		return nil
	}
	for i := 1; i < len(tok); i++ {
		switch tok[i] {
		case ' ', '\t', '\r', '\n', '>', '/':
			if i == 1 && tok[i] == '/' {
				continue
			}
			return tok[1:i]
		}
	}
	return tok[1:]
}

// attr returns the raw (still escaped) value of attribute name in the
// first start tag of tok and the quote character it was written with, so
// it can be copied back out unchanged. ok is false when it is absent.
func attr(tok []byte, name string) (val []byte, quote byte, ok bool) {
	gt := tagEnd(tok, 1)
	if gt < 0 {
		gt = len(tok)
	}
	tag := tok[:gt]
	for i := 0; i < len(tag); {
		j := bytes.Index(tag[i:], []byte(name))
		if j < 0 {
			return nil, 0, false
		}
		k := i + j
		i = k + len(name)
		// Must be a whole attribute name: preceded by white space and
		// followed by optional white space, '=', optional white space, quote.
		if k == 0 || !isSpace(tag[k-1]) {
			continue
		}
		p := i
		for p < len(tag) && isSpace(tag[p]) {
			p++
		}
		if p >= len(tag) || tag[p] != '=' {
			continue
		}
		p++
		for p < len(tag) && isSpace(tag[p]) {
			p++
		}
		if p >= len(tag) || (tag[p] != '\'' && tag[p] != '"') {
			continue
		}
		q := tag[p]
		e := bytes.IndexByte(tag[p+1:], q)
		if e < 0 {
			return nil, 0, false
		}
		return tag[p+1 : p+1+e], q, true
	}
	return nil, 0, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// childText returns the character data of the first <name>...</name> (or
// <name attr...>...</name>) inside tok, still escaped.
func childText(tok []byte, name string) ([]byte, bool) {
	open := []byte("<" + name)
	for i := 0; ; {
		j := bytes.Index(tok[i:], open)
		if j < 0 {
			return nil, false
		}
		k := i + j + len(open)
		i = k
		if k >= len(tok) {
			return nil, false
		}
		if c := tok[k]; c != '>' && c != '/' && !isSpace(c) {
			continue // a longer name, e.g. <bodyx>
		}
		gt := tagEnd(tok, k)
		if gt < 0 {
			return nil, false
		}
		if tok[gt-1] == '/' {
			return tok[gt+1 : gt+1], true // <name/>
		}
		e := bytes.IndexByte(tok[gt+1:], '<')
		if e < 0 {
			return nil, false
		}
		return tok[gt+1 : gt+1+e], true
	}
}
