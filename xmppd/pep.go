package xmppd

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0163 Personal Eventing Protocol: every account is a pubsub service
// (XEP-0060) at its bare JID. Implemented: publish with auto-create and
// publish-options (XEP-0060 §7.1, §7.1.5, XEP-0223), create, retract
// (§7.2), items (§6.5), node delete (§8.4), configure (§8.2) and default
// configuration (§8.3). Subscriptions are implicit (XEP-0163 §4): presence
// subscribers whose caps say NODE+notify get the notifications, and the
// last item when they become available. Explicit subscribe, affiliations
// and purge are not implemented and answer feature-not-implemented.

const (
	nsPubSub        = "http://jabber.org/protocol/pubsub"
	nsPubSubOwner   = nsPubSub + "#owner"
	nsPubSubEvent   = nsPubSub + "#event"
	nsPubSubErrors  = nsPubSub + "#errors"
	nsPubSubOptions = nsPubSub + "#publish-options"
	nsPubSubConfig  = nsPubSub + "#node_config"
	nsPEPForm       = "jabber:x:data"
)

// Defaults of the PEP limits on Server.
const (
	defaultMaxPEPNodes = 100
	// defaultMaxPEPItems is what "max" means for pubsub#max_items: room
	// for XEP-0402 bookmarks of many rooms.
	defaultMaxPEPItems = 1000
	maxPEPNodeName     = 1024
)

// Access models (XEP-0060 §4.5) and send_last_published_item values.
const (
	accessPresence  = "presence"
	accessOpen      = "open"
	accessRoster    = "roster"
	accessWhitelist = "whitelist"

	sendLastNever    = "never"
	sendLastOnSub    = "on_sub"
	sendLastPresence = "on_sub_and_presence"
)

// pepDefaultConfig is the configuration of an auto-created node
// (XEP-0163 §7.1: access model presence, one item).
var pepDefaultConfig = store.PEPConfig{AccessModel: accessPresence, MaxItems: 1, Persist: true, SendLast: sendLastPresence}

// pepFeatures are the account's disco#info features (XEP-0060 §10).
var pepFeatures = []string{
	nsPubSub + "#access-open",
	nsPubSub + "#access-presence",
	nsPubSub + "#access-roster",
	nsPubSub + "#access-whitelist",
	nsPubSub + "#auto-create",
	nsPubSub + "#auto-subscribe",
	nsPubSub + "#config-node",
	nsPubSub + "#create-and-configure",
	nsPubSub + "#create-nodes",
	nsPubSub + "#delete-nodes",
	nsPubSub + "#filtered-notifications",
	nsPubSub + "#item-ids",
	nsPubSub + "#last-published",
	nsPubSub + "#multi-items",
	nsPubSub + "#persistent-items",
	nsPubSub + "#presence-notifications",
	nsPubSub + "#publish",
	nsPubSub + "#publish-options",
	nsPubSub + "#retract-items",
	nsPubSub + "#retrieve-default",
	nsPubSub + "#retrieve-items",
}

// registerPEP adds the PEP handlers and the account's pubsub features.
func (s *Server) registerPEP() {
	if s.MaxPEPNodes <= 0 {
		s.MaxPEPNodes = defaultMaxPEPNodes
	}
	if s.MaxPEPItems <= 0 {
		s.MaxPEPItems = defaultMaxPEPItems
	}
	s.accountIQ[nsPubSub] = pepAccount
	s.accountIQ[nsPubSubOwner] = pepOwner
	s.contactIQ[nsPubSub] = pepContact
	s.contactIQ[nsPubSubOwner] = func(c *conn, el, q *wire.Element) { c.bounce(el, "", errForbidden) }
	s.accountFeatures = append(s.accountFeatures, pepFeatures...)
	s.accountFeatures = append(s.accountFeatures, nsPEPVCardConversion) // avatar.go
}

// pubsubError answers el with e plus a XEP-0060 application condition
// (nsPubSubErrors) and, for unsupported, the feature.
func (c *conn) pubsubError(el *wire.Element, e stanzaError, app, feature string) {
	if el.Attr("type") == "error" {
		return
	}
	r := errorReply(el, el.Attr("to"), e)
	r.SetAttr("to", c.fullJID)
	if app != "" {
		ae := elem(nsPubSubErrors, app)
		if feature != "" {
			ae.SetAttr("feature", feature)
		}
		r.Child(nsClient, "error").Add(ae)
	}
	c.sendElement(r)
}

// pubsubOp returns the operation element of a <pubsub xmlns=space/>
// request, or answers bad-request and returns nil.
func (c *conn) pubsubOp(el, q *wire.Element, space string) *wire.Element {
	if q.Local != "pubsub" {
		c.bounce(el, "", errBadRequest)
		return nil
	}
	_, op := childElements(q)
	if op == nil || op.Space != space {
		c.bounce(el, "", errBadRequest)
		return nil
	}
	return op
}

// pepAccount serves pubsub requests to the user's own bare JID.
func pepAccount(c *conn, el, q *wire.Element) {
	op := c.pubsubOp(el, q, nsPubSub)
	if op == nil {
		return
	}
	if c.refuseDirectoryAvatar(el, op) {
		return
	}
	switch el.Attr("type") + " " + op.Local {
	case "set publish":
		c.pepPublish(el, q, op)
	case "set retract":
		c.pepRetract(el, op)
	case "set create":
		c.pepCreate(el, q, op)
	case "get items":
		c.pepItems(el, op, c.user)
	case "set subscribe", "set unsubscribe":
		// Subscriptions are implicit (XEP-0163 §4.3): presence plus caps.
		c.pubsubError(el, errFeatureNotImpl, "unsupported", "subscribe")
	default:
		c.pubsubError(el, errFeatureNotImpl, "unsupported", op.Local)
	}
}

// pepContact serves pubsub requests to another user's bare JID: only
// items retrieval, as the access model allows (XEP-0060 §6.5).
func pepContact(c *conn, el, q *wire.Element) {
	op := c.pubsubOp(el, q, nsPubSub)
	if op == nil {
		return
	}
	owner := c.iqTarget(el)
	switch {
	case owner == "":
		c.bounce(el, "", errServiceUnavailable)
	case el.Attr("type") == "get" && op.Local == "items":
		c.pepItems(el, op, owner)
	case op.Local == "publish" || op.Local == "retract" || op.Local == "create":
		// Only the owner publishes to a PEP service (XEP-0163 §3).
		c.bounce(el, "", errForbidden)
	default:
		c.pubsubError(el, errFeatureNotImpl, "unsupported", op.Local)
	}
}

// pepOwner serves the owner namespace: configure, default, delete.
func pepOwner(c *conn, el, q *wire.Element) {
	op := c.pubsubOp(el, q, nsPubSubOwner)
	if op == nil {
		return
	}
	if c.refuseDirectoryAvatar(el, op) {
		return
	}
	switch el.Attr("type") + " " + op.Local {
	case "get configure":
		c.pepConfigureGet(el, op)
	case "set configure":
		c.pepConfigureSet(el, op)
	case "get default":
		r := iqResult(el)
		r.Add(elem(nsPubSubOwner, "pubsub").Add(elem(nsPubSubOwner, "default").Add(c.srv.pepConfigForm(pepDefaultConfig))))
		c.sendElement(r)
	case "set delete":
		c.pepDelete(el, op)
	default:
		c.pubsubError(el, errFeatureNotImpl, "unsupported", op.Local)
	}
}

// validNodeName reports whether a node name can be stored and echoed.
func validNodeName(n string) bool { return n != "" && len(n) <= maxPEPNodeName }

// pepPublish handles XEP-0060 §7.1 for the owner.
func (c *conn) pepPublish(el, q, pub *wire.Element) {
	s := c.srv
	node := pub.Attr("node")
	if !validNodeName(node) {
		c.pubsubError(el, errBadRequest, "nodeid-required", "")
		return
	}
	nItems, item := childElements(pub)
	if nItems != 1 || item.Local != "item" {
		// PEP nodes are persistent with payloads: exactly one item
		// (§7.1.3.6, §7.1.3.5).
		c.pubsubError(el, errBadRequest, "item-required", "")
		return
	}
	nPayload, payloadEl := childElements(item)
	switch {
	case nPayload == 0:
		c.pubsubError(el, errBadRequest, "payload-required", "")
		return
	case nPayload > 1:
		c.pubsubError(el, errBadRequest, "invalid-payload", "")
		return
	}
	var fields map[string][]string
	if po := q.Child(nsPubSub, "publish-options"); po != nil {
		if x := po.Child(nsPEPForm, "x"); x != nil {
			fields = formFields(x)
		}
	}
	create, bad := s.applyNodeConfig(pepDefaultConfig, fields)
	if bad != "" {
		c.pubsubError(el, errStanzaConflict.withText(bad), "precondition-not-met", "")
		return
	}
	payload, err := canonicalXML(payloadEl, s.MaxStanzaBytes)
	switch {
	case errors.Is(err, errTooLarge):
		c.pubsubError(el, errNotAcceptable, "payload-too-big", "")
		return
	case err != nil:
		c.pubsubError(el, errBadRequest.withText("the payload is not self-contained XML"), "invalid-payload", "")
		return
	}
	id := item.Attr("id")
	if id == "" {
		id = randomID(10)
	}
	if isAvatarNode(node) {
		// With its conversion to the vCard, one step for any other
		// avatar change of this user (avatar.go).
		defer s.lockAvatar(c.user)()
	}
	it := store.PEPItem{ID: id, Publisher: c.bareJID, Time: time.Now().UTC(), Payload: payload}
	var unmet string
	cfg, _, err := s.Store.PEPPublish(store.PEPPublishRequest{
		User: c.user, Node: node, Item: it, Create: create, MaxNodes: s.MaxPEPNodes,
		Check: func(cur store.PEPConfig, exists bool) error {
			if exists && fields != nil {
				if unmet = s.unmetPreconditions(cur, fields); unmet != "" {
					return errPrecondition
				}
			}
			return nil
		},
	})
	switch {
	case errors.Is(err, errPrecondition):
		// §7.1.5: the node exists with another configuration; clients
		// then reconfigure it and publish again.
		c.pubsubError(el, errStanzaConflict.withText(unmet), "precondition-not-met", "")
		return
	case errors.Is(err, store.ErrPEPNodeLimit):
		c.bounce(el, "", errNotAllowed.withText("too many PEP nodes"))
		return
	case err != nil:
		s.Logger.Error("PEP publish", "user", c.user, "node", node, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	r := iqResult(el)
	r.Add(elem(nsPubSub, "pubsub").Add(elem(nsPubSub, "publish", "node", node).Add(elem(nsPubSub, "item", "id", id))))
	c.sendElement(r)
	s.pepBroadcast(c.user, node, cfg, pepItemsEvent(node, []store.PEPItem{it}, false))
	if node == nsAvatarMeta {
		s.avatarPublished(c.user, payloadEl) // XEP-0398 §3.1
	}
}

var (
	errPrecondition   = errors.New("xmppd: publish-options precondition not met")
	errStanzaConflict = stanzaError{"cancel", "conflict", ""}
)

// pepCreate handles XEP-0060 §8.1 (with §8.1.3 configure).
func (c *conn) pepCreate(el, q, cr *wire.Element) {
	s := c.srv
	node := cr.Attr("node")
	if !validNodeName(node) {
		// Instant nodes (§8.1.2) make no sense for PEP.
		c.pubsubError(el, errNotAcceptable, "nodeid-required", "")
		return
	}
	var fields map[string][]string
	if conf := q.Child(nsPubSub, "configure"); conf != nil {
		if x := conf.Child(nsPEPForm, "x"); x != nil {
			fields = formFields(x)
		}
	}
	cfg, bad := s.applyNodeConfig(pepDefaultConfig, fields)
	if bad != "" {
		c.bounce(el, "", errNotAcceptable.withText(bad))
		return
	}
	created, err := s.Store.PEPCreate(c.user, node, cfg, s.MaxPEPNodes)
	switch {
	case errors.Is(err, store.ErrPEPNodeLimit):
		c.bounce(el, "", errNotAllowed.withText("too many PEP nodes"))
	case err != nil:
		s.Logger.Error("PEP create", "user", c.user, "node", node, "err", err)
		c.bounce(el, "", errInternal)
	case !created:
		c.bounce(el, "", errStanzaConflict)
	default:
		c.sendElement(iqResult(el))
	}
}

// pepRetract handles XEP-0060 §7.2.
func (c *conn) pepRetract(el, rt *wire.Element) {
	s := c.srv
	node := rt.Attr("node")
	if !validNodeName(node) {
		c.pubsubError(el, errBadRequest, "nodeid-required", "")
		return
	}
	n, item := childElements(rt)
	if n != 1 || item.Local != "item" || item.Attr("id") == "" {
		c.pubsubError(el, errBadRequest, "item-required", "")
		return
	}
	id := item.Attr("id")
	found, err := s.Store.PEPRetract(c.user, node, id)
	switch {
	case errors.Is(err, store.ErrPEPNoNode), err == nil && !found:
		c.bounce(el, "", errItemNotFound)
		return
	case err != nil:
		s.Logger.Error("PEP retract", "user", c.user, "node", node, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	c.sendElement(iqResult(el))
	if v := rt.Attr("notify"); v == "1" || v == "true" {
		if cfg, ok, err := s.Store.PEPConfig(c.user, node); err == nil && ok {
			s.pepBroadcast(c.user, node, cfg, pepItemsEvent(node, []store.PEPItem{{ID: id}}, true))
		}
	}
}

// pepDelete handles XEP-0060 §8.4: subscribers get a delete event.
func (c *conn) pepDelete(el, del *wire.Element) {
	s := c.srv
	node := del.Attr("node")
	if !validNodeName(node) {
		c.pubsubError(el, errBadRequest, "nodeid-required", "")
		return
	}
	cfg, ok, err := s.Store.PEPConfig(c.user, node)
	if err == nil && ok {
		ok, err = s.Store.PEPDeleteNode(c.user, node)
	}
	switch {
	case err != nil:
		s.Logger.Error("PEP delete", "user", c.user, "node", node, "err", err)
		c.bounce(el, "", errInternal)
	case !ok:
		c.bounce(el, "", errItemNotFound)
	default:
		c.sendElement(iqResult(el))
		b := append([]byte("<delete node='"), wire.AppendEscaped(nil, node)...)
		s.pepBroadcast(c.user, node, cfg, append(b, "'/>"...))
	}
}

// pepItems handles XEP-0060 §6.5 for owner's node: all items, the newest
// max_items, or the items asked for by id.
func (c *conn) pepItems(el, items *wire.Element, owner string) {
	s := c.srv
	node := items.Attr("node")
	if !validNodeName(node) {
		c.pubsubError(el, errBadRequest, "nodeid-required", "")
		return
	}
	max := 0
	if v := items.Attr("max_items"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			c.bounce(el, "", errBadRequest)
			return
		}
		max = n
	}
	var ids []string
	for _, nd := range items.Nodes {
		if nd.El != nil && nd.El.Local == "item" && nd.El.Attr("id") != "" {
			ids = append(ids, nd.El.Attr("id"))
		}
	}
	list, cfg, err := s.pepItemsOf(owner, node, ids, max)
	switch {
	case errors.Is(err, store.ErrPEPNoNode):
		c.bounce(el, "", errItemNotFound)
		return
	case err != nil:
		s.Logger.Error("PEP items", "user", owner, "node", node, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	if e, app, ok := s.pepAccess(owner, c.user, cfg); !ok {
		c.pubsubError(el, e, app, "")
		return
	}
	r := iqResult(el)
	open := "<pubsub xmlns='" + nsPubSub + "'>"
	body := pepItemsEvent(node, list, false)
	c.sendSpliced(r, open, body, "</pubsub>")
}

// pepItemsEvent serializes <items node='...'> with the items (their
// stored payloads spliced in), or with <retract id/> for each when retract.
// The same bytes serve an items result and an event notification.
func pepItemsEvent(node string, items []store.PEPItem, retract bool) []byte {
	n := 64 + len(node)
	for _, it := range items {
		n += 32 + len(it.ID) + len(it.Payload)
	}
	b := make([]byte, 0, n)
	b = append(b, "<items node='"...)
	b = wire.AppendEscaped(b, node)
	b = append(b, "'>"...)
	for _, it := range items {
		if retract {
			b = append(b, "<retract id='"...)
			b = wire.AppendEscaped(b, it.ID)
			b = append(b, "'/>"...)
			continue
		}
		b = append(b, "<item id='"...)
		b = wire.AppendEscaped(b, it.ID)
		b = append(b, "'>"...)
		b = append(b, it.Payload...)
		b = append(b, "</item>"...)
	}
	return append(b, "</items>"...)
}

// pepAccess decides whether requester (a username) may see owner's node
// (XEP-0060 §4.5 access models; the owner always may). When not, it
// returns the error and its pubsub#errors condition (§6.5.3 - §6.5.5).
func (s *Server) pepAccess(owner, requester string, cfg store.PEPConfig) (stanzaError, string, bool) {
	if owner == requester {
		return stanzaError{}, "", true
	}
	bare := requester + "@" + s.Domain
	if s.blockSetOf(owner).matches(bare) {
		return errItemNotFound, "", false
	}
	switch cfg.AccessModel {
	case accessOpen:
		return stanzaError{}, "", true
	case accessPresence:
		if from, _ := s.presenceSub(owner, bare); from { // not the owner's whole roster: quadratic at login
			return stanzaError{}, "", true
		}
		return errStanzaNotAuthorized, "presence-subscription-required", false
	case accessRoster:
		if e, ok := s.rosterEntry(owner, bare); ok && inRosterGroups(e, cfg.RosterGroups) {
			return stanzaError{}, "", true
		}
		return errStanzaNotAuthorized, "not-in-roster-group", false
	default: // whitelist: only the owner, as we keep no affiliations
		return errNotAllowed, "closed-node", false
	}
}

var errStanzaNotAuthorized = stanzaError{"auth", "not-authorized", ""}

func inRosterGroups(e rosterEntry, allowed []string) bool {
	for _, g := range e.Groups {
		if slices.Contains(allowed, g) {
			return true
		}
	}
	return false
}

// pepBroadcast sends an event (the inner XML of <event/>) about owner's
// node to the sessions that want it (XEP-0163 §4.3): the owner's own and
// those of contacts the access model admits, each only if available with
// NODE+notify in its caps. The message is serialized once; only the to
// attribute is spliced in per session.
func (s *Server) pepBroadcast(owner, node string, cfg store.PEPConfig, event []byte) {
	from := owner + "@" + s.Domain
	head, tail := pepMessage(from, event, time.Time{})
	send := func(r *conn) {
		if r.pepNotifies(node) && r.send(head, r.toAttr, tail) {
			s.metrics.stanzasOut.Add(1)
		}
	}
	for _, r := range s.router.sessionsOf(owner) {
		send(r)
	}
	if cfg.AccessModel == accessWhitelist {
		return
	}
	for _, e := range s.presenceAudience(owner) {
		u, ok := s.localUser(e.JID)
		if !ok || u == owner {
			continue
		}
		if cfg.AccessModel == accessRoster && !inRosterGroups(e, cfg.RosterGroups) {
			continue
		}
		if s.blockSetOf(owner).matches(e.JID) || s.blockSetOf(u).matches(from) {
			continue
		}
		for _, r := range s.router.sessionsOf(u) {
			send(r)
		}
	}
}

// pepMessage builds a headline notification from the owner's bare JID,
// split where the recipient's to attribute goes. A non-zero stamp adds a
// XEP-0203 delay (a last item sent later than it was published).
func pepMessage(from string, event []byte, stamp time.Time) (head, tail []byte) {
	head = make([]byte, 0, 64+len(from))
	head = append(head, "<message type='headline' id='"...)
	head = append(head, randomID(6)...)
	head = append(head, "' from='"...)
	head = wire.AppendEscaped(head, from)
	head = append(head, '\'')
	tail = make([]byte, 0, 128+len(event))
	tail = append(tail, "><event xmlns='"+nsPubSubEvent+"'>"...)
	tail = append(tail, event...)
	tail = append(tail, "</event>"...)
	if !stamp.IsZero() {
		tail = append(tail, "<delay xmlns='"+nsDelay+"' from='"...)
		tail = wire.AppendEscaped(tail, from)
		tail = append(tail, "' stamp='"...)
		tail = append(tail, stamp.UTC().Format("2006-01-02T15:04:05.000Z")...)
		tail = append(tail, "'/>"...)
	}
	return head, append(tail, "</message>"...)
}

// sendLastPEPItems sends session c the last item of each node it wants
// (XEP-0163 §4.3.3, send_last_published_item on_sub_and_presence): of its
// own account and of every contact whose presence it is subscribed to and
// whose access model admits it.
func (s *Server) sendLastPEPItems(c *conn, want func(node string) bool) {
	owners := []string{c.user}
	if entries, _, err := s.roster(c.user); err == nil {
		for _, e := range entries {
			if u, ok := s.localUser(e.JID); ok && e.subTo() && u != c.user {
				owners = append(owners, u)
			}
		}
	}
	for _, owner := range owners {
		nodes, err := s.Store.PEPNodes(owner)
		if err != nil {
			s.Logger.Error("PEP last items", "user", owner, "err", err)
			continue
		}
		dirAvatar := s.sendLastDirectoryAvatar(c, owner, want)
		for _, n := range nodes {
			if n.Last == nil || n.Config.SendLast != sendLastPresence || !want(n.Name) || dirAvatar && isAvatarNode(n.Name) {
				continue
			}
			if _, _, ok := s.pepAccess(owner, c.user, n.Config); !ok {
				continue
			}
			if owner != c.user && s.blockSetOf(c.user).matches(owner+"@"+s.Domain) {
				continue
			}
			head, tail := pepMessage(owner+"@"+s.Domain, pepItemsEvent(n.Name, []store.PEPItem{*n.Last}, false), n.Last.Time)
			if c.send(head, c.toAttr, tail) {
				s.metrics.stanzasOut.Add(1)
			}
		}
	}
}

// ---- node configuration (XEP-0060 §16.4) ------------------------------------

// formFields reads a data form's fields (XEP-0004), FORM_TYPE left out.
func formFields(x *wire.Element) map[string][]string {
	f := map[string][]string{}
	for _, n := range x.Nodes {
		fe := n.El
		if fe == nil || fe.Local != "field" || fe.Attr("var") == "" || fe.Attr("var") == "FORM_TYPE" {
			continue
		}
		vals := []string{}
		for _, vn := range fe.Nodes {
			if vn.El != nil && vn.El.Local == "value" {
				vals = append(vals, strings.TrimSpace(vn.El.Text()))
			}
		}
		f[fe.Attr("var")] = vals
	}
	return f
}

func formValue(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

func parseFormBool(v string) (bool, bool) {
	switch v {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// parseMaxItems reads pubsub#max_items: a number from 1 to the server's
// bound, or "max" for the bound (XEP-0060 §16.4.4).
func (s *Server) parseMaxItems(v string) (int, bool) {
	if v == "max" {
		return s.MaxPEPItems, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > s.MaxPEPItems {
		return 0, false
	}
	return n, true
}

// applyNodeConfig returns base with the fields of a configuration or
// publish-options form applied, or a reason why a field cannot be met.
// Fields the server does not act on (deliver_payloads, notify_retract,
// title, ...) are accepted and ignored: clients send them by habit, and
// refusing them would stop publishing altogether.
func (s *Server) applyNodeConfig(base store.PEPConfig, fields map[string][]string) (store.PEPConfig, string) {
	cfg := base
	cfg.RosterGroups = slices.Clone(base.RosterGroups)
	for name, vals := range fields {
		v := formValue(vals)
		switch name {
		case "pubsub#access_model":
			switch v {
			case accessPresence, accessOpen, accessRoster, accessWhitelist:
				cfg.AccessModel = v
			default:
				return cfg, "access model " + v + " is not supported"
			}
		case "pubsub#persist_items":
			b, ok := parseFormBool(v)
			if !ok {
				return cfg, "persist_items must be a boolean"
			}
			cfg.Persist = b
		case "pubsub#max_items":
			n, ok := s.parseMaxItems(v)
			if !ok {
				return cfg, "max_items must be max or 1 to " + strconv.Itoa(s.MaxPEPItems)
			}
			cfg.MaxItems = n
		case "pubsub#send_last_published_item":
			switch v {
			case sendLastNever, sendLastOnSub, sendLastPresence:
				cfg.SendLast = v
			default:
				return cfg, "send_last_published_item " + v + " is not supported"
			}
		case "pubsub#roster_groups_allowed":
			cfg.RosterGroups = slices.Clone(vals)
		}
	}
	return cfg, ""
}

// unmetPreconditions compares publish-options with an existing node's
// configuration (XEP-0060 §7.1.5) and names the first that differs.
func (s *Server) unmetPreconditions(cur store.PEPConfig, fields map[string][]string) string {
	want, bad := s.applyNodeConfig(cur, fields)
	if bad != "" {
		return bad
	}
	for name := range fields {
		var differs bool
		switch name {
		case "pubsub#access_model":
			differs = want.AccessModel != cur.AccessModel
		case "pubsub#persist_items":
			differs = want.Persist != cur.Persist
		case "pubsub#max_items":
			differs = want.MaxItems != cur.MaxItems
		case "pubsub#send_last_published_item":
			differs = want.SendLast != cur.SendLast
		case "pubsub#roster_groups_allowed":
			differs = !slices.Equal(slices.Sorted(slices.Values(want.RosterGroups)), slices.Sorted(slices.Values(cur.RosterGroups)))
		}
		if differs {
			return name + " differs from the node's configuration"
		}
	}
	return ""
}

// pepConfigForm renders a configuration as a XEP-0060 §16.4 form.
func (s *Server) pepConfigForm(cfg store.PEPConfig) *wire.Element {
	x := elem(nsPEPForm, "x", "type", "form")
	field := func(v, typ string, vals ...string) *wire.Element {
		f := elem(nsPEPForm, "field", "var", v, "type", typ)
		for _, val := range vals {
			f.Add((&wire.Element{Space: nsPEPForm, Local: "value"}).AddText(val))
		}
		x.Add(f)
		return f
	}
	field("FORM_TYPE", "hidden", nsPubSubConfig)
	access := field("pubsub#access_model", "list-single", cfg.AccessModel)
	for _, o := range []string{accessOpen, accessPresence, accessRoster, accessWhitelist} {
		access.Add(elem(nsPEPForm, "option").Add((&wire.Element{Space: nsPEPForm, Local: "value"}).AddText(o)))
	}
	field("pubsub#roster_groups_allowed", "list-multi", cfg.RosterGroups...)
	persist := "0"
	if cfg.Persist {
		persist = "1"
	}
	field("pubsub#persist_items", "boolean", persist)
	field("pubsub#max_items", "text-single", strconv.Itoa(cfg.MaxItems))
	last := field("pubsub#send_last_published_item", "list-single", cfg.SendLast)
	for _, o := range []string{sendLastNever, sendLastOnSub, sendLastPresence} {
		last.Add(elem(nsPEPForm, "option").Add((&wire.Element{Space: nsPEPForm, Local: "value"}).AddText(o)))
	}
	return x
}

// pepConfigureGet answers XEP-0060 §8.2.1.
func (c *conn) pepConfigureGet(el, conf *wire.Element) {
	s := c.srv
	node := conf.Attr("node")
	cfg, ok, err := s.Store.PEPConfig(c.user, node)
	switch {
	case err != nil:
		s.Logger.Error("PEP configure", "user", c.user, "node", node, "err", err)
		c.bounce(el, "", errInternal)
		return
	case !ok:
		c.bounce(el, "", errItemNotFound)
		return
	}
	r := iqResult(el)
	r.Add(elem(nsPubSubOwner, "pubsub").Add(elem(nsPubSubOwner, "configure", "node", node).Add(s.pepConfigForm(cfg))))
	c.sendElement(r)
}

// pepConfigureSet handles XEP-0060 §8.2.4 (and §8.2.3 cancel).
func (c *conn) pepConfigureSet(el, conf *wire.Element) {
	s := c.srv
	node := conf.Attr("node")
	x := conf.Child(nsPEPForm, "x")
	if x == nil {
		c.bounce(el, "", errBadRequest)
		return
	}
	cur, ok, err := s.Store.PEPConfig(c.user, node)
	switch {
	case err != nil:
		s.Logger.Error("PEP configure", "user", c.user, "node", node, "err", err)
		c.bounce(el, "", errInternal)
		return
	case !ok:
		c.bounce(el, "", errItemNotFound)
		return
	}
	if x.Attr("type") == "cancel" {
		c.sendElement(iqResult(el))
		return
	}
	cfg, bad := s.applyNodeConfig(cur, formFields(x))
	if bad != "" {
		c.bounce(el, "", errNotAcceptable.withText(bad))
		return
	}
	if err := s.Store.PEPConfigure(c.user, node, cfg); err != nil {
		s.Logger.Error("PEP configure", "user", c.user, "node", node, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	c.sendElement(iqResult(el))
}
