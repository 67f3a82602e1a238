package muc

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// RoomConfig is a room's configuration: the fields of the
// muc#roomconfig form (XEP-0045 §10.2, §15.5.3).
type RoomConfig struct {
	Name          string // muc#roomconfig_roomname
	Description   string // muc#roomconfig_roomdesc
	Persistent    bool   // muc#roomconfig_persistentroom
	Public        bool   // muc#roomconfig_publicroom: listed in disco#items
	MembersOnly   bool   // muc#roomconfig_membersonly
	Moderated     bool   // muc#roomconfig_moderatedroom
	PasswordProt  bool   // muc#roomconfig_passwordprotectedroom
	Password      string // muc#roomconfig_roomsecret
	NonAnonymous  bool   // muc#roomconfig_whois = anyone (else moderators)
	MaxUsers      int    // muc#roomconfig_maxusers; 0: no limit
	ChangeSubject bool   // muc#roomconfig_changesubject: participants may
	AllowInvites  bool   // muc#roomconfig_allowinvites: participants may (members-only rooms)
	AllowPM       string // muc#roomconfig_allowpm: anyone, participants, moderators, none
	Logging       bool   // muc#roomconfig_enablelogging (status 170)
	// Groups binds the room to directory groups (fieldGroups): its
	// members follow them. Never modified in place.
	Groups []string
	Lang   string // muc#roomconfig_lang: the room's natural language
	PubSub string // muc#roomconfig_pubsub: the room's pubsub node (XEP-0045 §15.5.3), shown in disco
	// MaxHistoryFetch caps the history sent on join (muc#maxhistoryfetch):
	// 0 is everything the room keeps (the zero value), -1 none at all.
	MaxHistoryFetch int
	// MemberListRoles may retrieve the member list besides admins and
	// owners (muc#roomconfig_getmemberlist).
	MemberListRoles RoleSet
	// PresenceHidden are the roles whose presence only moderators see
	// (the complement of muc#roomconfig_presencebroadcast), so that the
	// zero value broadcasts every role, as rooms did before the field.
	PresenceHidden RoleSet
}

// RoleSet is a set of roles, one bit per Role.
type RoleSet uint8

// Has reports whether ro is in the set.
func (s RoleSet) Has(ro Role) bool { return s&(1<<ro) != 0 }

// occupantRoles are the roles a form can list, in the form's order.
var occupantRoles = []Role{Moderator, Participant, Visitor}

// names lists the set's roles for a form field.
func (s RoleSet) names() []string {
	var out []string
	for _, ro := range occupantRoles {
		if s.Has(ro) {
			out = append(out, ro.String())
		}
	}
	return out
}

// parseRoleSet reads a list-multi of role names; unknown names are an error.
func parseRoleSet(vs []string) (RoleSet, bool) {
	var s RoleSet
	for _, v := range vs {
		ro, ok := parseRole(v)
		if !ok || ro == RoleNone {
			return 0, false
		}
		s |= 1 << ro
	}
	return s, true
}

// allRoles is every occupant role.
const allRoles = RoleSet(1<<Moderator | 1<<Participant | 1<<Visitor)

// fieldGroups is ownChat's own field of the configuration form: the
// directory groups whose members are the room's members (XEP-0004 allows
// fields beyond the registered ones).
const fieldGroups = "muc#roomconfig_ownchat_groups"

// DefaultRoomConfig is the configuration of a new room unless
// Config.Defaults says otherwise: temporary, public, open, unmoderated,
// semi-anonymous, private messages allowed — XEP-0045's defaults.
func DefaultRoomConfig() RoomConfig {
	return RoomConfig{Public: true, AllowPM: "anyone", MemberListRoles: 1 << Moderator}
}

const (
	nsMUC        = "http://jabber.org/protocol/muc"
	nsUser       = nsMUC + "#user"
	nsAdmin      = nsMUC + "#admin"
	nsOwner      = nsMUC + "#owner"
	nsData       = "jabber:x:data"
	nsClient     = "jabber:client"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
	nsSID        = "urn:xmpp:sid:0"
	nsDelay      = "urn:xmpp:delay"
	nsConference = "jabber:x:conference"
	formConfig   = nsMUC + "#roomconfig"
	formInfo     = nsMUC + "#roominfo"
)

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func field(typ, v, label string, values ...string) *wire.Element {
	f := wire.New("", "field", "var", v, "type", typ)
	if label != "" {
		f.SetAttr("label", label)
	}
	for _, val := range values {
		f.Add((&wire.Element{Space: nsData, Local: "value"}).AddText(val))
	}
	return f
}

func option(label, value string) *wire.Element {
	return wire.New("", "option", "label", label).Add((&wire.Element{Space: nsData, Local: "value"}).AddText(value))
}

// form returns the owner configuration form (§10.2) filled with c; groups
// are the directory's groups, nil without a directory; owners and admins
// are the room's (muc#roomconfig_roomowners, _roomadmins); histMax is how
// many messages the room keeps.
func (c *RoomConfig) form(groups, owners, admins []string, histMax int) *wire.Element {
	x := wire.New(nsData, "x", "type", "form")
	x.Add((&wire.Element{Space: nsData, Local: "title"}).AddText("Room configuration"))
	whois := "moderators"
	if c.NonAnonymous {
		whois = "anyone"
	}
	maxUsers := "none"
	if c.MaxUsers > 0 {
		maxUsers = strconv.Itoa(c.MaxUsers)
	}
	fetch := histMax
	switch {
	case c.MaxHistoryFetch < 0:
		fetch = 0
	case c.MaxHistoryFetch > 0 && c.MaxHistoryFetch < histMax:
		fetch = c.MaxHistoryFetch
	}
	fs := []*wire.Element{
		field("hidden", "FORM_TYPE", "", formConfig),
		field("text-single", "muc#roomconfig_roomname", "Natural-language room name", c.Name),
		field("text-multi", "muc#roomconfig_roomdesc", "Short description of the room", c.Description),
		field("boolean", "muc#roomconfig_persistentroom", "Make room persistent", boolStr(c.Persistent)),
		field("boolean", "muc#roomconfig_publicroom", "Make room publicly searchable", boolStr(c.Public)),
		field("boolean", "muc#roomconfig_membersonly", "Make room members-only", boolStr(c.MembersOnly)),
		field("boolean", "muc#roomconfig_moderatedroom", "Make room moderated", boolStr(c.Moderated)),
		field("boolean", "muc#roomconfig_passwordprotectedroom", "Password required to enter", boolStr(c.PasswordProt)),
		field("text-private", "muc#roomconfig_roomsecret", "Password", c.Password),
		field("list-single", "muc#roomconfig_whois", "Who may discover real JIDs", whois).Add(
			option("Moderators only", "moderators"), option("Anyone", "anyone")),
		field("list-single", "muc#roomconfig_maxusers", "Maximum number of occupants", maxUsers).Add(
			option("10", "10"), option("20", "20"), option("30", "30"), option("50", "50"),
			option("100", "100"), option("1000", "1000"), option("None", "none")),
		field("boolean", "muc#roomconfig_changesubject", "Allow occupants to change the subject", boolStr(c.ChangeSubject)),
		field("boolean", "muc#roomconfig_allowinvites", "Allow occupants to invite others", boolStr(c.AllowInvites)),
		field("list-single", "muc#roomconfig_allowpm", "Who may send private messages", c.AllowPM).Add(
			option("Anyone", "anyone"), option("Participants", "participants"),
			option("Moderators", "moderators"), option("Nobody", "none")),
		field("boolean", "muc#roomconfig_enablelogging", "Enable public logging", boolStr(c.Logging)),
		field("text-single", "muc#maxhistoryfetch", "Maximum number of history messages sent on join", strconv.Itoa(fetch)),
		roleField("muc#roomconfig_getmemberlist", "Roles that may retrieve the member list", c.MemberListRoles),
		roleField("muc#roomconfig_presencebroadcast", "Roles whose presence is broadcast", allRoles&^c.PresenceHidden),
		field("text-single", "muc#roomconfig_lang", "Natural language of the room", c.Lang),
		field("text-single", "muc#roomconfig_pubsub", "XMPP URI of the room's pubsub node", c.PubSub),
		field("jid-multi", "muc#roomconfig_roomowners", "Full list of room owners", owners...),
		field("jid-multi", "muc#roomconfig_roomadmins", "Full list of room admins", admins...),
	}
	if groups != nil {
		f := field("list-multi", fieldGroups, "Members are the members of these directory groups", c.Groups...)
		for _, g := range groups {
			f.Add(option(g, g))
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		f.Space = nsData
		for _, n := range f.Nodes {
			if n.El != nil {
				n.El.Space = nsData
				for _, m := range n.El.Nodes {
					if m.El != nil {
						m.El.Space = nsData
					}
				}
			}
		}
	}
	return x.Add(fs...)
}

// roleField is a list-multi of occupant roles with set selected.
func roleField(v, label string, set RoleSet) *wire.Element {
	f := field("list-multi", v, label, set.names()...)
	for _, ro := range occupantRoles {
		f.Add(option(ro.String(), ro.String()))
	}
	return f
}

// formValues returns the values of a submitted data form by var.
func formValues(x *wire.Element) map[string][]string {
	out := make(map[string][]string)
	for _, n := range x.Nodes {
		f := n.El
		if f == nil || f.Local != "field" || f.Space != nsData {
			continue
		}
		vs := []string{}
		for _, m := range f.Nodes {
			if m.El != nil && m.El.Local == "value" {
				vs = append(vs, m.El.Text())
			}
		}
		out[f.Attr("var")] = vs
	}
	return out
}

func formBool(s string) (bool, bool) {
	switch s {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// apply changes c by a submitted form (§10.2). Fields the form leaves out
// keep their value, as the XEP allows partial submissions; an invalid value
// is a bad-request and changes nothing.
func (c *RoomConfig) apply(vals map[string][]string) (RoomConfig, bool) {
	n := *c
	for k, vs := range vals {
		v := ""
		if len(vs) > 0 {
			v = vs[0]
		}
		var b, ok bool
		setBool := func(dst *bool) {
			if b, ok = formBool(v); ok {
				*dst = b
			}
		}
		ok = true
		switch k {
		case "FORM_TYPE":
			ok = v == formConfig
		case "muc#roomconfig_roomname":
			n.Name = v
		case "muc#roomconfig_roomdesc":
			n.Description = joinLines(vs)
		case "muc#roomconfig_persistentroom":
			setBool(&n.Persistent)
		case "muc#roomconfig_publicroom":
			setBool(&n.Public)
		case "muc#roomconfig_membersonly":
			setBool(&n.MembersOnly)
		case "muc#roomconfig_moderatedroom":
			setBool(&n.Moderated)
		case "muc#roomconfig_passwordprotectedroom":
			setBool(&n.PasswordProt)
		case "muc#roomconfig_roomsecret":
			n.Password = v
		case "muc#roomconfig_whois":
			switch v {
			case "anyone":
				n.NonAnonymous = true
			case "moderators":
				n.NonAnonymous = false
			default:
				ok = false
			}
		case "muc#roomconfig_maxusers":
			if v == "none" || v == "" || v == "0" {
				n.MaxUsers = 0
			} else if m, err := strconv.Atoi(v); err == nil && m > 0 {
				n.MaxUsers = m
			} else {
				ok = false
			}
		case "muc#roomconfig_changesubject":
			setBool(&n.ChangeSubject)
		case "muc#roomconfig_allowinvites":
			setBool(&n.AllowInvites)
		case "muc#roomconfig_allowpm":
			switch v {
			case "anyone", "participants", "moderators", "none":
				n.AllowPM = v
			default:
				ok = false
			}
		case "muc#roomconfig_enablelogging":
			setBool(&n.Logging)
		case "muc#maxhistoryfetch":
			if m, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && m >= 0 {
				n.MaxHistoryFetch = m
				if m == 0 {
					n.MaxHistoryFetch = -1
				}
			} else {
				ok = false
			}
		case "muc#roomconfig_getmemberlist":
			n.MemberListRoles, ok = parseRoleSet(vs)
		case "muc#roomconfig_presencebroadcast":
			var set RoleSet
			set, ok = parseRoleSet(vs)
			n.PresenceHidden = allRoles &^ set
		case "muc#roomconfig_lang":
			n.Lang = strings.TrimSpace(v)
		case "muc#roomconfig_pubsub":
			n.PubSub = strings.TrimSpace(v)
		case "muc#roomconfig_roomowners", "muc#roomconfig_roomadmins":
			// Affiliations, not configuration: the owner handler applies
			// them (ownerLists).
		case fieldGroups:
			var gs []string
			for _, g := range vs {
				if g = strings.TrimSpace(g); g != "" && !slices.Contains(gs, g) {
					gs = append(gs, g)
				}
			}
			sort.Strings(gs)
			n.Groups = gs
		}
		if !ok {
			return *c, false
		}
	}
	if n.PasswordProt && n.Password == "" {
		return *c, false
	}
	return n, true
}

func joinLines(vs []string) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += "\n"
		}
		s += v
	}
	return s
}
