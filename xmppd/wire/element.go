package wire

import "strings"

// Element is an XML element: parsed from a stream or built by the server.
//
// Parsed elements keep everything as written (prefixes, namespace
// declarations, attribute order) so a forwarded stanza is byte-for-byte what
// the sender meant, apart from quoting and escaping. All strings of one parsed
// stanza are substrings of a single allocation; holding any of them keeps that
// allocation (about the size of the stanza's text) alive.
type Element struct {
	Space  string // resolved namespace URI (from xmlns / prefix scope, including the stream's default "jabber:client")
	Local  string // local name
	Prefix string // prefix as written ("" when none)
	Attrs  []Attr // attributes as written, in order, INCLUDING namespace declarations (xmlns, xmlns:p)
	Nodes  []Node // ordered content: child elements and character data (mixed content is preserved)
}

// Attr is one attribute. Name is as written ("to", "xml:lang", "xmlns:foo");
// Value is unescaped and normalized as XML 1.0 §3.3.3 requires.
type Attr struct{ Name, Value string }

// Node is one piece of element content: exactly one of El / Text is set.
type Node struct {
	El   *Element
	Text string // unescaped character data
}

// New builds an element. attrs are name, value pairs; New panics on an odd
// count because that is a programming error. When space is not empty an
// xmlns attribute is added first unless attrs already contains one.
func New(space, local string, attrs ...string) *Element {
	if len(attrs)%2 != 0 {
		panic("wire: New(" + local + "): odd number of attribute strings")
	}
	e := &Element{Space: space, Local: local}
	n := len(attrs) / 2
	addNS := space != ""
	for i := 0; i < len(attrs); i += 2 {
		if attrs[i] == "xmlns" {
			addNS = false
		}
	}
	if addNS {
		n++
	}
	if n > 0 {
		e.Attrs = make([]Attr, 0, n)
	}
	if addNS {
		e.Attrs = append(e.Attrs, Attr{"xmlns", space})
	}
	for i := 0; i < len(attrs); i += 2 {
		e.Attrs = append(e.Attrs, Attr{attrs[i], attrs[i+1]})
	}
	return e
}

// Attr returns the value of the first attribute named name ("" when absent).
func (e *Element) Attr(name string) string {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name {
			return e.Attrs[i].Value
		}
	}
	return ""
}

// HasAttr reports whether an attribute named name is present.
func (e *Element) HasAttr(name string) bool {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name {
			return true
		}
	}
	return false
}

// SetAttr replaces the value of the first attribute named name or appends
// it. Parsed top-level elements have room for one more attribute, so
// stamping 'from' (RFC 6120 §8.1.2.1) does not allocate.
func (e *Element) SetAttr(name, value string) {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name {
			e.Attrs[i].Value = value
			return
		}
	}
	e.Attrs = append(e.Attrs, Attr{name, value})
}

// RemoveAttr removes every attribute named name.
func (e *Element) RemoveAttr(name string) {
	out := e.Attrs[:0]
	for _, a := range e.Attrs {
		if a.Name != name {
			out = append(out, a)
		}
	}
	// Clear the tail so removed strings are not kept alive by the array.
	for i := len(out); i < len(e.Attrs); i++ {
		e.Attrs[i] = Attr{}
	}
	e.Attrs = out
}

// Child returns the first child element with that namespace and local name;
// space "" matches any namespace. It returns nil when there is none.
func (e *Element) Child(space, local string) *Element {
	for _, n := range e.Nodes {
		if n.El != nil && n.El.Local == local && (space == "" || n.El.Space == space) {
			return n.El
		}
	}
	return nil
}

// FirstChild returns the first child element or nil.
func (e *Element) FirstChild() *Element {
	for _, n := range e.Nodes {
		if n.El != nil {
			return n.El
		}
	}
	return nil
}

// Text returns the concatenated direct character data of e. It does not
// allocate when there is at most one text node, which is always the case for
// parsed elements without child elements.
func (e *Element) Text() string {
	var first string
	count := 0
	for _, n := range e.Nodes {
		if n.El == nil && n.Text != "" {
			if count == 0 {
				first = n.Text
			}
			count++
		}
	}
	if count <= 1 {
		return first
	}
	var sb strings.Builder
	for _, n := range e.Nodes {
		if n.El == nil {
			sb.WriteString(n.Text)
		}
	}
	return sb.String()
}

// Add appends child elements and returns e, for building trees inline.
func (e *Element) Add(children ...*Element) *Element {
	for _, c := range children {
		if c != nil {
			e.Nodes = append(e.Nodes, Node{El: c})
		}
	}
	return e
}

// AddText appends character data and returns e. Empty strings are ignored so
// that built trees compare equal to parsed ones.
func (e *Element) AddText(s string) *Element {
	if s != "" {
		e.Nodes = append(e.Nodes, Node{Text: s})
	}
	return e
}

// Copy returns a deep copy: the copy's Attrs and Nodes slices and child
// elements are not shared with e (strings are immutable and are shared).
// Like the parser it allocates one slab per kind instead of one object per
// element.
func (e *Element) Copy() *Element {
	var nel, nattr, nnode int
	e.count(&nel, &nattr, &nnode)
	c := &copier{els: make([]Element, nel)}
	if nattr > 0 {
		c.attrs = make([]Attr, nattr)
	}
	if nnode > 0 {
		c.nodes = make([]Node, nnode)
	}
	return c.copy(e)
}

func (e *Element) count(nel, nattr, nnode *int) {
	*nel++
	*nattr += len(e.Attrs)
	*nnode += len(e.Nodes)
	for _, n := range e.Nodes {
		if n.El != nil {
			n.El.count(nel, nattr, nnode)
		}
	}
}

type copier struct {
	els   []Element
	attrs []Attr
	nodes []Node
}

func (c *copier) copy(e *Element) *Element {
	d := &c.els[0]
	c.els = c.els[1:]
	d.Space, d.Local, d.Prefix = e.Space, e.Local, e.Prefix
	if n := len(e.Attrs); n > 0 {
		d.Attrs = c.attrs[:n:n]
		c.attrs = c.attrs[n:]
		copy(d.Attrs, e.Attrs)
	}
	if n := len(e.Nodes); n > 0 {
		d.Nodes = c.nodes[:n:n]
		c.nodes = c.nodes[n:]
		for i, nd := range e.Nodes {
			if nd.El != nil {
				d.Nodes[i].El = c.copy(nd.El)
			} else {
				d.Nodes[i].Text = nd.Text
			}
		}
	}
	return d
}

// ReplaceDefaultNS moves e and the descendants that inherit their default
// namespace from e's scope from namespace from to namespace to, e.g.
// "jabber:client" to "jabber:server" when a client's stanza is routed to a
// peer server (RFC 6120 §4.8.3). Elements with a prefix keep their Space but
// their children are visited; an element with its own xmlns attribute starts
// a new scope and is left alone with its subtree (e.g. a message forwarded
// inside a carbon). It changes e in place.
func (e *Element) ReplaceDefaultNS(from, to string) {
	if e.HasAttr("xmlns") {
		return
	}
	if e.Prefix == "" && e.Space == from {
		e.Space = to
	}
	for _, n := range e.Nodes {
		if n.El != nil {
			n.El.ReplaceDefaultNS(from, to)
		}
	}
}
