package conf

import (
	"crypto/x509"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// sharedDirectoryKeys are the [directory] keys of both backends.
var sharedDirectoryKeys = map[string]bool{"backend": true, "user": true, "search_fields": true, "roster_rule": true}

// RosterRule is one [[directory.roster_rule]]: the members of Group see
// the members of each group in Sees, and are seen by them, each under the
// other group's name (ejabberd's "displayed groups", made mutual so that
// presence flows both ways). Neither needs to be in roster_groups.
type RosterRule struct {
	Group string   `toml:"group"`
	Sees  []string `toml:"sees"`
}

// SearchFieldNames are the fields [directory] search_fields may list.
var SearchFieldNames = []string{"name", "email", "department", "title"}

// validateDirectoryShared checks the keys both backends use.
func validateDirectoryShared(p *problems, d *Directory) {
	for i, f := range d.SearchFields {
		ok := false
		for _, n := range SearchFieldNames {
			ok = ok || f == n
		}
		if !ok {
			p.addf(indexKey("directory.search_fields", i), "must be one of %q (got %q)", SearchFieldNames, f)
		}
	}
	for i, r := range d.RosterRules {
		k := indexKey("directory.roster_rule", i)
		if strings.TrimSpace(r.Group) == "" {
			p.addf(k, "group is required: the group whose members see the groups in sees")
		}
		if len(r.Sees) == 0 {
			p.addf(k, "sees is required: the groups whose members the members of %q see", r.Group)
		}
		for _, g := range r.Sees {
			if strings.TrimSpace(g) == "" {
				p.addf(k, "sees holds an empty group name")
			}
		}
	}
}

// ldapKeys are the [directory] keys that only backend = "ldap" uses.
func ldapKeys() []string {
	var keys []string
	for k := range tomlFields(reflect.TypeFor[Directory]()) {
		if !sharedDirectoryKeys[k] {
			keys = append(keys, k)
		}
	}
	return keys
}

// validateLDAP checks the [directory] keys of backend = "ldap" and reads
// the bind password file. Attribute and filter keys may stay empty: the
// preset fills them.
func validateLDAP(p *problems, d *Directory, base string) {
	key := func(k string) string { return "directory." + k }
	set := func(k string) bool { _, ok := p.lines[key(k)]; return ok }

	switch d.Preset {
	case "activedirectory", "openldap":
	case "":
		p.addf(key("preset"), "required with backend = \"ldap\": \"activedirectory\" or \"openldap\"")
	default:
		p.addf(key("preset"), "must be \"activedirectory\" or \"openldap\" (got %q)", d.Preset)
	}

	if len(d.URL) == 0 {
		p.addf(key("url"), "required with backend = \"ldap\", such as \"ldaps://dc1.corp.example\" or a list of servers")
	}
	for i, raw := range d.URL {
		k := key("url")
		if len(d.URL) > 1 {
			k = indexKey(k, i)
		}
		scheme, _, err := checkLDAPURL(raw)
		switch {
		case err != "":
			p.addf(k, "%s (got %q)", err, raw)
		case scheme == "ldaps" && d.StartTLS:
			p.addf(key("start_tls"), "is for ldap:// URLs; %s is ldaps://, already TLS", raw)
		case scheme == "ldap" && !d.StartTLS && !d.AllowInsecure:
			// Fail closed: every login sends a user's password in a bind.
			p.addf(k, "%s would send the service account's and every user's password in clear text: use ldaps://, set start_tls = true, or (loopback tests only) allow_insecure = true", raw)
		}
	}

	if d.CAFile != "" {
		d.CAFile = resolve(base, d.CAFile)
		if pem, err := os.ReadFile(d.CAFile); err != nil {
			p.addf(key("ca_file"), "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			p.addf(key("ca_file"), "%s holds no PEM certificate", d.CAFile)
		}
	}

	switch {
	case set("bind_password") && set("bind_password_file"):
		p.addf(key("bind_password"), "set either bind_password or bind_password_file, not both")
	case d.BindPasswordFile != "":
		d.BindPasswordFile = resolve(base, d.BindPasswordFile)
		b, err := os.ReadFile(d.BindPasswordFile)
		if err != nil {
			p.addf(key("bind_password_file"), "%v", err)
			break
		}
		d.BindPassword = strings.TrimRight(string(b), "\r\n")
		if d.BindPassword == "" {
			p.addf(key("bind_password_file"), "%s is empty", d.BindPasswordFile)
		}
	}
	switch {
	case d.BindDN == "" && (set("bind_password") || set("bind_password_file")):
		p.addf(key("bind_dn"), "required with a bind password: the DN of the service account")
	case d.BindDN != "" && d.BindPassword == "" && !set("bind_password_file"):
		p.addf(key("bind_dn"), "needs bind_password_file (or bind_password); an empty password would be an anonymous bind")
	}

	if d.BaseDN == "" {
		p.addf(key("base_dn"), "required with backend = \"ldap\", such as \"DC=corp,DC=example\"")
	}
	for _, k := range []string{"bind_dn", "base_dn", "user_base_dn", "group_base_dn"} {
		v := reflect.ValueOf(d).Elem().Field(tomlFields(reflect.TypeFor[Directory]())[k]).String()
		if v == "" {
			continue
		}
		if _, err := ldap.ParseDN(v); err != nil {
			p.addf(key(k), "%q is not a DN: %v", v, err)
		}
	}
	for k, v := range map[string]string{"user_filter": d.UserFilter, "group_filter": d.GroupFilter, "disabled_filter": d.DisabledFilter} {
		if v == "" {
			continue
		}
		if _, err := ldap.CompileFilter(v); err != nil {
			p.addf(key(k), "%q is not an LDAP filter (RFC 4515): %v", v, err)
		}
	}

	attrs := map[string]struct {
		v    string
		list bool // comma-separated fallbacks allowed
	}{
		"username_attr": {d.UsernameAttr, false}, "display_name_attr": {d.DisplayNameAttr, true},
		"group_name_attr": {d.GroupNameAttr, true}, "member_attr": {d.MemberAttr, false},
		"member_uid_attr": {d.MemberUIDAttr, false}, "mail_attr": {d.MailAttr, true},
		"title_attr": {d.TitleAttr, true}, "phone_attr": {d.PhoneAttr, true},
		"department_attr": {d.DepartmentAttr, true}, "photo_attr": {d.PhotoAttr, true},
		"given_name_attr": {d.GivenNameAttr, true}, "surname_attr": {d.SurnameAttr, true},
		"nickname_attr": {d.NicknameAttr, true}, "id_attr": {d.IDAttr, false},
		"change_attr": {d.ChangeAttr, false}, "expires_attr": {d.ExpiresAttr, false},
	}
	for k, a := range attrs {
		if a.v == "" {
			continue
		}
		if msg := checkAttrs(a.v, a.list); msg != "" {
			p.addf(key(k), "%s (got %q)", msg, a.v)
		}
	}
	for i, a := range d.AliasAttrs {
		if msg := checkAttrs(a, false); msg != "" {
			p.addf(indexKey(key("alias_attrs"), i), "%s (got %q)", msg, a)
		}
	}

	if !set("roster_groups") {
		d.RosterGroups = []string{"*"}
	}
	groups := d.RosterGroups[:0:0]
	for i, g := range d.RosterGroups {
		if g = strings.TrimSpace(g); g == "" {
			p.addf(indexKey(key("roster_groups"), i), "empty group name")
			continue
		}
		groups = append(groups, g)
	}
	d.RosterGroups = groups

	atLeast := func(k string, v, lo time.Duration) {
		if v < lo {
			p.addf(key(k), "must be at least %v (got %v)", lo, v)
		}
	}
	atLeast("sync_interval", d.SyncInterval, time.Second)
	atLeast("full_sync_interval", d.FullSyncInterval, d.SyncInterval)
	atLeast("dial_timeout", d.DialTimeout, time.Millisecond)
	atLeast("request_timeout", d.RequestTimeout, time.Millisecond)
	if d.PageSize < 1 || d.PageSize > 100000 {
		p.addf(key("page_size"), "must be between 1 and 100000 (got %d)", d.PageSize)
	}
	if d.MaxPhotoBytes < 1024 {
		p.addf(key("max_photo_bytes"), "must be at least 1024 (got %d)", d.MaxPhotoBytes)
	}
	if !(d.MaxRemovedFraction > 0 && d.MaxRemovedFraction <= 1) {
		p.addf(key("max_removed_fraction"), "must be greater than 0 and at most 1 (got %v)", d.MaxRemovedFraction)
	}
}

// checkLDAPURL returns the scheme and host of an ldap:// or ldaps:// URL,
// or a problem.
func checkLDAPURL(raw string) (scheme, host, problem string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "not a URL"
	}
	scheme = strings.ToLower(u.Scheme)
	switch {
	case scheme != "ldap" && scheme != "ldaps":
		return "", "", "must start with ldaps:// or ldap://"
	case u.Hostname() == "":
		return "", "", "has no host"
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil || u.Fragment != "":
		return "", "", "must be scheme://host[:port] only; the DNs go in base_dn"
	}
	return scheme, u.Hostname(), ""
}

// checkAttrs validates attribute names (RFC 4512 §2.5: a name or a
// numeric OID, with ;options), several separated by commas when list.
func checkAttrs(v string, list bool) string {
	names := []string{v}
	if list {
		names = strings.Split(v, ",")
	} else if strings.Contains(v, ",") {
		return "must be one attribute name"
	}
	for _, n := range names {
		n = strings.TrimSpace(n)
		name, _, _ := strings.Cut(n, ";")
		ok := name != ""
		for i := 0; i < len(name) && ok; i++ {
			c := name[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
				i > 0 && (c >= '0' && c <= '9' || c == '-') ||
				name[0] >= '0' && name[0] <= '9' && (c >= '0' && c <= '9' || c == '.')
		}
		if !ok {
			return "is not an attribute name"
		}
	}
	return ""
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
