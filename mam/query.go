// Package mam is the protocol side of XEP-0313 Message Archive Management
// (urn:xmpp:mam:2 and #extended) with XEP-0059 Result Set Management: it
// turns a query IQ into a store.ArchiveQuery and renders the result
// messages, the <fin/>, the query form, the archive metadata and the
// preferences. It serves both the user archives (package xmppd) and the
// room archives (package muc), so it knows neither; it imports only store
// and xmppd/wire (ARCHITECTURE.md import rules).
package mam

import (
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// Namespaces.
const (
	NS         = "urn:xmpp:mam:2"
	NSExtended = NS + "#extended" // before-id, after-id, ids, flip-page, metadata
	NSRSM      = "http://jabber.org/protocol/rsm"
	NSForward  = "urn:xmpp:forward:0"
	NSDelay    = "urn:xmpp:delay"
	NSSID      = "urn:xmpp:sid:0"
	nsData     = "jabber:x:data"
	nsClient   = "jabber:client"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// DefaultMaxPage is the page size when the archive sets none.
const DefaultMaxPage = 100

// Error is a stanza error to send back for a query (RFC 6120 §8.3).
type Error struct {
	Type      string // cancel, modify, auth, wait
	Condition string // defined condition, e.g. "item-not-found"
	Text      string // optional human-readable text
}

func (e *Error) Error() string {
	if e.Text != "" {
		return "mam: " + e.Condition + ": " + e.Text
	}
	return "mam: " + e.Condition
}

// Element is the <error/> child of the reply.
func (e *Error) Element() *wire.Element {
	er := &wire.Element{Space: nsClient, Local: "error", Attrs: []wire.Attr{{Name: "type", Value: e.Type}}}
	er.Add(wire.New(nsStanzas, e.Condition))
	if e.Text != "" {
		er.Add(wire.New(nsStanzas, "text", "xml:lang", "en").AddText(e.Text))
	}
	return er
}

func badRequest(text string) *Error { return &Error{"modify", "bad-request", text} }

// Errors shared by the archives.
var (
	// ErrItemNotFound answers an RSM after/before (or before-id/after-id)
	// naming an id that is not in the archive (XEP-0313 §4.3.3).
	ErrItemNotFound = &Error{Type: "cancel", Condition: "item-not-found"}
	// ErrNotImplemented is the answer of a disabled archive.
	ErrNotImplemented = &Error{Type: "cancel", Condition: "feature-not-implemented"}
	// ErrForbidden refuses a query to an archive that is not the sender's.
	ErrForbidden = &Error{Type: "auth", Condition: "forbidden"}
)

// Request is a parsed query: the store query plus what only the protocol
// needs.
type Request struct {
	QueryID string
	Query   store.ArchiveQuery
	// Flip sends the page newest first (§4.3.5); first/last in the fin
	// still name the oldest and the newest result.
	Flip bool
	// CountOnly is an RSM max of 0 (XEP-0059 §2.6): only the count.
	CountOnly bool
	// MustExist are the ids the client paged from: each must be in the
	// archive, or the answer is item-not-found (§4.3.3). The store treats
	// paging ids as plain bounds, so the caller checks with Exists.
	MustExist []store.ArchiveID
}

// ParseQuery parses an iq set's <query xmlns='urn:xmpp:mam:2'/> for the
// archive owner. maxPage caps the page size (<= 0: DefaultMaxPage). The
// error is always an *Error.
func ParseQuery(q *wire.Element, owner string, maxPage int) (Request, error) {
	if maxPage <= 0 {
		maxPage = DefaultMaxPage
	}
	r := Request{QueryID: q.Attr("queryid"), Query: store.ArchiveQuery{Owner: owner, Max: maxPage, Count: true}}
	var afterIDs, beforeIDs []store.ArchiveID
	for _, n := range q.Nodes {
		el := n.El
		if el == nil {
			continue
		}
		switch {
		case el.Space == nsData && el.Local == "x":
			if err := parseForm(el, &r, &afterIDs, &beforeIDs); err != nil {
				return Request{}, err
			}
		case el.Space == NSRSM && el.Local == "set":
			if err := parseRSM(el, &r, maxPage); err != nil {
				return Request{}, err
			}
		case el.Space == NS && el.Local == "flip-page":
			r.Flip = true
		}
	}
	// The form's before-id/after-id (§5, #extended) bound the range; the
	// tighter of a form bound and an RSM bound wins.
	for _, id := range afterIDs {
		if id > r.Query.AfterID {
			r.Query.AfterID = id
		}
	}
	for _, id := range beforeIDs {
		if r.Query.BeforeID == 0 || id < r.Query.BeforeID {
			r.Query.BeforeID = id
		}
	}
	if !r.Query.Start.IsZero() && !r.Query.End.IsZero() && r.Query.End.Before(r.Query.Start) {
		return Request{}, badRequest("end is before start")
	}
	return r, nil
}

// parseForm reads the data form (§4.1, §5). Unknown fields are
// feature-not-implemented (§4.1.1).
func parseForm(x *wire.Element, r *Request, afterIDs, beforeIDs *[]store.ArchiveID) error {
	if t := x.Attr("type"); t != "" && t != "submit" {
		return badRequest("the query form must be of type submit")
	}
	for _, n := range x.Nodes {
		f := n.El
		if f == nil || f.Space != nsData || f.Local != "field" {
			continue
		}
		values := fieldValues(f)
		one := func() (string, error) {
			if len(values) != 1 {
				return "", badRequest("field " + f.Attr("var") + " needs exactly one value")
			}
			return strings.TrimSpace(values[0]), nil
		}
		switch v := f.Attr("var"); v {
		case "FORM_TYPE":
			if len(values) != 1 || values[0] != NS {
				return badRequest("FORM_TYPE must be " + NS)
			}
		case "with":
			s, err := one()
			if err != nil {
				return err
			}
			j, perr := jid.Parse(s)
			if perr != nil {
				return badRequest("with: " + perr.Error())
			}
			r.Query.With = j.String()
		case "start", "end":
			s, err := one()
			if err != nil {
				return err
			}
			t, perr := parseTime(s)
			if perr != nil {
				return badRequest(v + ": not an XEP-0082 date-time")
			}
			if v == "start" {
				r.Query.Start = t
			} else {
				r.Query.End = t
			}
		case "after-id", "before-id":
			s, err := one()
			if err != nil {
				return err
			}
			id, perr := store.ParseArchiveID(s)
			if perr != nil {
				return ErrItemNotFound // an id we never issued is not in the archive
			}
			r.MustExist = append(r.MustExist, id)
			if v == "after-id" {
				*afterIDs = append(*afterIDs, id)
			} else {
				*beforeIDs = append(*beforeIDs, id)
			}
		case "ids":
			for _, s := range values {
				id, perr := store.ParseArchiveID(strings.TrimSpace(s))
				if perr != nil {
					// §5: ids that do not exist simply match nothing.
					continue
				}
				r.Query.IDs = append(r.Query.IDs, id)
			}
			if len(r.Query.IDs) == 0 {
				// Only unknown ids: an impossible id keeps the filter
				// on rather than dropping it (which would match all).
				r.Query.IDs = []store.ArchiveID{^store.ArchiveID(0)}
			}
		default:
			return &Error{Type: "cancel", Condition: "feature-not-implemented", Text: "unknown field " + v}
		}
	}
	return nil
}

func fieldValues(f *wire.Element) []string {
	var vs []string
	for _, n := range f.Nodes {
		if n.El != nil && n.El.Local == "value" {
			vs = append(vs, n.El.Text())
		}
	}
	return vs
}

// parseTime accepts XEP-0082 DateTime: RFC 3339 with optional fractions.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// parseRSM reads XEP-0059 <set/>: max (capped), after, before (empty: the
// last page). index is not supported (§2.4 is optional for a responder).
func parseRSM(set *wire.Element, r *Request, maxPage int) error {
	for _, n := range set.Nodes {
		el := n.El
		if el == nil || el.Space != NSRSM {
			continue
		}
		text := strings.TrimSpace(el.Text())
		switch el.Local {
		case "max":
			m, err := strconv.Atoi(text)
			if err != nil || m < 0 {
				return badRequest("max must be a non-negative integer")
			}
			if m == 0 {
				r.CountOnly = true
				m = 1
			}
			r.Query.Max = min(m, maxPage)
		case "after":
			id, err := store.ParseArchiveID(text)
			if err != nil {
				return ErrItemNotFound
			}
			r.Query.AfterID = max(r.Query.AfterID, id)
			r.MustExist = append(r.MustExist, id)
		case "before":
			r.Query.Backward = true
			if text == "" {
				continue
			}
			id, err := store.ParseArchiveID(text)
			if err != nil {
				return ErrItemNotFound
			}
			if r.Query.BeforeID == 0 || id < r.Query.BeforeID {
				r.Query.BeforeID = id
			}
			r.MustExist = append(r.MustExist, id)
		case "index":
			return &Error{Type: "cancel", Condition: "feature-not-implemented", Text: "RSM index is not supported; page with after/before"}
		}
	}
	return nil
}

// Exists reports whether every id in ids is in the owner's archive, with
// a point lookup each; the caller passes the store's QueryArchive.
func Exists(query func(store.ArchiveQuery) (store.ArchivePage, error), owner string, ids []store.ArchiveID) (bool, error) {
	for _, id := range ids {
		p, err := query(store.ArchiveQuery{Owner: owner, IDs: []store.ArchiveID{id}, Max: 1})
		if err != nil {
			return false, err
		}
		if len(p.Records) == 0 {
			return false, nil
		}
	}
	return true, nil
}

// QueryForm is the answer to an iq get of the query namespace (§4.1.1):
// the fields this archive understands.
func QueryForm() *wire.Element {
	x := wire.New(nsData, "x", "type", "form")
	x.Add(field("hidden", "FORM_TYPE", NS))
	x.Add(field("jid-single", "with", ""))
	x.Add(field("text-single", "start", ""))
	x.Add(field("text-single", "end", ""))
	x.Add(field("text-single", "before-id", ""))
	x.Add(field("text-single", "after-id", ""))
	x.Add(field("text-multi", "ids", ""))
	return wire.New(NS, "query").Add(x)
}

func field(typ, name, value string) *wire.Element {
	f := &wire.Element{Space: nsData, Local: "field", Attrs: []wire.Attr{{Name: "type", Value: typ}, {Name: "var", Value: name}}}
	if value != "" {
		f.Add((&wire.Element{Space: nsData, Local: "value"}).AddText(value))
	}
	return f
}
