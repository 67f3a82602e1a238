package wire

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Pass 2 parses one complete frame into a tree. Everything it builds goes
// into a scratch (reused through a pool) as indices and spans; build then
// makes the caller's tree with four allocations: one string holding all
// names, values and text, and one slab each of Elements, Attrs and Nodes.

// span is a string of the stanza: arena[off:end], or, when off < 0, the
// parser's ext[-1-off] (stream-level namespaces, shared by all stanzas).
type span struct{ off, end int32 }

func extSpan(i int) span { return span{off: int32(-1 - i)} }

type tel struct {
	qoff, qend, colon int32 // raw qualified name in the frame; colon < 0 when unprefixed
	name              span  // qualified name copied to the arena
	space             span  // resolved namespace
	defNS             span  // default namespace in scope for the children
	attr0, attr1      int32 // attributes: scratch.attrs[attr0:attr1]
	node0, node1      int32 // content: scratch.nodes[node0:node1], set on close
	nodeMark          int32 // len(scratch.stack) when the content started
	bindMark          int32 // len(scratch.binds) before this element's declarations
}

type tattr struct {
	qoff, qend, colon int32 // raw name in the frame
	name, value       span
	uri               span // namespace of a prefixed attribute, for the duplicate check
	decl              bool // xmlns or xmlns:p
}

type tnode struct {
	el   int32 // index in scratch.els, or -1 for text
	text span
}

type tbind struct {
	poff, pend int32 // prefix in the frame
	uri        span
}

type scratch struct {
	arena []byte
	els   []tel
	attrs []tattr
	nodes []tnode // final content, contiguous per element
	stack []tnode // content of elements still open
	open  []int32
	binds []tbind
	used  []bool // stream-level declarations used by this stanza
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch(nbinds int) *scratch {
	s := scratchPool.Get().(*scratch)
	s.arena = s.arena[:0]
	s.els, s.attrs, s.nodes, s.stack = s.els[:0], s.attrs[:0], s.nodes[:0], s.stack[:0]
	s.open, s.binds = s.open[:0], s.binds[:0]
	if cap(s.used) < nbinds {
		s.used = make([]bool, nbinds)
	}
	s.used = s.used[:nbinds]
	clear(s.used)
	return s
}

// putScratch returns s to the pool unless a big stanza grew it: those are
// rare and the memory should go back to the GC rather than stay pooled.
func putScratch(s *scratch) {
	if cap(s.arena) > 64<<10 || cap(s.els) > 1024 || cap(s.attrs) > 1024 ||
		cap(s.nodes) > 2048 || cap(s.stack) > 2048 || cap(s.binds) > 256 {
		return
	}
	scratchPool.Put(s)
}

// parseTree parses the frame d: a whole stanza, or in header mode only the
// stream header start tag. It reports whether the root was self-closing.
func (p *Parser) parseTree(d []byte, header bool) (*Element, bool, error) {
	s := getScratch(len(p.binds))
	// Decoding never makes text longer than its markup, so one arena of
	// len(d) bytes is enough and never grows while parsing.
	if cap(s.arena) < len(d) {
		s.arena = make([]byte, 0, len(d))
	}
	el, selfClosed, err := p.parseInto(s, d, header)
	putScratch(s)
	return el, selfClosed, err
}

func (p *Parser) parseInto(s *scratch, d []byte, header bool) (*Element, bool, error) {
	i, selfClosed, err := p.startTag(s, d, 0, header)
	if err != nil {
		return nil, false, err
	}
	if !header {
		for len(s.open) > 0 {
			if i >= len(d) {
				return nil, false, p.errAt(NotWellFormed, i, "unexpected end of stanza")
			}
			if d[i] != '<' {
				if i, err = p.text(s, d, i); err != nil {
					return nil, false, err
				}
				continue
			}
			if i+1 >= len(d) {
				return nil, false, p.errAt(NotWellFormed, i, "unexpected end of stanza")
			}
			switch d[i+1] {
			case '/':
				i, err = p.endTag(s, d, i)
			case '!':
				switch {
				case bytes.HasPrefix(d[i:], []byte("<![CDATA[")):
					i, err = p.cdata(s, d, i)
				case bytes.HasPrefix(d[i:], []byte("<!-")):
					err = p.errAt(RestrictedXML, i, "comment")
				case i+2 < len(d) && nameClass[d[i+2]]&nameStart != 0:
					err = p.errAt(RestrictedXML, i, "document type declaration")
				default:
					err = p.errAt(NotWellFormed, i, "bad markup after '<!'")
				}
			case '?':
				err = p.errAt(RestrictedXML, i, "processing instruction")
			default:
				i, _, err = p.startTag(s, d, i, false)
			}
			if err != nil {
				return nil, false, err
			}
		}
	}
	if i != len(d) {
		return nil, false, p.errAt(NotWellFormed, i, "unexpected data after element")
	}
	return p.build(s, header), selfClosed, nil
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// startTag parses the start tag at d[i] == '<' (XML 1.0 §3.1) and resolves
// namespaces (Namespaces in XML §5, §6).
func (p *Parser) startTag(s *scratch, d []byte, i int, header bool) (int, bool, error) {
	idx := int32(len(s.els))
	parentNS := extSpan(0) // the stream's default namespace
	if n := len(s.open); n > 0 {
		s.stack = append(s.stack, tnode{el: idx})
		parentNS = s.els[s.open[n-1]].defNS
	}
	i++
	qoff := i
	i, colon, err := p.qname(d, i)
	if err != nil {
		return 0, false, err
	}
	e := tel{
		qoff: int32(qoff), qend: int32(i), colon: int32(colon),
		name:     s.add(d[qoff:i]),
		defNS:    parentNS,
		attr0:    int32(len(s.attrs)),
		nodeMark: int32(len(s.stack)),
		bindMark: int32(len(s.binds)),
	}
	selfClose := false
	for {
		j := skipSpace(d, i)
		if j >= len(d) {
			return 0, false, p.errAt(NotWellFormed, j, "unexpected end of start tag")
		}
		if c := d[j]; c == '>' {
			i = j + 1
			break
		} else if c == '/' {
			if j+1 < len(d) && d[j+1] == '>' {
				i = j + 2
				selfClose = true
				break
			}
			return 0, false, p.errAt(NotWellFormed, j, "expected '>' after '/'")
		}
		if j == i {
			return 0, false, p.errAt(NotWellFormed, j, "expected white space before attribute")
		}
		if len(s.attrs)-int(e.attr0) >= p.lim.MaxAttrs {
			return 0, false, p.errAt(PolicyViolation, j, "more than "+strconv.Itoa(p.lim.MaxAttrs)+" attributes")
		}
		aoff := j
		aend, acolon, err := p.qname(d, j)
		if err != nil {
			return 0, false, err
		}
		i = skipSpace(d, aend)
		if i >= len(d) || d[i] != '=' {
			return 0, false, p.errAt(NotWellFormed, i, "expected '=' after attribute name")
		}
		i = skipSpace(d, i+1)
		if i >= len(d) || d[i] != '\'' && d[i] != '"' {
			return 0, false, p.errAt(NotWellFormed, i, "expected quoted attribute value")
		}
		a := tattr{qoff: int32(aoff), qend: int32(aend), colon: int32(acolon), name: s.add(d[aoff:aend])}
		v0 := len(s.arena)
		if i, err = p.attrValue(s, d, i+1, d[i]); err != nil {
			return 0, false, err
		}
		a.value = span{int32(v0), int32(len(s.arena))}
		val := s.arena[v0:]
		switch {
		case acolon < 0 && string(d[aoff:aend]) == "xmlns":
			// Namespaces in XML §3: the xml and xmlns namespaces cannot be the default.
			if string(val) == xmlNS || string(val) == xmlnsNS {
				return 0, false, p.errAt(NotWellFormed, aoff, "reserved namespace as default namespace")
			}
			e.defNS = a.value
			a.decl = true
		case acolon >= 0 && string(d[aoff:acolon]) == "xmlns":
			prefix := d[acolon+1 : aend]
			switch {
			case string(prefix) == "xmlns":
				return 0, false, p.errAt(NotWellFormed, aoff, "the xmlns prefix must not be declared")
			case string(prefix) == "xml" && string(val) != xmlNS,
				string(prefix) != "xml" && string(val) == xmlNS,
				string(val) == xmlnsNS:
				return 0, false, p.errAt(NotWellFormed, aoff, "reserved prefix or namespace misused")
			case len(val) == 0:
				// Namespaces in XML 1.0 §5 forbids undeclaring a prefix.
				return 0, false, p.errAt(NotWellFormed, aoff, "empty namespace for prefix "+string(prefix))
			}
			// Lookups scan the declarations in scope, so bound them to keep
			// prefix resolution linear in the stanza size.
			if len(s.binds) >= p.lim.MaxAttrs {
				return 0, false, p.errAt(PolicyViolation, aoff, "more than "+strconv.Itoa(p.lim.MaxAttrs)+" namespace declarations in scope")
			}
			s.binds = append(s.binds, tbind{poff: int32(acolon + 1), pend: int32(aend), uri: a.value})
			a.decl = true
		}
		s.attrs = append(s.attrs, a)
	}
	e.attr1 = int32(len(s.attrs))

	if colon < 0 {
		e.space = e.defNS
	} else {
		prefix := d[qoff:colon]
		if string(prefix) == "xmlns" {
			return 0, false, p.errAt(NotWellFormed, qoff, "element with the xmlns prefix")
		}
		sp, ok := p.lookup(s, d, prefix)
		if !ok {
			if header {
				// RFC 6120 §4.8.1: without its namespace the header is not a stream header.
				return 0, false, p.errAt(InvalidNamespace, qoff, "stream namespace prefix "+strconv.Quote(string(prefix))+" not declared")
			}
			return 0, false, p.errAt(NotWellFormed, qoff, "undeclared namespace prefix "+strconv.Quote(string(prefix)))
		}
		e.space = sp
	}
	// Attribute names must be unique, both as written (XML 1.0 §3.1) and
	// as expanded names (Namespaces in XML §6.3).
	for k := int(e.attr0); k < len(s.attrs); k++ {
		a := &s.attrs[k]
		raw := d[a.qoff:a.qend]
		if a.colon >= 0 && !a.decl {
			sp, ok := p.lookup(s, d, d[a.qoff:a.colon])
			if !ok {
				return 0, false, p.errAt(NotWellFormed, int(a.qoff), "undeclared namespace prefix "+strconv.Quote(string(d[a.qoff:a.colon])))
			}
			a.uri = sp
		}
		for m := int(e.attr0); m < k; m++ {
			b := &s.attrs[m]
			if bytes.Equal(raw, d[b.qoff:b.qend]) ||
				a.colon >= 0 && !a.decl && b.colon >= 0 && !b.decl &&
					bytes.Equal(d[a.colon+1:a.qend], d[b.colon+1:b.qend]) && p.sameSpan(s, a.uri, b.uri) {
				return 0, false, p.errAt(NotWellFormed, int(a.qoff), "duplicate attribute "+strconv.Quote(string(raw)))
			}
		}
	}
	s.els = append(s.els, e)
	if selfClose {
		s.close(idx)
	} else {
		s.open = append(s.open, idx)
	}
	return i, selfClose, nil
}

// lookup resolves a prefix: declarations inside the stanza first, then the
// implicit xml prefix, then the declarations of the stream header.
func (p *Parser) lookup(s *scratch, d []byte, prefix []byte) (span, bool) {
	for k := len(s.binds) - 1; k >= 0; k-- {
		if b := &s.binds[k]; bytes.Equal(d[b.poff:b.pend], prefix) {
			return b.uri, true
		}
	}
	if string(prefix) == "xml" {
		return extSpan(1), true
	}
	for k := range p.binds {
		if p.binds[k].prefix == string(prefix) {
			if k != p.selfBind {
				s.used[k] = true
			}
			return extSpan(2 + k), true
		}
	}
	return span{}, false
}

func (p *Parser) sameSpan(s *scratch, a, b span) bool {
	switch {
	case a == b:
		return true
	case a.off < 0 && b.off < 0:
		return p.ext[-1-a.off] == p.ext[-1-b.off]
	case a.off < 0:
		return p.ext[-1-a.off] == string(s.arena[b.off:b.end])
	case b.off < 0:
		return p.ext[-1-b.off] == string(s.arena[a.off:a.end])
	}
	return bytes.Equal(s.arena[a.off:a.end], s.arena[b.off:b.end])
}

func (s *scratch) add(b []byte) span {
	off := len(s.arena)
	s.arena = append(s.arena, b...)
	return span{int32(off), int32(len(s.arena))}
}

// close ends element idx: its content moves from the stack to its final,
// contiguous place, and its namespace declarations go out of scope.
func (s *scratch) close(idx int32) {
	e := &s.els[idx]
	e.node0 = int32(len(s.nodes))
	s.nodes = append(s.nodes, s.stack[e.nodeMark:]...)
	e.node1 = int32(len(s.nodes))
	s.stack = s.stack[:e.nodeMark]
	s.binds = s.binds[:e.bindMark]
}

// endTag parses the end tag at d[i:] ("</") and closes the open element it
// must match (XML 1.0 §3, element type match).
func (p *Parser) endTag(s *scratch, d []byte, i int) (int, error) {
	top := s.open[len(s.open)-1]
	e := &s.els[top]
	name := d[e.qoff:e.qend]
	j := i + 2
	if !bytes.HasPrefix(d[j:], name) {
		return 0, p.errAt(NotWellFormed, i, "end tag does not match <"+string(name)+">")
	}
	j = skipSpace(d, j+len(name))
	if j >= len(d) || d[j] != '>' {
		return 0, p.errAt(NotWellFormed, i, "end tag does not match <"+string(name)+">")
	}
	s.close(top)
	s.open = s.open[:len(s.open)-1]
	return j + 1, nil
}

// addText records arena[start:] as character data of the innermost open
// element, merging it with text right before it (text, CDATA, text).
func (s *scratch) addText(start int) {
	if len(s.arena) == start {
		return
	}
	e := &s.els[s.open[len(s.open)-1]]
	if n := len(s.stack); n > int(e.nodeMark) {
		if t := &s.stack[n-1]; t.el < 0 && int(t.text.end) == start {
			t.text.end = int32(len(s.arena))
			return
		}
	}
	s.stack = append(s.stack, tnode{el: -1, text: span{int32(start), int32(len(s.arena))}})
}

// text decodes character data at d[i:] up to the next '<' into the arena:
// references are replaced, line ends normalized (XML 1.0 §2.11), and every
// character checked against Char (§2.2). "]]>" is not allowed (§2.4).
func (p *Parser) text(s *scratch, d []byte, i int) (int, error) {
	start := len(s.arena)
	last := i
	var err error
	for i < len(d) {
		c := d[i]
		if textClass[c] == 0 {
			i++
			continue
		}
		switch {
		case c == '<':
			goto done
		case c == '&':
			s.arena = append(s.arena, d[last:i]...)
			if i, err = p.ref(s, d, i); err != nil {
				return 0, err
			}
			last = i
		case c == '\r':
			s.arena = append(s.arena, d[last:i]...)
			s.arena = append(s.arena, '\n')
			if i++; i < len(d) && d[i] == '\n' {
				i++
			}
			last = i
		case c == ']':
			if i+2 < len(d) && d[i+1] == ']' && d[i+2] == '>' {
				return 0, p.errAt(NotWellFormed, i, "']]>' in character data")
			}
			i++
		case c >= utf8.RuneSelf:
			if i, err = p.char(d, i); err != nil {
				return 0, err
			}
		default:
			return 0, p.errAt(NotWellFormed, i, "control character "+strconv.Itoa(int(c)))
		}
	}
done:
	s.arena = append(s.arena, d[last:i]...)
	s.addText(start)
	return i, nil
}

// char checks the multi-byte UTF-8 character at d[i] and returns its end.
func (p *Parser) char(d []byte, i int) (int, error) {
	r, size := utf8.DecodeRune(d[i:])
	if r == utf8.RuneError && size == 1 {
		return 0, p.errAt(NotWellFormed, i, "invalid UTF-8")
	}
	if !isChar(r) {
		return 0, p.errAt(NotWellFormed, i, "invalid character "+strconv.QuoteRune(r))
	}
	return i + size, nil
}

// attrValue decodes the attribute value at d[i:] up to the quote q into the
// arena, applying attribute-value normalization (XML 1.0 §3.3.3: literal
// white space becomes a space, references are kept), and returns the index
// after the closing quote.
func (p *Parser) attrValue(s *scratch, d []byte, i int, q byte) (int, error) {
	last := i
	var err error
	for i < len(d) {
		c := d[i]
		if attrClass[c] == 0 {
			i++
			continue
		}
		switch {
		case c == q:
			s.arena = append(s.arena, d[last:i]...)
			return i + 1, nil
		case c == '\'' || c == '"':
			i++
		case c == '<':
			return 0, p.errAt(NotWellFormed, i, "'<' in attribute value")
		case c == '&':
			s.arena = append(s.arena, d[last:i]...)
			if i, err = p.ref(s, d, i); err != nil {
				return 0, err
			}
			last = i
		case c == '\t' || c == '\n' || c == '\r':
			s.arena = append(s.arena, d[last:i]...)
			s.arena = append(s.arena, ' ')
			if i++; c == '\r' && i < len(d) && d[i] == '\n' {
				i++
			}
			last = i
		case c >= utf8.RuneSelf:
			if i, err = p.char(d, i); err != nil {
				return 0, err
			}
		default:
			return 0, p.errAt(NotWellFormed, i, "control character "+strconv.Itoa(int(c)))
		}
	}
	return 0, p.errAt(NotWellFormed, i, "unterminated attribute value")
}

// ref decodes the reference at d[i] == '&' into the arena. Character
// references and the five predefined entities are allowed; any other entity
// reference is restricted XML (RFC 6120 §11.1).
func (p *Parser) ref(s *scratch, d []byte, i int) (int, error) {
	j := i + 1
	if j < len(d) && d[j] == '#' {
		j++
		base := 10
		if j < len(d) && d[j] == 'x' {
			base = 16
			j++
		}
		start := j
		v := 0
		for ; j < len(d) && d[j] != ';'; j++ {
			c := d[j]
			var n int
			switch {
			case c >= '0' && c <= '9':
				n = int(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				n = int(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				n = int(c-'A') + 10
			default:
				return 0, p.errAt(NotWellFormed, i, "bad character reference")
			}
			if v = v*base + n; v > utf8.MaxRune {
				return 0, p.errAt(NotWellFormed, i, "character reference out of range")
			}
		}
		if j == start || j >= len(d) {
			return 0, p.errAt(NotWellFormed, i, "bad character reference")
		}
		if !isChar(rune(v)) {
			return 0, p.errAt(NotWellFormed, i, "character reference to invalid character")
		}
		s.arena = utf8.AppendRune(s.arena, rune(v))
		return j + 1, nil
	}
	start := j
	for j < len(d) && d[j] != ';' {
		c := d[j]
		if c < utf8.RuneSelf {
			if nameClass[c] == 0 && c != ':' || j == start && nameClass[c]&nameStart == 0 && c != ':' {
				return 0, p.errAt(NotWellFormed, i, "bad entity reference")
			}
			j++
			continue
		}
		r, size := utf8.DecodeRune(d[j:])
		if size == 1 || j == start && !isNameStartRune(r) || !isNameRune(r) {
			return 0, p.errAt(NotWellFormed, i, "bad entity reference")
		}
		j += size
	}
	if j == start || j >= len(d) {
		return 0, p.errAt(NotWellFormed, i, "bad entity reference")
	}
	var c byte
	switch string(d[start:j]) {
	case "lt":
		c = '<'
	case "gt":
		c = '>'
	case "amp":
		c = '&'
	case "apos":
		c = '\''
	case "quot":
		c = '"'
	default:
		return 0, p.errAt(RestrictedXML, i, "entity reference &"+string(d[start:j])+";")
	}
	s.arena = append(s.arena, c)
	return j + 1, nil
}

// cdata decodes the CDATA section at d[i:] (XML 1.0 §2.7) into the arena as
// character data.
func (p *Parser) cdata(s *scratch, d []byte, i int) (int, error) {
	i += len("<![CDATA[")
	n := bytes.Index(d[i:], []byte("]]>"))
	if n < 0 {
		return 0, p.errAt(NotWellFormed, i, "unterminated CDATA section")
	}
	end := i + n
	start := len(s.arena)
	last := i
	var err error
	for i < end {
		c := d[i]
		switch {
		case c >= 0x20 && c < utf8.RuneSelf || c == '\t' || c == '\n':
			i++
		case c == '\r':
			s.arena = append(s.arena, d[last:i]...)
			s.arena = append(s.arena, '\n')
			if i++; i < end && d[i] == '\n' {
				i++
			}
			last = i
		case c >= utf8.RuneSelf:
			if i, err = p.char(d[:end], i); err != nil {
				return 0, err
			}
		default:
			return 0, p.errAt(NotWellFormed, i, "control character "+strconv.Itoa(int(c)))
		}
	}
	s.arena = append(s.arena, d[last:end]...)
	s.addText(start)
	return end + 3, nil
}

// qname scans a QName (Namespaces in XML §4) at d[i:] and returns its end
// and the index of its colon (-1 when there is none).
func (p *Parser) qname(d []byte, i int) (int, int, error) {
	start, colon := i, -1
	atStart := true
	for i < len(d) {
		c := d[i]
		if c < utf8.RuneSelf {
			cl := nameClass[c]
			if c == ':' {
				if colon >= 0 || atStart {
					return 0, 0, p.errAt(NotWellFormed, start, "bad qualified name")
				}
				colon = i
				atStart = true
				i++
				continue
			}
			if cl == 0 {
				break
			}
			if atStart && cl&nameStart == 0 {
				return 0, 0, p.errAt(NotWellFormed, start, "bad name")
			}
			atStart = false
			i++
			continue
		}
		r, size := utf8.DecodeRune(d[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, 0, p.errAt(NotWellFormed, i, "invalid UTF-8")
		}
		if atStart {
			if !isNameStartRune(r) {
				return 0, 0, p.errAt(NotWellFormed, start, "bad name")
			}
		} else if !isNameRune(r) {
			break
		}
		atStart = false
		i += size
	}
	if atStart {
		return 0, 0, p.errAt(NotWellFormed, start, "bad name")
	}
	return i, colon, nil
}

// build makes the caller's tree from the scratch with one string and three
// slabs. Sub-slices are capped (s[a:b:b]) so appending to one element's
// Attrs or Nodes can never overwrite a neighbour's. The root gets one spare
// Attr slot for the 'from' the server stamps on every forwarded stanza.
func (p *Parser) build(s *scratch, header bool) *Element {
	arena := string(s.arena)
	str := func(sp span) string {
		if sp.off < 0 {
			return p.ext[-1-sp.off]
		}
		return arena[sp.off:sp.end]
	}
	extra := 0
	for _, u := range s.used {
		if u {
			extra++
		}
	}
	spare := 1
	if header {
		spare = 0
	}
	els := make([]Element, len(s.els))
	var attrs []Attr
	if n := len(s.attrs) + extra + spare; n > 0 {
		attrs = make([]Attr, n)
	}
	var nodes []Node
	if len(s.nodes) > 0 {
		nodes = make([]Node, len(s.nodes))
	}
	ai := 0
	for k := range s.els {
		t, e := &s.els[k], &els[k]
		name := str(t.name)
		if t.colon >= 0 {
			c := t.colon - t.qoff
			e.Prefix, e.Local = name[:c], name[c+1:]
		} else {
			e.Local = name
		}
		e.Space = str(t.space)
		start := ai
		for m := t.attr0; m < t.attr1; m++ {
			a := &s.attrs[m]
			attrs[ai] = Attr{Name: str(a.name), Value: str(a.value)}
			ai++
		}
		if k == 0 {
			for b, u := range s.used {
				if u {
					attrs[ai] = Attr{Name: p.binds[b].attr, Value: p.binds[b].uri}
					ai++
				}
			}
		}
		end := ai
		if k == 0 {
			ai += spare
		}
		if ai > start {
			e.Attrs = attrs[start:end:ai]
		}
		if t.node1 > t.node0 {
			e.Nodes = nodes[t.node0:t.node1:t.node1]
			for m, n := range s.nodes[t.node0:t.node1] {
				if n.el >= 0 {
					e.Nodes[m].El = &els[n.el]
				} else {
					e.Nodes[m].Text = str(n.text)
				}
			}
		}
	}
	return &els[0]
}

// setStream checks the stream header (RFC 6120 §4.8.1) and records its
// namespace scope for the stanzas.
func (p *Parser) setStream(el *Element) error {
	if el.Space != StreamsNS {
		return p.errAt(InvalidNamespace, 0, "stream element in namespace "+strconv.Quote(el.Space))
	}
	if el.Local != "stream" {
		return p.errAt(BadFormat, 0, "stream header is <"+el.Local+">, not <stream>")
	}
	p.binds = p.binds[:0]
	p.ext = append(p.ext[:0], "", xmlNS)
	p.selfBind = -1
	for _, a := range el.Attrs {
		switch {
		case a.Name == "xmlns":
			p.ext[0] = a.Value
		case strings.HasPrefix(a.Name, "xmlns:"):
			if a.Name[6:] == el.Prefix {
				p.selfBind = len(p.binds)
			}
			p.binds = append(p.binds, streamBind{prefix: a.Name[6:], attr: a.Name, uri: a.Value})
			p.ext = append(p.ext, a.Value)
		}
	}
	p.streamQName = el.Local
	if el.Prefix != "" {
		p.streamQName = el.Prefix + ":" + el.Local
	}
	return nil
}

// parseEnd checks that the end tag d closes the stream element.
func (p *Parser) parseEnd(d []byte) error {
	name := d[2:]
	if !strings.HasPrefix(string(name), p.streamQName) {
		return p.errAt(NotWellFormed, 0, "end tag does not match <"+p.streamQName+">")
	}
	j := skipSpace(d, 2+len(p.streamQName))
	if j != len(d)-1 || d[j] != '>' {
		return p.errAt(NotWellFormed, 0, "end tag does not match <"+p.streamQName+">")
	}
	return nil
}

// parseDecl checks the XML declaration d (XML 1.0 §2.8). Only version 1.x
// and the UTF-8 encoding are accepted (RFC 6120 §11.6, §11.8).
func (p *Parser) parseDecl(d []byte) error {
	if len(d) < 7 || string(d[:5]) != "<?xml" || !isSpace(d[5]) {
		return p.errAt(RestrictedXML, 0, "processing instruction")
	}
	body := d[:len(d)-2]
	i := 5
	seen := 0
	for {
		j := skipSpace(body, i)
		if j == len(body) {
			break
		}
		if j == i {
			return p.errAt(NotWellFormed, j, "bad XML declaration")
		}
		i = j
		for i < len(body) && body[i] >= 'a' && body[i] <= 'z' {
			i++
		}
		name := string(body[j:i])
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != '=' {
			return p.errAt(NotWellFormed, i, "bad XML declaration")
		}
		i = skipSpace(body, i+1)
		if i >= len(body) || body[i] != '\'' && body[i] != '"' {
			return p.errAt(NotWellFormed, i, "bad XML declaration")
		}
		n := bytes.IndexByte(body[i+1:], body[i])
		if n < 0 {
			return p.errAt(NotWellFormed, i, "bad XML declaration")
		}
		val := string(body[i+1 : i+1+n])
		i += n + 2
		switch {
		case name == "version" && seen == 0:
			if len(val) < 3 || val[:2] != "1." || strings.Trim(val[2:], "0123456789") != "" {
				return p.errAt(NotWellFormed, j, "unsupported XML version "+strconv.Quote(val))
			}
		case name == "encoding" && seen == 1:
			if !strings.EqualFold(val, "UTF-8") {
				return p.errAt(UnsupportedEncoding, j, "encoding "+strconv.Quote(val)+" is not UTF-8")
			}
		case name == "standalone" && seen >= 1 && (val == "yes" || val == "no"):
		default:
			return p.errAt(NotWellFormed, j, "bad XML declaration")
		}
		if name == "standalone" {
			seen = 3
		} else {
			seen++
		}
	}
	if seen == 0 {
		return p.errAt(NotWellFormed, 0, "XML declaration without version")
	}
	return nil
}
