package xmppd

import (
	"errors"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// The session features of issue 3 that need no stream-level state: XEP-0191
// blocking (blocking.go), XEP-0049 private storage (private.go), XEP-0054
// vcard-temp (vcard.go), XEP-0012 last activity (last.go) and the XEP-0115
// caps hash in the stream features (caps.go). Each file owns its handlers;
// this one registers them and holds what they share.

// featureState is the server-wide state of the feature files.
type featureState struct {
	blocks     blockCache
	colleagues colleagueCache // presence routing's directory answers (rostercache.go)
	// capsNode is "<node>#<ver>", which the domain's disco#info answers like
	// a query without node (XEP-0115 §6.2).
	capsNode string
	caps     capsCache // clients' XEP-0115 caps for PEP notifications (capsresolve.go)
}

// Defaults of the feature limits on Server.
const (
	defaultMaxVCardBytes   = 128 << 10 // room for a PHOTO of a typical avatar
	defaultMaxPrivateBytes = 64 << 10  // bookmarks of a few hundred rooms
	defaultMaxBlockedJIDs  = 1000
)

// registerFeatures adds the feature handlers and disco features. It runs
// from init after the core registration; the caps hash is computed last, so
// it covers every domain feature registered up to that point.
func (s *Server) registerFeatures() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.MaxVCardBytes, defaultMaxVCardBytes)
	def(&s.MaxPrivateBytes, defaultMaxPrivateBytes)
	def(&s.MaxBlockedJIDs, defaultMaxBlockedJIDs)

	s.accountIQ[nsBlocking] = blockingIQ

	s.accountIQ[nsPrivate] = privateAccount
	s.contactIQ[nsPrivate] = privateContact

	s.accountIQ[nsVCard] = vcardAccount
	s.contactIQ[nsVCard] = vcardContact
	s.serverIQ[nsVCard] = vcardServer

	s.serverIQ[nsLast] = lastServer
	s.accountIQ[nsLast] = lastAccount
	s.contactIQ[nsLast] = lastAccount

	s.serverFeatures = append(s.serverFeatures, nsBlocking, nsLast, nsVCard)
	s.accountFeatures = append(s.accountFeatures, nsVCard)

	s.registerPEP()
	s.registerCaps()
}

// iqTarget returns the username an IQ handled on behalf of an account is
// addressed to: the sender's own for no 'to' (RFC 6120 §10.3.3).
func (c *conn) iqTarget(el *wire.Element) string {
	to := el.Attr("to")
	if to == "" || to == c.bareJID {
		return c.user
	}
	if a, _, ok := c.srv.resolve(to); ok {
		return a.user
	}
	return ""
}

// canonicalXML serializes el for storage so that it is self-contained:
// prefixes and namespace declarations are dropped and every element gets
// the xmlns it needs from its resolved namespace. A stored document then
// parses on its own and splices into any reply, whatever prefixes the
// client used or where it declared them. It reports an error when the
// result is not well-formed on its own (a prefixed attribute whose
// declaration was on an ancestor).
func canonicalXML(el *wire.Element, max int) ([]byte, error) {
	c := el.Copy()
	stripPrefixes(c)
	b := c.AppendXML(make([]byte, 0, 256), nsClient)
	if len(b) > max {
		return nil, errTooLarge
	}
	if _, err := wire.ParseElement(b); err != nil {
		return nil, err
	}
	return b, nil
}

var errTooLarge = errors.New("xmppd: document too large")

func stripPrefixes(e *wire.Element) {
	e.Prefix = ""
	out := e.Attrs[:0]
	for _, a := range e.Attrs {
		if a.Name == "xmlns" || len(a.Name) > 6 && a.Name[:6] == "xmlns:" {
			continue
		}
		out = append(out, a)
	}
	e.Attrs = out
	for _, n := range e.Nodes {
		if n.El != nil {
			stripPrefixes(n.El)
		}
	}
}

// childElements counts e's element children and returns the first.
func childElements(e *wire.Element) (n int, first *wire.Element) {
	for _, nd := range e.Nodes {
		if nd.El != nil {
			if n == 0 {
				first = nd.El
			}
			n++
		}
	}
	return n, first
}

// sendSpliced sends the IQ result r with an already serialized stored
// document inside it, between open and close (the tags of a wrapper
// element, or empty): a stored document goes out without being parsed.
func (c *conn) sendSpliced(r *wire.Element, open string, stored []byte, close string) {
	b := r.AppendStart(make([]byte, 0, len(stored)+len(open)+len(close)+256), nsClient)
	b = append(b, open...)
	b = append(b, stored...)
	b = append(b, close...)
	c.send(r.AppendEnd(b))
}
