package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// fragmentHead presents a stored element to the parser, which reads
// streams, as the first stanza of a jabber:client stream.
const fragmentHead = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

// ParseElement parses one element serialized by AppendXML(b, "jabber:client"):
// a stored stanza (offline queue, archive) or document (private XML,
// bookmarks). It is for paths that read what the server stored, not for
// each stanza on the wire. Anything after the element is an error.
func ParseElement(b []byte) (*Element, error) {
	p := NewParser(io.MultiReader(strings.NewReader(fragmentHead), bytes.NewReader(b)),
		Limits{MaxStanzaBytes: len(fragmentHead) + len(b) + 64})
	if k, _, err := p.Next(); err != nil || k != StreamStart {
		return nil, fmt.Errorf("wire: parse stored element: header: %v", err)
	}
	k, el, err := p.Next()
	if err != nil {
		return nil, fmt.Errorf("wire: parse stored element: %w", err)
	}
	if k != Stanza {
		return nil, errors.New("wire: parse stored element: no element")
	}
	if k, _, err := p.Next(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("wire: parse stored element: trailing data (%v %v)", k, err)
	}
	return el, nil
}
