package xmppd

import (
	"runtime"
	"sort"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// iqHandler answers an IQ get/set addressed to the server or to the
// sender's own account; q is the single payload element.
type iqHandler func(c *conn, el, q *wire.Element)

// handleIQ routes IQs (RFC 6120 §8.2.3, RFC 6121 §8.5).
func (c *conn) handleIQ(el *wire.Element) {
	s := c.srv
	typ := el.Attr("type")
	var q *wire.Element
	switch typ {
	case "get", "set":
		// Exactly one payload child (RFC 6120 §8.2.3).
		n := 0
		for _, nd := range el.Nodes {
			if nd.El != nil {
				n++
				q = nd.El
			}
		}
		if n != 1 || !el.HasAttr("id") {
			c.bounce(el, "", errBadRequest)
			return
		}
	case "result", "error":
		if !el.HasAttr("id") {
			return
		}
	default:
		c.bounce(el, "", errBadRequest)
		return
	}
	to := el.Attr("to")
	if to == "" {
		to = c.bareJID
	}
	a, target, ok := s.resolve(to)
	if !ok {
		c.bounce(el, to, errJIDMalformed)
		return
	}
	if c.blockedStanza(el, a) {
		return
	}
	switch a.kind {
	case addrRemote:
		if h := s.components[a.domain]; h != nil {
			h.RouteStanza(el)
			return
		}
		c.bounce(el, to, errRemoteNotFound)
		return
	case addrServer:
		if typ == "result" || typ == "error" {
			c.pingAnswered(el)
			return
		}
		if h := s.serverIQ[q.Space]; h != nil {
			h(c, el, q)
			return
		}
		c.bounce(el, to, errServiceUnavailable)
		return
	case addrLocalFull:
		if target == nil {
			if typ == "get" || typ == "set" {
				c.bounce(el, to, errServiceUnavailable)
			}
			return
		}
		deliver(target, el.AppendXML(make([]byte, 0, 256), nsClient))
		return
	}
	// Bare JID: the server answers on behalf of the account (§8.5.2.1.3).
	if typ == "result" || typ == "error" {
		return
	}
	if a.user == c.user {
		if h := s.accountIQ[q.Space]; h != nil {
			h(c, el, q)
			return
		}
		c.bounce(el, to, errServiceUnavailable)
		return
	}
	if _, exists := s.Directory.Person(a.user); !exists {
		c.bounce(el, to, errServiceUnavailable)
		return
	}
	if h := s.contactIQ[q.Space]; h != nil {
		h(c, el, q)
		return
	}
	c.bounce(el, to, errServiceUnavailable)
}

func (s *Server) registerCoreIQ() {
	s.serverIQ = map[string]iqHandler{
		nsDiscoInfo:  discoInfoServer,
		nsDiscoItems: discoItemsServer,
		nsPing:       pingHandler,
		nsVersion:    versionHandler,
		nsTime:       timeHandler,
		nsRoster:     func(c *conn, el, q *wire.Element) { c.handleRosterIQ(el, q) },
		nsSession:    func(c *conn, el, q *wire.Element) { c.sendElement(iqResult(el)) },
		nsRegister:   registerRefused,
	}
	s.accountIQ = map[string]iqHandler{
		nsRegister:   registerRefused,
		nsRoster:     func(c *conn, el, q *wire.Element) { c.handleRosterIQ(el, q) },
		nsDiscoInfo:  discoInfoAccount,
		nsDiscoItems: discoItemsAccount,
		nsPing:       pingHandler,
		// Legacy clients send the RFC 3921 session IQ after binding and
		// without a to attribute, i.e. to their own account.
		nsSession: func(c *conn, el, q *wire.Element) { c.sendElement(iqResult(el)) },
	}
	s.contactIQ = map[string]iqHandler{
		nsDiscoInfo:  discoInfoAccount,
		nsDiscoItems: discoItemsAccount,
	}
	s.serverFeatures = []string{nsDiscoInfo, nsDiscoItems, nsPing, nsTime, "msgoffline"}
	if !s.HideVersion {
		s.serverFeatures = append(s.serverFeatures, nsVersion)
	} else {
		delete(s.serverIQ, nsVersion)
	}
	s.accountFeatures = []string{nsDiscoInfo, nsDiscoItems}
}

func queryResult(el *wire.Element, space string) (*wire.Element, *wire.Element) {
	r := iqResult(el)
	q := elem(space, "query")
	if node := el.FirstChild().Attr("node"); node != "" {
		q.SetAttr("node", node)
	}
	r.Add(q)
	return r, q
}

// discoInfoServer answers XEP-0030 for the domain: exactly the features
// that are implemented.
func discoInfoServer(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" {
		c.bounce(el, "", errNotAllowed)
		return
	}
	if n := q.Attr("node"); n != "" && n != c.srv.feat.capsNode {
		c.bounce(el, "", errItemNotFound)
		return
	}
	r, rq := queryResult(el, nsDiscoInfo)
	rq.Add(elem(nsDiscoInfo, "identity", "category", serverIdentity.Category, "type", serverIdentity.Type, "name", serverIdentity.Name))
	feats := append([]string(nil), c.srv.serverFeatures...)
	sort.Strings(feats)
	for _, f := range feats {
		rq.Add(elem(nsDiscoInfo, "feature", "var", f))
	}
	c.sendElement(r)
}

func discoItemsServer(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" {
		c.bounce(el, "", errNotAllowed)
		return
	}
	r, rq := queryResult(el, nsDiscoItems)
	for _, it := range c.srv.discoItems {
		rq.Add(elem(nsDiscoItems, "item", "jid", it.JID, "name", it.Name))
	}
	c.sendElement(r)
}

// discoInfoAccount answers for a user's bare JID (XEP-0030 §3.1: the
// account identity; other users learn no more than that it exists).
func discoInfoAccount(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" {
		c.bounce(el, "", errNotAllowed)
		return
	}
	if q.Attr("node") != "" {
		c.bounce(el, "", errItemNotFound)
		return
	}
	r, rq := queryResult(el, nsDiscoInfo)
	rq.Add(elem(nsDiscoInfo, "identity", "category", "account", "type", "registered"))
	rq.Add(elem(nsDiscoInfo, "identity", "category", "pubsub", "type", "pep")) // XEP-0163 §6
	feats := append([]string(nil), c.srv.accountFeatures...)
	sort.Strings(feats)
	for _, f := range feats {
		rq.Add(elem(nsDiscoInfo, "feature", "var", f))
	}
	c.sendElement(r)
}

func discoItemsAccount(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" {
		c.bounce(el, "", errNotAllowed)
		return
	}
	r, _ := queryResult(el, nsDiscoItems)
	c.sendElement(r)
}

// registerRefused answers XEP-0077 requests (account registration,
// password change, cancellation): the directory owns accounts and
// passwords, and the client is told so instead of a bare error.
func registerRefused(c *conn, el, q *wire.Element) {
	c.bounce(el, "", errNotAllowed.withText("accounts and passwords are managed in the company directory; ask your IT department"))
}

// pingHandler answers XEP-0199 pings to the server.
func pingHandler(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" {
		c.bounce(el, "", errBadRequest)
		return
	}
	c.sendElement(iqResult(el))
}

func versionHandler(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" {
		c.bounce(el, "", errBadRequest)
		return
	}
	r, rq := queryResult(el, nsVersion)
	rq.Add((&wire.Element{Space: nsVersion, Local: "name"}).AddText("ownChat"))
	rq.Add((&wire.Element{Space: nsVersion, Local: "version"}).AddText(c.srv.Version))
	rq.Add((&wire.Element{Space: nsVersion, Local: "os"}).AddText(runtime.GOOS))
	c.sendElement(r)
}

// timeHandler answers XEP-0202.
func timeHandler(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" {
		c.bounce(el, "", errBadRequest)
		return
	}
	now := time.Now().UTC()
	r := iqResult(el)
	t := elem(nsTime, "time")
	t.Add((&wire.Element{Space: nsTime, Local: "tzo"}).AddText("+00:00"))
	t.Add((&wire.Element{Space: nsTime, Local: "utc"}).AddText(now.Format("2006-01-02T15:04:05.000Z")))
	r.Add(t)
	c.sendElement(r)
}

// sendServerPing asks an idle client whether it is still there (XEP-0199
// §4.2); an answer of any kind, or any other traffic, counts.
func (c *conn) sendServerPing() {
	iq := elem(nsClient, "iq", "type", "get", "id", "ping-"+randomID(4), "from", c.srv.Domain, "to", c.fullJID)
	iq.Add(elem(nsPing, "ping"))
	c.sendElement(iq)
}

func (c *conn) pingAnswered(el *wire.Element) {
	c.pingOut.Store(false)
	c.capsAnswered(el)
}

// elem builds an element; the namespace is written only where it differs
// from the parent's when serialized.
func elem(space, local string, attrs ...string) *wire.Element {
	e := &wire.Element{Space: space, Local: local}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Attrs = append(e.Attrs, wire.Attr{Name: attrs[i], Value: attrs[i+1]})
	}
	return e
}
