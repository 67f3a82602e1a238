package xmppd

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// rosterEntry is one item of a user's effective roster: the personal
// roster (store) merged with the shared roster from directory groups.
type rosterEntry struct {
	store.RosterItem
	shared bool // comes (also) from the directory: subscription both, cannot be removed
}

func (e *rosterEntry) subTo() bool {
	return e.Subscription == "to" || e.Subscription == "both"
}

func (e *rosterEntry) subFrom() bool {
	return e.Subscription == "from" || e.Subscription == "both"
}

// roster returns the effective roster of user and its version string.
// Colleagues from shared directory groups appear with subscription "both"
// and their display name; a personal item for the same contact adds its own
// name and groups (RFC 6121 roster plus the static/LDAP shared roster).
func (s *Server) roster(user string) ([]rosterEntry, string, error) {
	items, pver, err := s.Store.Roster(user)
	if err != nil {
		return nil, "", fmt.Errorf("xmppd: roster of %s: %w", user, err)
	}
	colleagues := s.Directory.Colleagues(user)
	if !sort.SliceIsSorted(colleagues, func(i, j int) bool { return colleagues[i].Username < colleagues[j].Username }) {
		// The version hashes the colleagues in order: a directory that
		// returns them in map order must not change it between requests.
		colleagues = append([]Person(nil), colleagues...)
		sort.Slice(colleagues, func(i, j int) bool { return colleagues[i].Username < colleagues[j].Username })
	}
	out := make([]rosterEntry, 0, len(items)+len(colleagues))
	idx := make(map[string]int, len(colleagues))
	h := fnv.New64a()
	for _, p := range colleagues {
		j := p.Username + "@" + s.Domain
		h.Write([]byte(j))
		h.Write([]byte{0})
		h.Write([]byte(p.DisplayName))
		for _, g := range p.Groups {
			h.Write([]byte{1})
			h.Write([]byte(g))
		}
		idx[j] = len(out)
		out = append(out, rosterEntry{RosterItem: store.RosterItem{JID: j, Name: p.DisplayName, Subscription: "both", Groups: p.Groups}, shared: true})
	}
	for _, it := range items {
		if i, ok := idx[it.JID]; ok {
			e := &out[i]
			if it.Name != "" {
				e.Name = it.Name
			}
			e.Groups = unionGroups(e.Groups, it.Groups)
			e.PendingIn = it.PendingIn
			e.PendingInXML = it.PendingInXML
			continue
		}
		out = append(out, rosterEntry{RosterItem: it})
	}
	ver := strconv.FormatUint(pver, 10)
	if len(colleagues) > 0 {
		ver += "-" + strconv.FormatUint(h.Sum64(), 36)
	}
	return out, ver, nil
}

// rosterEntry returns the effective entry of user's roster for contact.
func (s *Server) rosterEntry(user, contact string) (rosterEntry, bool) {
	entries, _, err := s.roster(user)
	if err != nil {
		return rosterEntry{}, false
	}
	for _, e := range entries {
		if e.JID == contact {
			return e, true
		}
	}
	return rosterEntry{}, false
}

func unionGroups(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := append([]string(nil), a...)
	for _, g := range b {
		found := false
		for _, x := range out {
			if x == g {
				found = true
				break
			}
		}
		if !found {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

func appendItem(q *wire.Element, e rosterEntry) {
	it := elem("", "item", "jid", e.JID)
	it.Space = nsRoster
	if e.Name != "" {
		it.SetAttr("name", e.Name)
	}
	sub := e.Subscription
	if sub == "" {
		sub = "none"
	}
	it.SetAttr("subscription", sub)
	if e.Ask {
		it.SetAttr("ask", "subscribe")
	}
	if e.Approved && !e.subFrom() {
		it.SetAttr("approved", "true")
	}
	for _, g := range e.Groups {
		ge := &wire.Element{Space: nsRoster, Local: "group"}
		ge.AddText(g)
		it.Add(ge)
	}
	q.Add(it)
}

// handleRosterIQ implements RFC 6121 §2.1-§2.6.
func (c *conn) handleRosterIQ(el, q *wire.Element) {
	s := c.srv
	switch el.Attr("type") {
	case "get":
		entries, ver, err := s.roster(c.user)
		if err != nil {
			s.Logger.Error("roster get", "user", c.user, "err", err)
			c.bounce(el, "", errInternal)
			return
		}
		c.pmu.Lock()
		c.interested = true
		c.pmu.Unlock()
		r := iqResult(el)
		if q.HasAttr("ver") && q.Attr("ver") == ver {
			// §2.6.3: the client's cache is current; pushes follow for changes.
			c.sendElement(r)
			return
		}
		rq := elem(nsRoster, "query", "ver", ver)
		for _, e := range entries {
			if e.Hidden {
				continue
			}
			appendItem(rq, e)
		}
		r.Add(rq)
		c.sendElement(r)
	case "set":
		c.rosterSet(el, q)
	default:
		c.bounce(el, "", errBadRequest)
	}
}

func (c *conn) rosterSet(el, q *wire.Element) {
	s := c.srv
	var item *wire.Element
	n := 0
	for _, nd := range q.Nodes {
		if nd.El != nil {
			n++
			item = nd.El
		}
	}
	// §2.3.3: exactly one item.
	if n != 1 || item.Local != "item" {
		c.bounce(el, "", errBadRequest.withText("a roster set carries exactly one item"))
		return
	}
	j, err := jid.Parse(item.Attr("jid"))
	if err != nil || j.Resourcepart() != "" {
		c.bounce(el, "", errJIDMalformed)
		return
	}
	contact := j.String()
	if contact == c.bareJID {
		c.bounce(el, "", errNotAllowed.withText("you cannot add yourself"))
		return
	}
	if item.Attr("subscription") == "remove" {
		c.rosterRemove(el, contact)
		return
	}
	var groups []string
	for _, nd := range item.Nodes {
		if nd.El == nil || nd.El.Local != "group" {
			continue
		}
		g := nd.El.Text()
		if g == "" {
			c.bounce(el, "", errNotAcceptable.withText("empty group name"))
			return
		}
		for _, x := range groups {
			if x == g {
				c.bounce(el, "", errBadRequest.withText("duplicate group"))
				return
			}
		}
		if len(g) > 1024 {
			c.bounce(el, "", errNotAcceptable.withText("group name too long"))
			return
		}
		groups = append(groups, g)
	}
	name := item.Attr("name")
	if len(name) > 1024 {
		c.bounce(el, "", errNotAcceptable.withText("name too long"))
		return
	}
	_, ver, err := s.Store.UpdateRosterItem(c.user, contact, func(it store.RosterItem, found bool) (store.RosterItem, bool) {
		// Subscription and ask are the server's business (§2.1.2.5); the
		// client sets only name and groups.
		it.Name = name
		it.Groups = groups
		it.Hidden = false
		return it, true
	})
	if err != nil {
		s.Logger.Error("roster set", "user", c.user, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	_ = ver
	c.sendElement(iqResult(el))
	s.pushRosterItem(c.user, contact)
}

// rosterRemove implements §2.5: cancel both subscription directions, then
// delete the item and push subscription="remove".
func (c *conn) rosterRemove(el *wire.Element, contact string) {
	s := c.srv
	e, ok := s.rosterEntry(c.user, contact)
	if !ok {
		c.bounce(el, "", errItemNotFound)
		return
	}
	if e.shared {
		c.bounce(el, "", errNotAllowed.withText("this contact comes from the company directory"))
		return
	}
	if e.subTo() || e.Ask {
		c.outUnsubscribe(contact)
	}
	if e.subFrom() || e.PendingIn {
		c.outUnsubscribed(contact)
	}
	if _, err := s.Store.DeleteRosterItem(c.user, contact); err != nil {
		s.Logger.Error("roster remove", "user", c.user, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	c.sendElement(iqResult(el))
	s.pushRosterItem(c.user, contact)
}

// pushRosterItem sends the current state of one contact to every session of
// user that requested the roster (§2.1.6). A contact no longer present is
// pushed with subscription="remove".
func (s *Server) pushRosterItem(user, contact string) {
	entries, ver, err := s.roster(user)
	if err != nil {
		s.Logger.Error("roster push", "user", user, "err", err)
		return
	}
	s.pushFromRoster(user, contact, entries, ver)
}

// pushFromRoster is pushRosterItem with the roster already computed, for
// callers pushing several contacts of one user.
func (s *Server) pushFromRoster(user, contact string, entries []rosterEntry, ver string) {
	q := elem(nsRoster, "query", "ver", ver)
	found := false
	for _, e := range entries {
		if e.JID == contact && !e.Hidden {
			appendItem(q, e)
			found = true
			break
		}
	}
	if !found {
		it := elem("", "item", "jid", contact, "subscription", "remove")
		it.Space = nsRoster
		q.Add(it)
	}
	for _, r := range s.router.sessionsOf(user) {
		r.pmu.Lock()
		interested := r.interested
		r.pmu.Unlock()
		if !interested {
			continue
		}
		iq := elem(nsClient, "iq", "type", "set", "id", "push-"+randomID(6), "to", r.fullJID)
		iq.Add(q)
		r.sendElement(iq)
	}
}

// iqResult is the empty result for el.
func iqResult(el *wire.Element) *wire.Element {
	r := elem(nsClient, "iq", "type", "result", "id", el.Attr("id"))
	if to := el.Attr("to"); to != "" {
		r.SetAttr("from", to)
	}
	if f := el.Attr("from"); f != "" {
		r.SetAttr("to", f)
	}
	return r
}
