package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const (
	testHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"
	typical    = `<message to='bob@example.com/b' type='chat' id='m1'><body>Hello, this is a short chat message.</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='4f0b6c4e-1c1f-4a8c-9f47-2b8d7a4e9c11'/></message>`
)

// event is one result of Next in a comparable form.
type event struct {
	kind Kind
	xml  string // AppendXML of the element relative to the stream default namespace
}

// collect runs Next until an error and returns the events and that error.
func collect(r io.Reader, lim Limits) ([]event, error) {
	p := NewParser(r, lim)
	var evs []event
	def := ""
	for n := 0; n < 10000; n++ {
		k, el, err := p.Next()
		if err != nil {
			return evs, err
		}
		ev := event{kind: k}
		switch k {
		case StreamStart:
			def = el.Attr("xmlns")
			ev.xml = string(el.AppendStart(nil, ""))
		case Stanza:
			ev.xml = string(el.AppendXML(nil, def))
		}
		evs = append(evs, ev)
	}
	return evs, errors.New("too many events")
}

// parseStanza parses testHeader+s and returns the first stanza.
func parseStanza(t testing.TB, s string) *Element {
	t.Helper()
	p := NewParser(strings.NewReader(testHeader+s), Limits{})
	if k, _, err := p.Next(); err != nil || k != StreamStart {
		t.Fatalf("header: %v %v", k, err)
	}
	k, el, err := p.Next()
	if err != nil || k != Stanza {
		t.Fatalf("parse %q: %v %v", s, k, err)
	}
	return el
}

// diffElement describes the first difference between two trees, or "".
func diffElement(a, b *Element, path string) string {
	path += "/" + a.Prefix + ":" + a.Local
	if a.Space != b.Space || a.Local != b.Local || a.Prefix != b.Prefix {
		return fmt.Sprintf("%s: name {%s}%s:%s vs {%s}%s:%s", path, a.Space, a.Prefix, a.Local, b.Space, b.Prefix, b.Local)
	}
	if len(a.Attrs) != len(b.Attrs) {
		return fmt.Sprintf("%s: attrs %q vs %q", path, a.Attrs, b.Attrs)
	}
	for i := range a.Attrs {
		if a.Attrs[i] != b.Attrs[i] {
			return fmt.Sprintf("%s: attr %d %q vs %q", path, i, a.Attrs[i], b.Attrs[i])
		}
	}
	if len(a.Nodes) != len(b.Nodes) {
		return fmt.Sprintf("%s: %d nodes vs %d", path, len(a.Nodes), len(b.Nodes))
	}
	for i := range a.Nodes {
		x, y := a.Nodes[i], b.Nodes[i]
		switch {
		case (x.El == nil) != (y.El == nil):
			return fmt.Sprintf("%s: node %d kind differs", path, i)
		case x.El != nil:
			if d := diffElement(x.El, y.El, path); d != "" {
				return d
			}
		case x.Text != y.Text:
			return fmt.Sprintf("%s: node %d text %q vs %q", path, i, x.Text, y.Text)
		}
	}
	return ""
}

// script is a reader that returns its chunks one Read at a time; an error
// chunk is returned as an error once. It records the size of every Read.
type script struct {
	chunks []any // string or error
	sizes  []int
}

func (s *script) Read(b []byte) (int, error) {
	s.sizes = append(s.sizes, len(b))
	for len(s.chunks) > 0 {
		switch c := s.chunks[0].(type) {
		case error:
			s.chunks = s.chunks[1:]
			return 0, c
		case string:
			if c == "" {
				s.chunks = s.chunks[1:]
				continue
			}
			n := copy(b, c)
			s.chunks[0] = c[n:]
			return n, nil
		}
	}
	return 0, io.EOF
}

type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }
