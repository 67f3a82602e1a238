package xmppd

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0054 vcard-temp. Users set their own vCard; everyone on the server
// can read it. Server.VCardFields lets the directory own some fields (for
// example FN, EMAIL, TEL, ORG from LDAP): they are merged into every vCard
// served, are never stored, and a set that changes them is refused.

const nsVCard = "vcard-temp"

// vcardAccount serves the user's own vCard (XEP-0054 §3.1, §3.2).
func vcardAccount(c *conn, el, q *wire.Element) {
	if q.Local != "vCard" {
		c.bounce(el, "", errBadRequest)
		return
	}
	switch el.Attr("type") {
	case "get":
		c.sendVCard(el, c.user, true)
	case "set":
		c.setVCard(el, q)
	default:
		c.bounce(el, "", errBadRequest)
	}
}

// vcardContact serves other users' vCards (XEP-0054 §3.3); setting them is
// forbidden (§3.2).
func vcardContact(c *conn, el, q *wire.Element) {
	if q.Local != "vCard" {
		c.bounce(el, "", errBadRequest)
		return
	}
	switch el.Attr("type") {
	case "get":
		if user := c.iqTarget(el); user != "" {
			c.sendVCard(el, user, false)
			return
		}
		c.bounce(el, "", errServiceUnavailable)
	case "set":
		c.bounce(el, "", errForbidden)
	default:
		c.bounce(el, "", errBadRequest)
	}
}

// vcardServer answers for the domain, which has no vCard of its own.
func vcardServer(c *conn, el, q *wire.Element) {
	if el.Attr("type") == "set" {
		c.bounce(el, "", errForbidden)
		return
	}
	c.bounce(el, "", errItemNotFound)
}

// sendVCard answers a get with user's vCard. Without directory fields the
// stored bytes are sent as they are. With no vCard at all, the user's own
// query gets an empty <vCard/> and anyone else's service-unavailable, the
// answer for unknown users too, so vCards do not reveal which accounts
// exist (§3.3).
func (c *conn) sendVCard(el *wire.Element, user string, own bool) {
	s := c.srv
	stored, err := s.Store.VCard(user)
	if err != nil {
		s.Logger.Error("reading vCard", "user", user, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	var dir *wire.Element
	if s.VCardFields != nil {
		dir = s.VCardFields(user)
	}
	r := iqResult(el)
	if n, _ := countFields(dir); n == 0 {
		switch {
		case stored != nil:
			c.sendSpliced(r, "", stored, "")
		case own:
			c.sendElement(r.Add(elem(nsVCard, "vCard")))
		default:
			c.bounce(el, "", errServiceUnavailable)
		}
		return
	}
	var st *wire.Element
	if stored != nil {
		if st, err = wire.ParseElement(stored); err != nil {
			s.Logger.Error("stored vCard does not parse", "user", user, "err", err)
		}
	}
	c.sendElement(r.Add(mergeVCard(dir, st)))
}

// VCard returns the vCard of the account bareJID as other users get it
// (directory fields merged), nil when it has none or there is no such
// account. Components answer with it for a user they stand for: a MUC
// room answers a vCard request to an occupant JID (XEP-0054 vCards live at
// the bare JID, and IQs from a component to a bare JID are not delivered).
func (s *Server) VCard(bareJID string) (*wire.Element, error) {
	a, _, ok := s.resolve(bareJID)
	if !ok || a.kind == addrRemote || a.kind == addrServer {
		return nil, nil
	}
	if _, exists := s.Directory.Person(a.user); !exists {
		return nil, nil
	}
	stored, err := s.Store.VCard(a.user)
	if err != nil {
		return nil, fmt.Errorf("xmppd: vCard of %s: %w", a.user, err)
	}
	var st *wire.Element
	if stored != nil {
		if st, err = wire.ParseElement(stored); err != nil {
			return nil, fmt.Errorf("xmppd: stored vCard of %s: %w", a.user, err)
		}
	}
	var dir *wire.Element
	if s.VCardFields != nil {
		dir = s.VCardFields(a.user)
	}
	if n, _ := countFields(dir); n == 0 {
		return st, nil
	}
	return mergeVCard(dir, st), nil
}

// setVCard replaces the user's vCard (§3.2). Directory fields may be
// repeated unchanged (clients send back what they got) or left out; a
// changed one is not-allowed.
func (c *conn) setVCard(el, v *wire.Element) {
	s := c.srv
	var dir *wire.Element
	if s.VCardFields != nil {
		dir = s.VCardFields(c.user)
	}
	if n, names := countFields(dir); n > 0 {
		for _, name := range names {
			if !sameFields(fieldsNamed(v, name), fieldsNamed(dir, name)) {
				c.bounce(el, "", errNotAllowed.withText(name+" comes from the company directory"))
				return
			}
		}
		// Directory fields are not stored: the directory stays their
		// source, so a later change there shows in every vCard.
		kept := &wire.Element{Space: v.Space, Local: v.Local, Prefix: v.Prefix, Attrs: v.Attrs}
		for _, nd := range v.Nodes {
			if nd.El != nil && !slices.Contains(names, nd.El.Local) {
				kept.Nodes = append(kept.Nodes, nd)
			}
		}
		v = kept
	}
	var doc []byte
	if n, _ := childElements(v); n > 0 {
		var err error
		doc, err = canonicalXML(v, s.MaxVCardBytes)
		switch {
		case errors.Is(err, errTooLarge):
			c.bounce(el, "", errNotAcceptable.withText("the vCard is too large"))
			return
		case err != nil:
			c.bounce(el, "", errBadRequest.withText("the vCard is not self-contained XML"))
			return
		}
	}
	// The store write and the conversion to PEP are one step for any
	// other avatar change of this user.
	defer s.lockAvatar(c.user)()
	// An empty vCard deletes the stored one (doc nil).
	if err := s.Store.SetVCard(c.user, doc); err != nil {
		s.Logger.Error("storing vCard", "user", c.user, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	c.sendElement(iqResult(el))
	s.vcardStored(c.user, v) // XEP-0398 §3.2, avatar.go
}

// countFields returns the number of field elements of a directory vCard
// and their distinct names in order.
func countFields(dir *wire.Element) (int, []string) {
	if dir == nil {
		return 0, nil
	}
	n := 0
	var names []string
	for _, nd := range dir.Nodes {
		if nd.El != nil {
			n++
			if !slices.Contains(names, nd.El.Local) {
				names = append(names, nd.El.Local)
			}
		}
	}
	return n, names
}

// mergeVCard returns the directory's fields followed by the stored fields
// the directory does not own.
func mergeVCard(dir, stored *wire.Element) *wire.Element {
	v := elem(nsVCard, "vCard")
	_, names := countFields(dir)
	for _, nd := range dir.Nodes {
		if nd.El != nil {
			v.Nodes = append(v.Nodes, nd)
		}
	}
	if stored != nil {
		for _, nd := range stored.Nodes {
			if nd.El != nil && !slices.Contains(names, nd.El.Local) {
				v.Nodes = append(v.Nodes, nd)
			}
		}
	}
	return v
}

func fieldsNamed(v *wire.Element, name string) []*wire.Element {
	var out []*wire.Element
	for _, nd := range v.Nodes {
		if nd.El != nil && nd.El.Local == name {
			out = append(out, nd.El)
		}
	}
	return out
}

// sameFields compares what a client sent for a directory field with the
// directory's value. No occurrence at all counts as unchanged.
func sameFields(sent, dir []*wire.Element) bool {
	if len(sent) == 0 {
		return true
	}
	if len(sent) != len(dir) {
		return false
	}
	for i := range sent {
		if !sameField(sent[i], dir[i]) {
			return false
		}
	}
	return true
}

// sameField compares namespace, name, text (trimmed, since clients indent
// differently) and child elements, ignoring prefixes and attributes.
func sameField(a, b *wire.Element) bool {
	if a.Local != b.Local || a.Space != b.Space || strings.TrimSpace(a.Text()) != strings.TrimSpace(b.Text()) {
		return false
	}
	var ac, bc []*wire.Element
	for _, nd := range a.Nodes {
		if nd.El != nil {
			ac = append(ac, nd.El)
		}
	}
	for _, nd := range b.Nodes {
		if nd.El != nil {
			bc = append(bc, nd.El)
		}
	}
	if len(ac) != len(bc) {
		return false
	}
	for i := range ac {
		if !sameField(ac[i], bc[i]) {
			return false
		}
	}
	return true
}
