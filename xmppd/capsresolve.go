package xmppd

import (
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strings"
	"sync"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0115 entity capabilities of clients, for XEP-0163 §4.3 filtered
// notifications: a session gets PEP notifications of a node only when its
// caps list NODE+notify. When an available presence carries a caps hash the
// server has not seen, it asks that session with disco#info (§6.2),
// verifies the hash (§5.4) and caches ver -> +notify nodes, so the next
// session of the same client software costs nothing.

// Bounds of the caps resolution state: a client announcing a fresh random
// ver on every presence can make us ask, but not grow memory without end.
const (
	maxCapsCache   = 4096 // verified ver strings
	maxCapsPending = 1024 // disco#info queries in flight
)

// capsFeatures is what the server keeps of one caps ver: the nodes the
// client wants notifications for. It is never modified once built, so
// sessions share it.
type capsFeatures struct {
	notify map[string]struct{}
}

func (f *capsFeatures) notifies(node string) bool {
	if f == nil {
		return false
	}
	_, ok := f.notify[node]
	return ok
}

// pepSession is a session's caps state, guarded by conn.pmu.
type pepSession struct {
	ver   string        // the ver of the last available presence ("" none)
	feats *capsFeatures // nil until resolved
}

// capsQuery is one disco#info query in flight.
type capsQuery struct {
	ver, hash string
	waiting   []*conn // sessions that announced ver while the query ran
}

// capsCache holds verified vers and the queries in flight.
type capsCache struct {
	mu      sync.Mutex
	byVer   map[string]*capsFeatures
	order   []string              // insertion order, for FIFO eviction
	pending map[string]*capsQuery // by IQ id
	byWait  map[string]string     // ver -> IQ id of its query in flight
}

func (cc *capsCache) get(ver string) *capsFeatures {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.byVer[ver]
}

func (cc *capsCache) put(ver string, f *capsFeatures) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.byVer == nil {
		cc.byVer = make(map[string]*capsFeatures)
	}
	if _, ok := cc.byVer[ver]; ok {
		return
	}
	if len(cc.order) >= maxCapsCache {
		delete(cc.byVer, cc.order[0])
		cc.order = cc.order[1:]
	}
	cc.byVer[ver] = f
	cc.order = append(cc.order, ver)
}

// wait registers c as waiting for ver and reports the IQ id to send, or ""
// when a query for ver is already in flight (c then waits for it) or too
// many are.
func (cc *capsCache) wait(c *conn, ver, hash string) string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if hash == "sha-1" {
		if id, ok := cc.byWait[ver]; ok {
			q := cc.pending[id]
			if len(q.waiting) < 64 {
				q.waiting = append(q.waiting, c)
			}
			return ""
		}
	}
	if len(cc.pending) >= maxCapsPending {
		return ""
	}
	if cc.pending == nil {
		cc.pending = make(map[string]*capsQuery)
		cc.byWait = make(map[string]string)
	}
	id := "caps-" + randomID(6)
	cc.pending[id] = &capsQuery{ver: ver, hash: hash, waiting: []*conn{c}}
	if hash == "sha-1" {
		cc.byWait[ver] = id
	}
	return id
}

// done removes the query with IQ id and returns it, nil when unknown.
func (cc *capsCache) done(id string) *capsQuery {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	q := cc.pending[id]
	if q == nil {
		return nil
	}
	delete(cc.pending, id)
	if cc.byWait[q.ver] == id {
		delete(cc.byWait, q.ver)
	}
	return q
}

// pepCapsPresence looks at the caps of an available presence: a known ver
// applies at once, an unknown one is asked for. The session's filter stays
// as it was until the answer comes.
func (c *conn) pepCapsPresence(el *wire.Element, initial bool) {
	s := c.srv
	ce := el.Child(nsCaps, "c")
	if ce == nil || ce.Attr("ver") == "" {
		c.setPEPCaps("", nil)
		return
	}
	ver, hash, node := ce.Attr("ver"), ce.Attr("hash"), ce.Attr("node")
	c.pmu.Lock()
	if initial {
		// Becoming available again: every node counts as new, so the last
		// items are sent again (§4.3.3).
		c.pep.feats = nil
	}
	same := c.pep.ver == ver && c.pep.feats != nil
	c.pmu.Unlock()
	if same && !initial {
		return
	}
	if f := s.feat.caps.get(ver); f != nil && hash == "sha-1" {
		c.setPEPCaps(ver, f)
		return
	}
	c.pmu.Lock()
	c.pep.ver = ver
	c.pmu.Unlock()
	id := s.feat.caps.wait(c, ver, hash)
	if id == "" {
		return
	}
	iq := elem(nsClient, "iq", "type", "get", "id", id, "from", s.Domain, "to", c.fullJID)
	iq.Add(elem(nsDiscoInfo, "query", "node", node+"#"+ver))
	c.sendElement(iq)
}

// capsAnswered takes the answer to a caps query (an IQ result or error to
// the domain). It reports whether el was one.
func (c *conn) capsAnswered(el *wire.Element) bool {
	id := el.Attr("id")
	if !strings.HasPrefix(id, "caps-") {
		return false
	}
	s := c.srv
	q := s.feat.caps.done(id)
	if q == nil {
		return true
	}
	if q.waiting[0] != c {
		// Only the session asked may answer (the id is random, but
		// another session must not plant features for a ver).
		return true
	}
	info := el.Child(nsDiscoInfo, "query")
	if el.Attr("type") != "result" || info == nil {
		return true
	}
	f := capsFeaturesOf(info)
	if q.hash == "sha-1" && verifyCapsVer(info) == q.ver {
		s.feat.caps.put(q.ver, f)
		for _, w := range q.waiting {
			w.pmu.Lock()
			mine := w.pep.ver == q.ver
			w.pmu.Unlock()
			if mine {
				w.setPEPCaps(q.ver, f)
			}
		}
		return true
	}
	// Unverifiable (another hash, legacy caps, or a wrong hash): the
	// client may describe itself, but the answer is not shared (§5.4).
	c.pmu.Lock()
	mine := c.pep.ver == q.ver
	c.pmu.Unlock()
	if mine {
		c.setPEPCaps(q.ver, f)
	}
	return true
}

// setPEPCaps installs a session's notification filter and sends it the
// last items of the nodes it newly asks for (XEP-0163 §4.3.3).
func (c *conn) setPEPCaps(ver string, f *capsFeatures) {
	c.pmu.Lock()
	old := c.pep.feats
	c.pep = pepSession{ver: ver, feats: f}
	avail := c.available
	c.pmu.Unlock()
	if f == nil || !avail {
		return
	}
	c.srv.sendLastPEPItems(c, func(node string) bool { return f.notifies(node) && !old.notifies(node) })
}

// pepNotifies reports whether the session wants notifications of node.
func (c *conn) pepNotifies(node string) bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.available && c.pep.feats.notifies(node)
}

func capsFeaturesOf(info *wire.Element) *capsFeatures {
	f := &capsFeatures{notify: make(map[string]struct{})}
	for _, n := range info.Nodes {
		if n.El != nil && n.El.Local == "feature" {
			if v, ok := strings.CutSuffix(n.El.Attr("var"), "+notify"); ok && v != "" {
				f.notify[v] = struct{}{}
			}
		}
	}
	return f
}

// verifyCapsVer computes the XEP-0115 §5.1 verification string of a
// disco#info answer, extended forms (XEP-0128) included, and returns its
// SHA-1 in base64; "" when §5.4 says the answer must not be trusted
// (duplicate identities or features, or forms without a single FORM_TYPE).
func verifyCapsVer(info *wire.Element) string {
	var ids, feats []string
	type form struct {
		typ    string
		fields [][]string // var, values...
	}
	var forms []form
	for _, n := range info.Nodes {
		e := n.El
		if e == nil {
			continue
		}
		switch {
		case e.Local == "identity":
			ids = append(ids, e.Attr("category")+"/"+e.Attr("type")+"/"+e.Attr("xml:lang")+"/"+e.Attr("name"))
		case e.Local == "feature":
			feats = append(feats, e.Attr("var"))
		case e.Local == "x" && e.Space == nsPEPForm && e.Attr("type") == "result":
			var fm form
			typeCount := 0
			for _, fn := range e.Nodes {
				fe := fn.El
				if fe == nil || fe.Local != "field" {
					continue
				}
				var vals []string
				for _, vn := range fe.Nodes {
					if vn.El != nil && vn.El.Local == "value" {
						vals = append(vals, vn.El.Text())
					}
				}
				if fe.Attr("var") == "FORM_TYPE" {
					typeCount++
					if len(vals) != 1 {
						return ""
					}
					fm.typ = vals[0]
					continue
				}
				slices.Sort(vals)
				fm.fields = append(fm.fields, append([]string{fe.Attr("var")}, vals...))
			}
			if typeCount == 0 {
				continue // §5.4 3.6: forms without FORM_TYPE are ignored
			}
			if typeCount > 1 {
				return ""
			}
			forms = append(forms, fm)
		}
	}
	slices.Sort(ids)
	slices.Sort(feats)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) || len(slices.Compact(slices.Clone(feats))) != len(feats) {
		return ""
	}
	slices.SortFunc(forms, func(a, b form) int { return strings.Compare(a.typ, b.typ) })
	for i := 1; i < len(forms); i++ {
		if forms[i].typ == forms[i-1].typ {
			return ""
		}
	}
	var b strings.Builder
	for _, s := range ids {
		b.WriteString(s)
		b.WriteByte('<')
	}
	for _, s := range feats {
		b.WriteString(s)
		b.WriteByte('<')
	}
	for _, fm := range forms {
		b.WriteString(fm.typ)
		b.WriteByte('<')
		slices.SortFunc(fm.fields, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
		for _, fl := range fm.fields {
			for _, s := range fl {
				b.WriteString(s)
				b.WriteByte('<')
			}
		}
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}
