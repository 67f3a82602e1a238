package muc

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// serviceStanza handles stanzas to the service itself: disco and ping.
func (s *Service) serviceStanza(el *wire.Element) {
	if el.Local != "iq" {
		if el.Local == "message" {
			s.bounce(el, "cancel", "service-unavailable")
		}
		return
	}
	typ := el.Attr("type")
	if typ != "get" && typ != "set" {
		return
	}
	q := el.FirstChild()
	switch {
	case q == nil:
		s.bounce(el, "modify", "bad-request")
	case typ == "get" && q.Space == nsDiscoInfo && q.Local == "query" && q.Attr("node") == "":
		p := wire.New(nsDiscoInfo, "query").Add(
			wire.New("", "identity", "category", "conference", "type", "text", "name", s.cfg.Name))
		for _, f := range []string{nsDiscoInfo, nsDiscoItems, nsMUC, nsPing, nsSID} {
			p.Add(wire.New("", "feature", "var", f))
		}
		fixSpace(p)
		s.result(el, p)
	case typ == "get" && q.Space == nsDiscoItems && q.Local == "query" && q.Attr("node") == "":
		s.result(el, s.publicRooms())
	case typ == "get" && q.Space == nsPing && q.Local == "ping":
		s.result(el, nil)
	default:
		s.bounce(el, "cancel", "service-unavailable")
	}
}

// fixSpace gives children built with space "" their parent's namespace, so
// they serialize without an empty xmlns attribute.
func fixSpace(e *wire.Element) *wire.Element {
	for _, n := range e.Nodes {
		if n.El != nil {
			if n.El.Space == "" {
				n.El.Space = e.Space
			}
			fixSpace(n.El)
		}
	}
	return e
}

// publicRooms lists public rooms for disco#items of the service (§6.3):
// the loaded ones and, without loading them, the persistent ones in the
// store. Locked rooms do not exist yet for others (§10.1.1).
func (s *Service) publicRooms() *wire.Element {
	type item struct{ jid, name string }
	seen := map[string]bool{}
	var items []item
	s.mu.Lock()
	loaded := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		loaded = append(loaded, r)
	}
	s.mu.Unlock()
	for _, r := range loaded {
		r.mu.Lock()
		if !r.gone && !r.locked {
			seen[r.jid] = true
			if r.cfg.Public {
				items = append(items, item{r.jid, r.cfg.Name})
			}
		}
		r.mu.Unlock()
	}
	if s.st != nil {
		err := s.st.ForEach(bucket, func(k string, v []byte) error {
			if seen[k] {
				return nil
			}
			tmp := newRoom(s, k)
			if tmp.decode(v) == nil && tmp.cfg.Public {
				items = append(items, item{k, tmp.cfg.Name})
			}
			return nil
		})
		if err != nil {
			s.log.Error("muc: list rooms", "err", err)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].jid < items[j].jid })
	q := wire.New(nsDiscoItems, "query")
	for _, it := range items {
		i := wire.New("", "item", "jid", it.jid)
		if it.name != "" {
			i.SetAttr("name", it.name)
		}
		q.Add(i)
	}
	return fixSpace(q)
}

// iq handles IQs to a room or an occupant.
func (s *Service) iq(el *wire.Element, roomJID, nick, from string) {
	typ := el.Attr("type")
	if typ != "get" && typ != "set" {
		s.iqResponse(el, nick) // answers to IQs the room forwarded
		return
	}
	q := el.FirstChild()
	if q == nil {
		s.bounce(el, "modify", "bad-request")
		return
	}
	r := s.lockExisting(el, roomJID)
	if r == nil {
		return
	}
	// unlocked runs after the room lock is released: reading an archive
	// page must not hold up the room's messages.
	var unlocked func()
	defer func() {
		if unlocked != nil {
			unlocked()
		}
	}()
	defer r.mu.Unlock()
	defer r.unloadIdle()
	o := r.byReal[from]
	if nick != "" {
		r.occupantIQ(el, q, o, nick)
		return
	}
	if r.locked && r.affOf(bareOf(from)) != Owner {
		s.bounce(el, "cancel", "item-not-found")
		return
	}
	switch {
	case typ == "get" && q.Space == nsDiscoInfo && q.Local == "query" && q.Attr("node") == nodeRoomUser:
		r.roomUserItem(el, from)
	case typ == "get" && q.Space == nsDiscoInfo && q.Local == "query":
		s.result(el, r.discoInfo())
	case typ == "get" && q.Space == nsDiscoItems && q.Local == "query":
		s.result(el, wire.New(nsDiscoItems, "query")) // §6.5: occupants stay private
	case typ == "get" && q.Space == nsPing && q.Local == "ping":
		s.result(el, nil)
	case q.Space == nsOwner && q.Local == "query":
		r.owner(el, q, from)
	case q.Space == nsAdmin && q.Local == "query":
		r.admin(el, q, o, from)
	case q.Space == nsMAM:
		unlocked = r.mam(el, q, o, from)
	default:
		s.bounce(el, "cancel", "service-unavailable")
	}
}

// discoInfo is the room's disco#info with the muc_* features and the
// muc#roominfo form (§6.4, §15.5.4).
func (r *room) discoInfo() *wire.Element {
	c := &r.cfg
	name := c.Name
	if name == "" {
		name = r.jid[:len(r.jid)-len(r.svc.domain)-1]
	}
	q := wire.New(nsDiscoInfo, "query").Add(wire.New("", "identity", "category", "conference", "type", "text", "name", name))
	pick := func(on bool, yes, no string) string {
		if on {
			return yes
		}
		return no
	}
	for _, f := range []string{nsMUC, nsDiscoInfo, nsPing, nsSID,
		pick(c.Public, "muc_public", "muc_hidden"),
		pick(c.Persistent, "muc_persistent", "muc_temporary"),
		pick(c.MembersOnly, "muc_membersonly", "muc_open"),
		pick(c.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(c.NonAnonymous, "muc_nonanonymous", "muc_semianonymous"),
		pick(c.PasswordProt, "muc_passwordprotected", "muc_unsecured"),
	} {
		q.Add(wire.New("", "feature", "var", f))
	}
	if r.archived() {
		q.Add(wire.New("", "feature", "var", nsMAM))
	}
	fixSpace(q)
	x := wire.New(nsData, "x", "type", "result").Add(
		field("hidden", "FORM_TYPE", "", formInfo),
		field("text-single", "muc#roominfo_description", "Description", c.Description),
		field("text-single", "muc#roominfo_subject", "Subject", r.subject),
		field("text-single", "muc#roominfo_occupants", "Number of occupants", strconv.Itoa(len(r.list))),
		field("boolean", "muc#roominfo_subjectmod", "Occupants may change the subject", boolStr(c.ChangeSubject)),
		field("text-single", "muc#roomconfig_roomname", "Name", c.Name),
		field("boolean", "muc#roomconfig_allowinvites", "Occupants may invite", boolStr(c.AllowInvites)),
		field("list-single", "muc#roomconfig_allowpm", "Private messages", c.AllowPM),
	)
	if c.MaxUsers > 0 {
		x.Add(field("text-single", "muc#roominfo_maxusers", "Maximum occupants", strconv.Itoa(c.MaxUsers)))
	}
	if c.Lang != "" {
		x.Add(field("text-single", "muc#roominfo_lang", "Language of discussion", c.Lang))
	}
	if c.PubSub != "" {
		x.Add(field("text-single", "muc#roominfo_pubsub", "Associated pubsub node", c.PubSub))
	}
	return q.Add(fixSpace(x))
}

// owner handles the muc#owner namespace (§10): the configuration form and
// destroy. Only owners may.
func (r *room) owner(el, q *wire.Element, from string) {
	s := r.svc
	if r.affOf(bareOf(from)) != Owner {
		s.bounce(el, "auth", "forbidden") // §10.2
		return
	}
	if el.Attr("type") == "get" {
		var groups []string
		if d := s.cfg.Directory; d != nil {
			groups = append([]string{}, d.Groups()...)
		}
		s.result(el, wire.New(nsOwner, "query").Add(r.cfg.form(groups, r.withAff(Owner), r.withAff(Admin), s.cfg.HistorySize)))
		return
	}
	if d := q.Child(nsOwner, "destroy"); d != nil {
		r.destroy(d)
		s.result(el, nil)
		return
	}
	x := q.Child(nsData, "x")
	if x == nil {
		s.bounce(el, "modify", "bad-request")
		return
	}
	switch x.Attr("type") {
	case "cancel":
		// §10.1.3: cancelling the initial configuration destroys the
		// locked room; later it changes nothing.
		if r.locked {
			s.result(el, nil)
			for len(r.list) > 0 {
				r.remove(r.list[len(r.list)-1], &presExtra{noAff: true, destroy: wire.New(nsUser, "destroy")}, false)
			}
			r.unload()
			return
		}
		s.result(el, nil)
	case "submit":
		vals := formValues(x)
		n, ok := r.cfg.apply(vals)
		if !ok {
			s.bounce(el, "modify", "not-acceptable")
			return
		}
		affs, ok := r.ownerLists(vals)
		if !ok {
			s.bounceText(el, "modify", "not-acceptable", "the owner and admin lists must hold valid JIDs and at least one owner")
			return
		}
		if g, ok := s.checkGroups(n.Groups); !ok {
			s.bounceText(el, "modify", "not-acceptable", "no directory group "+g)
			return
		}
		if len(n.Groups) > 0 && !n.Persistent {
			s.bounceText(el, "modify", "not-acceptable", "a room bound to directory groups must be persistent")
			return
		}
		if _, said := vals["muc#roomconfig_membersonly"]; len(n.Groups) > 0 && len(r.cfg.Groups) == 0 && !said {
			// Binding makes it the group's room: someone who leaves the
			// group then leaves the room (321), as in a room made from a
			// template. An owner who wants it open says so in the form.
			n.MembersOnly = true
		}
		s.result(el, nil)
		r.configure(n)
		if len(affs) > 0 {
			actor := ""
			if o := r.byReal[from]; o != nil {
				actor = o.nick
			}
			for _, c := range affs {
				r.setAffiliation(c.bare, c.aff, actor, "")
			}
			r.save()
			r.empty()
		}
	default:
		s.bounce(el, "modify", "bad-request")
	}
}

// withAff lists the bare JIDs with affiliation a, sorted.
func (r *room) withAff(a Affiliation) []string {
	var out []string
	for j, x := range r.affs {
		if x == a {
			out = append(out, j)
		}
	}
	sort.Strings(out)
	return out
}

// affChange is one affiliation a configuration form changes.
type affChange struct {
	bare string
	aff  Affiliation
}

// ownerLists reads muc#roomconfig_roomowners and _roomadmins from a
// submitted form as the full lists they are (XEP-0045 §15.5.3): JIDs added
// get the affiliation, JIDs left out lose it (to none). A list the form
// leaves out changes nothing. It refuses invalid JIDs and a room without
// owners (§10.6). A JID in both lists is an owner.
func (r *room) ownerLists(vals map[string][]string) ([]affChange, bool) {
	want := map[Affiliation][]string{}
	for a, v := range map[Affiliation]string{Owner: "muc#roomconfig_roomowners", Admin: "muc#roomconfig_roomadmins"} {
		vs, ok := vals[v]
		if !ok {
			continue
		}
		list := []string{}
		for _, j := range vs {
			if j = strings.TrimSpace(j); j == "" {
				continue
			}
			bare, ok := normBare(j)
			if !ok {
				return nil, false
			}
			list = append(list, bare)
		}
		want[a] = list
	}
	next := make(map[string]Affiliation, len(r.affs))
	for j, a := range r.affs {
		next[j] = a
	}
	for _, a := range []Affiliation{Admin, Owner} { // owners last: they win
		list, ok := want[a]
		if !ok {
			continue
		}
		for j, cur := range next {
			if cur == a && !slices.Contains(list, j) {
				next[j] = None
			}
		}
		for _, j := range list {
			next[j] = a
		}
	}
	owners := 0
	var changes []affChange
	for j, a := range next {
		if a == Owner {
			owners++
		}
		if a != r.affs[j] {
			changes = append(changes, affChange{j, a})
		}
	}
	if owners == 0 {
		return nil, false
	}
	sort.Slice(changes, func(i, k int) bool { return changes[i].bare < changes[k].bare })
	return changes, true
}

// configure applies a new configuration: unlocks a new room, stores or
// forgets it, removes non-members when the room became members-only (322)
// and tells the occupants (104, 172/173 for the anonymity change, §10.2.1).
func (r *room) configure(n RoomConfig) {
	old := r.cfg
	r.cfg = n
	wasLocked := r.locked
	r.locked = false
	r.save()
	if !slices.Equal(old.Groups, n.Groups) || old.Persistent != n.Persistent {
		r.saveBinding()
		if len(n.Groups) > 0 {
			r.syncMembers(nil) // before the members-only check below
		}
	}
	if n.MembersOnly && !old.MembersOnly {
		for i := len(r.list) - 1; i >= 0; i-- {
			if o := r.list[i]; o.aff < Member {
				r.remove(o, &presExtra{codes: []string{"322"}}, false)
			}
		}
	}
	if n.Moderated != old.Moderated || n.NonAnonymous != old.NonAnonymous {
		for _, o := range r.list {
			o.tailAnon, o.tailJID = nil, nil
			if n.Moderated != old.Moderated && o.aff < Admin && o.role != Moderator {
				if role := r.defaultRole(o.aff); role != o.role {
					o.role = role
					r.presenceChanged(o)
				}
			}
		}
	}
	if !wasLocked {
		codes := []string{"104"}
		if n.NonAnonymous != old.NonAnonymous {
			codes = append(codes, map[bool]string{true: "172", false: "173"}[n.NonAnonymous])
		}
		if n.Logging != old.Logging {
			codes = append(codes, map[bool]string{true: "170", false: "171"}[n.Logging])
		}
		b := append([]byte(nil), "' from='"...)
		b = wire.AppendAttrEscaped(b, r.jid)
		b = append(b, "' type='groupchat' id='"...)
		b = append(b, r.svc.stanzaID(r.svc.now())...)
		b = append(b, "'><x xmlns='"+nsUser+"'>"...)
		for _, c := range codes {
			b = appendStatus(b, c)
		}
		b = append(b, "</x></message>"...)
		r.fanout(msgHead, b)
	}
	r.empty()
}

// destroy ends the room (§10.9): every occupant gets an unavailable
// presence with the destroy element (alternate venue, reason); the stored
// room is deleted.
func (r *room) destroy(d *wire.Element) {
	de := wire.New(nsUser, "destroy")
	if alt := d.Attr("jid"); alt != "" {
		de.SetAttr("jid", alt)
	}
	if reason := d.Child(nsOwner, "reason"); reason != nil {
		de.Add((&wire.Element{Space: nsUser, Local: "reason"}).AddText(reason.Text()))
	}
	if pw := d.Child(nsOwner, "password"); pw != nil {
		de.Add((&wire.Element{Space: nsUser, Local: "password"}).AddText(pw.Text()))
	}
	for len(r.list) > 0 {
		r.remove(r.list[len(r.list)-1], &presExtra{noAff: true, destroy: de}, false)
	}
	if s := r.svc; s.st != nil {
		if err := s.st.Delete(bucket, r.jid); err != nil {
			s.log.Error("muc: destroy room", "room", r.jid, "err", err)
		}
	}
	r.unload()
	if len(r.cfg.Groups) > 0 {
		r.saveBinding() // gone: forgets the binding
	}
}
