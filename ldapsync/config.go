package ldapsync

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ownchat/ownchat/sharedroster"

	"github.com/go-ldap/ldap/v3"
)

// Config is everything ldapsync needs to know about the directory. The
// attribute and filter fields are usually left empty and filled by
// ApplyPreset; any field set beforehand wins over the preset.
//
// An attribute field names one attribute, or several separated by commas
// that are tried in order ("displayName,cn": the first one the entry has).
type Config struct {
	// URLs are the directory servers, tried in order: "ldaps://host:636"
	// or "ldap://host:389". Only scheme, host and port are allowed.
	URLs []string
	// StartTLS upgrades ldap:// connections with StartTLS (RFC 4513 §3);
	// a failed upgrade fails the connection, it never continues in clear.
	StartTLS bool
	// AllowInsecure permits ldap:// without StartTLS, which sends every
	// bind password in clear text. For loopback tests only.
	AllowInsecure bool
	// CAFile is a PEM file of the CAs that sign the directory's
	// certificate; empty: the system's roots. RootCAs, when set, is used
	// instead (tests).
	CAFile  string
	RootCAs *x509.CertPool

	// BindDN and BindPassword are the service account the sync and the
	// login lookups search as. An empty BindDN searches anonymously.
	BindDN, BindPassword string

	// BaseDN is where users and groups are searched (subtree).
	// UserBaseDN and GroupBaseDN narrow it; empty means BaseDN.
	BaseDN, UserBaseDN, GroupBaseDN string

	// UserFilter selects the people who may log in; GroupFilter the groups.
	UserFilter, GroupFilter string
	// DisabledFilter selects, among the users, the ones that are disabled
	// or locked: they cannot log in and vanish from rosters. Empty: none.
	DisabledFilter string

	UsernameAttr string // becomes the JID localpart
	// AliasAttrs hold other login names of the same person (AD:
	// userPrincipalName, mail). The part before an '@' is used.
	AliasAttrs      []string
	DisplayNameAttr string
	GroupNameAttr   string
	MemberAttr      string // member DNs; nested groups are expanded
	MemberUIDAttr   string // posixGroup member usernames (memberUid)
	MailAttr        string
	TitleAttr       string
	PhoneAttr       string
	DepartmentAttr  string
	PhotoAttr       string
	// GivenNameAttr and SurnameAttr fill the vCard's N (GIVEN, FAMILY).
	GivenNameAttr string
	SurnameAttr   string
	// NicknameAttr fills the vCard's NICKNAME. No preset sets it: without
	// it, or when an entry lacks it, the nickname is the given name, what
	// colleagues call each other.
	NicknameAttr string
	// IDAttr is the stable identity of an entry (objectGUID, entryUUID):
	// a rename or a move keeps the person, their roster and history.
	IDAttr string
	// ChangeAttr orders changes for incremental syncs (uSNChanged,
	// entryCSN, modifyTimestamp): it must change with every write to an
	// entry and support >= filters. Empty: every sync is a full sync.
	ChangeAttr string
	// ExpiresAttr is AD's accountExpires (100 ns ticks since 1601); an
	// account past it is treated as disabled. Empty: not checked.
	ExpiresAttr string
	// PrimaryGroupAttr is AD's primaryGroupID: the RID of the user's
	// primary group ("Domain Users", 513), which AD lists in neither
	// member nor memberOf. The group is the one whose objectSid is the
	// user's domain SID plus that RID. Empty: not resolved.
	PrimaryGroupAttr string

	// RosterGroups names the groups whose members see each other (shared
	// roster); "*" means every group. Empty: nobody has colleagues.
	// Names match case-insensitively.
	RosterGroups []string
	// RosterRules add "members of X see members of Y" (mutually, each
	// under the other group's name) to RosterGroups; X and Y need not be
	// roster groups themselves.
	RosterRules []sharedroster.Rule

	// SyncInterval is the time between syncs: deleted or disabled users
	// are gone from rosters within it. Default 5m.
	SyncInterval time.Duration
	// FullSyncInterval is the time between full syncs; the syncs between
	// them are incremental. Default 1h; 0 or less than SyncInterval makes
	// every sync a full sync.
	FullSyncInterval time.Duration
	// DialTimeout bounds connecting, TLS and the service bind; default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds each LDAP operation (one search page, one
	// bind); default 30s.
	RequestTimeout time.Duration
	// PageSize is the RFC 2696 page size; default 500 (AD's limit is 1000).
	PageSize int
	// PoolSize is the number of idle connections kept per pool (searches,
	// login binds); default 4. At most 4×PoolSize connections per pool are
	// in use at once; more logins wait for one.
	PoolSize int
	// MaxPhotoBytes skips larger photos; default 128 KiB, which still fits
	// a vCard in a 256 KiB stanza after base64.
	MaxPhotoBytes int
	// MaxRemovedFraction refuses a sync that would remove or disable more
	// than this share of the users (at least 10 of them): a broken filter
	// or ACL must not log the whole company out. Default 0.5; 1 disables
	// the guard.
	MaxRemovedFraction float64
}

// Preset names.
const (
	PresetActiveDirectory = "activedirectory"
	PresetOpenLDAP        = "openldap"
)

// Both presets, field by field; README.md documents the same table.
var presets = map[string]Config{
	PresetActiveDirectory: {
		UserFilter:       "(&(objectCategory=person)(objectClass=user))",
		GroupFilter:      "(objectClass=group)",
		DisabledFilter:   "(userAccountControl:1.2.840.113556.1.4.803:=2)", // ACCOUNTDISABLE bit
		UsernameAttr:     "sAMAccountName",
		AliasAttrs:       []string{"userPrincipalName"},
		DisplayNameAttr:  "displayName,cn",
		GroupNameAttr:    "cn",
		MemberAttr:       "member",
		MailAttr:         "mail",
		TitleAttr:        "title",
		PhoneAttr:        "telephoneNumber",
		DepartmentAttr:   "department",
		PhotoAttr:        "thumbnailPhoto",
		GivenNameAttr:    "givenName",
		SurnameAttr:      "sn",
		IDAttr:           "objectGUID",
		ChangeAttr:       "uSNChanged",
		ExpiresAttr:      "accountExpires",
		PrimaryGroupAttr: "primaryGroupID",
	},
	PresetOpenLDAP: {
		UserFilter:      "(objectClass=inetOrgPerson)",
		GroupFilter:     "(|(objectClass=groupOfNames)(objectClass=posixGroup))",
		DisabledFilter:  "(pwdAccountLockedTime=*)", // ppolicy lock
		UsernameAttr:    "uid",
		DisplayNameAttr: "displayName,cn",
		GroupNameAttr:   "cn",
		MemberAttr:      "member",
		MemberUIDAttr:   "memberUid",
		MailAttr:        "mail",
		TitleAttr:       "title",
		PhoneAttr:       "telephoneNumber",
		DepartmentAttr:  "departmentNumber,ou",
		PhotoAttr:       "jpegPhoto",
		GivenNameAttr:   "givenName",
		SurnameAttr:     "sn",
		IDAttr:          "entryUUID",
		// entryCSN rather than modifyTimestamp: both change with every
		// write, but modifyTimestamp counts seconds, so the ">= last
		// seen" filter of an incremental sync would fetch again every
		// entry written in that second (all of a bulk load); a CSN is
		// unique per change.
		ChangeAttr: "entryCSN",
	},
}

// ApplyPreset fills the empty attribute and filter fields with the
// defaults of preset "activedirectory" or "openldap".
func (c *Config) ApplyPreset(name string) error {
	p, ok := presets[name]
	if !ok {
		return fmt.Errorf("ldapsync: unknown preset %q (want %q or %q)", name, PresetActiveDirectory, PresetOpenLDAP)
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&c.UserFilter, p.UserFilter)
	fill(&c.GroupFilter, p.GroupFilter)
	fill(&c.DisabledFilter, p.DisabledFilter)
	fill(&c.UsernameAttr, p.UsernameAttr)
	if c.AliasAttrs == nil {
		c.AliasAttrs = p.AliasAttrs
	}
	fill(&c.DisplayNameAttr, p.DisplayNameAttr)
	fill(&c.GroupNameAttr, p.GroupNameAttr)
	fill(&c.MemberAttr, p.MemberAttr)
	fill(&c.MemberUIDAttr, p.MemberUIDAttr)
	fill(&c.MailAttr, p.MailAttr)
	fill(&c.TitleAttr, p.TitleAttr)
	fill(&c.PhoneAttr, p.PhoneAttr)
	fill(&c.DepartmentAttr, p.DepartmentAttr)
	fill(&c.PhotoAttr, p.PhotoAttr)
	fill(&c.GivenNameAttr, p.GivenNameAttr)
	fill(&c.SurnameAttr, p.SurnameAttr)
	fill(&c.NicknameAttr, p.NicknameAttr)
	fill(&c.IDAttr, p.IDAttr)
	fill(&c.ChangeAttr, p.ChangeAttr)
	fill(&c.ExpiresAttr, p.ExpiresAttr)
	fill(&c.PrimaryGroupAttr, p.PrimaryGroupAttr)
	return nil
}

// settings is a checked Config with defaults applied and attribute lists
// split, as the rest of the package uses it.
type settings struct {
	Config
	urls       []serverURL
	userBase   string
	groupBase  string
	username   string // one attribute
	aliases    []string
	display    []string
	groupName  []string
	mail       []string
	title      []string
	phone      []string
	department []string
	photo      []string
	given      []string
	surname    []string
	nickname   []string
	userAttrs  []string // requested in full user searches
	groupAttrs []string // requested in full group searches
	allGroups  bool     // RosterGroups contains "*"
	roster     map[string]bool
	ruleGroups map[string]bool // groups RosterRules name, case-folded
}

// serverURL is one parsed entry of Config.URLs.
type serverURL struct {
	raw      string
	tls      bool   // ldaps://
	hostport string // host:port with the default port filled in
	tlsConf  *tls.Config
}

// check validates c and returns it with defaults applied.
func (c Config) check() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ldapsync: "+format, args...)) }

	if len(c.URLs) == 0 {
		bad("no directory URL")
	}
	var roots *x509.CertPool
	switch {
	case c.RootCAs != nil:
		roots = c.RootCAs
	case c.CAFile != "":
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			bad("CA file: %v", err)
			break
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			bad("CA file %s: no PEM certificate in it", c.CAFile)
		}
	}
	for _, raw := range c.URLs {
		u, err := parseServerURL(raw)
		if err != nil {
			bad("%v", err)
			continue
		}
		switch {
		case u.tls && c.StartTLS:
			bad("URL %s: StartTLS is for ldap:// URLs; ldaps:// is already TLS", raw)
		case !u.tls && !c.StartTLS && !c.AllowInsecure:
			bad("URL %s: ldap:// without StartTLS sends the service account's and every user's password in clear text; use ldaps://, StartTLS, or AllowInsecure for loopback tests", raw)
		}
		host, _, _ := net.SplitHostPort(u.hostport)
		// Never InsecureSkipVerify: fail closed (RFC 4513 §3.1.3 server
		// identity check against the configured host name).
		u.tlsConf = &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12}
		s.urls = append(s.urls, u)
	}

	if c.BaseDN == "" {
		bad("no base DN")
	}
	for _, dn := range []struct{ name, v string }{{"base DN", c.BaseDN}, {"user base DN", c.UserBaseDN}, {"group base DN", c.GroupBaseDN}, {"bind DN", c.BindDN}} {
		if dn.v != "" {
			if _, err := ldap.ParseDN(dn.v); err != nil {
				bad("%s %q: %v", dn.name, dn.v, err)
			}
		}
	}
	if c.BindDN != "" && c.BindPassword == "" {
		bad("bind DN %q without a password", c.BindDN)
	}
	s.userBase, s.groupBase = or(c.UserBaseDN, c.BaseDN), or(c.GroupBaseDN, c.BaseDN)

	for _, f := range []struct{ name, v string }{{"user filter", c.UserFilter}, {"group filter", c.GroupFilter}, {"disabled filter", c.DisabledFilter}} {
		if f.v == "" {
			if f.name != "disabled filter" {
				bad("no %s (set it or apply a preset)", f.name)
			}
			continue
		}
		if _, err := ldap.CompileFilter(f.v); err != nil {
			bad("%s %q: %v", f.name, f.v, err)
		}
	}

	attr := func(name, v string, required bool) []string {
		if v == "" {
			if required {
				bad("no %s attribute (set it or apply a preset)", name)
			}
			return nil
		}
		list := strings.Split(v, ",")
		for i, a := range list {
			list[i] = strings.TrimSpace(a)
			if !validAttr(list[i]) {
				bad("%s attribute %q is not an attribute name", name, v)
				return nil
			}
		}
		return list
	}
	if u := attr("username", c.UsernameAttr, true); len(u) > 1 {
		bad("username attribute %q: only one attribute allowed", c.UsernameAttr)
	} else if len(u) == 1 {
		s.username = u[0]
	}
	for _, a := range c.AliasAttrs {
		s.aliases = append(s.aliases, attr("alias", a, false)...)
	}
	s.display = attr("display name", c.DisplayNameAttr, false)
	s.groupName = attr("group name", c.GroupNameAttr, true)
	attr("member", c.MemberAttr, false)
	attr("memberUid", c.MemberUIDAttr, false)
	s.mail = attr("mail", c.MailAttr, false)
	s.title = attr("title", c.TitleAttr, false)
	s.phone = attr("phone", c.PhoneAttr, false)
	s.department = attr("department", c.DepartmentAttr, false)
	s.photo = attr("photo", c.PhotoAttr, false)
	s.given = attr("given name", c.GivenNameAttr, false)
	s.surname = attr("surname", c.SurnameAttr, false)
	s.nickname = attr("nickname", c.NicknameAttr, false)
	if a := attr("ID", c.IDAttr, true); len(a) > 1 {
		bad("ID attribute %q: only one attribute allowed", c.IDAttr)
	}
	attr("change", c.ChangeAttr, false)
	attr("expires", c.ExpiresAttr, false)

	s.roster = map[string]bool{}
	s.ruleGroups = sharedroster.RuleGroups(c.RosterRules)
	for _, g := range c.RosterGroups {
		if g == "*" {
			s.allGroups = true
		} else {
			s.roster[strings.ToLower(g)] = true
		}
	}

	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.SyncInterval, 5*time.Minute)
	def(&s.FullSyncInterval, time.Hour)
	def(&s.DialTimeout, 5*time.Second)
	def(&s.RequestTimeout, 30*time.Second)
	if s.PageSize <= 0 {
		s.PageSize = 500
	}
	if s.PoolSize <= 0 {
		s.PoolSize = 4
	}
	if s.MaxPhotoBytes <= 0 {
		s.MaxPhotoBytes = 128 << 10
	}
	if !(s.MaxRemovedFraction > 0) {
		s.MaxRemovedFraction = 0.5
	}

	s.userAttrs = dedupe(append(append(append([]string{s.username, c.IDAttr, c.ChangeAttr, c.ExpiresAttr}, s.aliases...),
		concat(s.display, s.mail, s.title, s.phone, s.department, s.given, s.surname, s.nickname)...), s.photo...))
	s.groupAttrs = dedupe(append([]string{c.IDAttr, c.ChangeAttr, c.MemberAttr, c.MemberUIDAttr}, s.groupName...))
	if c.PrimaryGroupAttr != "" {
		s.userAttrs = dedupe(append(s.userAttrs, c.PrimaryGroupAttr, sidAttr))
		s.groupAttrs = dedupe(append(s.groupAttrs, sidAttr))
	}
	return s, errors.Join(errs...)
}

func parseServerURL(raw string) (serverURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return serverURL{}, fmt.Errorf("URL %q: %v", raw, err)
	}
	var s serverURL
	s.raw = raw
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		s.tls = true
	case "ldap":
	default:
		return s, fmt.Errorf("URL %q: the scheme must be ldaps:// or ldap://", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return s, fmt.Errorf("URL %q: no host", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return s, fmt.Errorf("URL %q: only scheme://host[:port] is allowed (set the base DN separately)", raw)
	}
	port := u.Port()
	if port == "" {
		port = ldap.DefaultLdapPort
		if s.tls {
			port = ldap.DefaultLdapsPort
		}
	}
	s.hostport = net.JoinHostPort(u.Hostname(), port)
	return s, nil
}

// validAttr reports whether a is an attribute description: a name
// (letter, then letters, digits, '-') or a numeric OID, with ;options.
func validAttr(a string) bool {
	name, _, _ := strings.Cut(a, ";")
	if name == "" {
		return false
	}
	if name[0] >= '0' && name[0] <= '9' {
		for i := 0; i < len(name); i++ {
			if c := name[i]; !(c >= '0' && c <= '9' || c == '.') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// dedupe drops empty and repeated (case-insensitively) names, keeping order.
func dedupe(list []string) []string {
	out := list[:0]
	for _, a := range list {
		if a == "" {
			continue
		}
		dup := false
		for _, b := range out {
			dup = dup || strings.EqualFold(a, b)
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}
