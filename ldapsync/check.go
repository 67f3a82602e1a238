package ldapsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// CheckReport is what `xmppd check` prints about the directory: whether
// each server can be reached, what the filters find, sample users as
// ownChat maps them, and every problem in plain words.
type CheckReport struct {
	Servers        []ServerCheck
	Server         string   // the server the counts come from
	BoundAs        string   // the service account, or "anonymous"
	NamingContexts []string // the server's root DSE: the base DNs it holds
	Paging         bool     // the server advertises RFC 2696 paged results

	Users    int // entries the user filter matches
	Inactive int // of which cannot log in (disabled, invalid or duplicate name)
	Disabled int // of which disabled, locked or expired
	Groups   int // entries the group filter matches
	// RosterGroups is the number of shared-roster groups with members.
	RosterGroups int
	Samples      []Sample // up to 3 users who may log in
	Problems     []string // misconfiguration, in plain words
	// Warnings are entries that cannot log in (invalid or duplicate
	// usernames, no username): data to fix in the directory, not a
	// configuration that fails.
	Warnings []string
}

// ServerCheck is the connection test of one URL.
type ServerCheck struct {
	URL     string
	OK      bool
	Problem string // why not, in plain words
}

// Sample is one user as ownChat sees them, with the attributes used.
type Sample struct {
	DN     string
	Person Person
	Photo  string // "jpegPhoto: 5123 bytes image/jpeg", or ""
}

// Check connects to every server, then reads the directory once with the
// configured filters and mappings, without changing the snapshot or the
// store. The error is non-nil when no server could be used; the report
// then explains why in Servers.
func (d *Directory) Check(ctx context.Context) (CheckReport, error) {
	s := d.s
	var r CheckReport
	var c *conn
	for i := range s.urls {
		u := &s.urls[i]
		cc, err := dialServer(ctx, s, u, s.BindDN, s.BindPassword)
		sc := ServerCheck{URL: u.raw, OK: err == nil}
		if err != nil {
			sc.Problem = explain(err, u)
		} else if c == nil {
			c = cc
		} else {
			cc.l.Close()
		}
		r.Servers = append(r.Servers, sc)
	}
	if c == nil {
		var why []string
		for _, sc := range r.Servers {
			why = append(why, sc.URL+": "+sc.Problem)
		}
		return r, fmt.Errorf("ldapsync: no directory server could be used:\n  %s", strings.Join(why, "\n  "))
	}
	defer c.l.Close()
	r.Server = c.url.raw
	r.BoundAs = or(s.BindDN, "anonymous")
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }

	err := c.run(ctx, func(c *conn) error {
		if root, err := c.baseAttrs("", []string{"namingContexts", "supportedControl"}); err == nil {
			r.NamingContexts = root.values("namingContexts")
			for _, oid := range root.values("supportedControl") {
				r.Paging = r.Paging || oid == ldap.ControlTypePaging
			}
		}
		if !r.Paging {
			problem("the server does not advertise paged results (RFC 2696): large directories may be cut at its size limit, and then the sync fails")
		}
		missing := false
		for _, b := range []struct{ key, dn string }{{"base_dn", s.BaseDN}, {"user_base_dn", s.UserBaseDN}, {"group_base_dn", s.GroupBaseDN}} {
			if b.dn == "" {
				continue
			}
			_, err := c.baseAttrs(b.dn, []string{"1.1"})
			switch {
			case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
				problem("%s %q does not exist on %s; it holds: %s", b.key, b.dn, r.Server, strings.Join(r.NamingContexts, "; "))
				missing = true
			case err != nil:
				problem("%s %q cannot be read: %v", b.key, b.dn, err)
			}
		}
		if missing { // every search below would fail the same way
			return nil
		}
		return d.checkEntries(c, &r, problem)
	})
	if err != nil {
		problem("reading the directory failed: %v", err)
	}
	return r, nil
}

func (d *Directory) checkEntries(c *conn, r *CheckReport, problem func(string, ...any)) error {
	warning := func(format string, args ...any) { r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...)) }
	s := d.s
	var users []userRec
	noName, noID, noChange := 0, 0, 0
	err := c.pagedSearch(s.userBase, s.UserFilter, s.userAttrs, s.PageSize, func(e *ldap.Entry) error {
		u := d.userFromEntry(e, nil)
		if u.raw == "" {
			noName++
		}
		if strings.HasPrefix(u.id, "dn:") {
			noID++
		}
		if s.ChangeAttr != "" && u.change == "" {
			noChange++
		}
		if len(r.Samples) < 3 && u.username != "" {
			r.Samples = append(r.Samples, sampleOf(s, e, u))
		}
		users = append(users, u)
		return nil
	})
	if err != nil {
		return err
	}
	disabled, err := d.disabledIDs(c)
	if err != nil {
		problem("disabled_filter %q fails: %v", s.DisabledFilter, err)
	}
	for i := range users {
		users[i].disabled = disabled[users[i].id]
	}
	var groups []groupRec
	err = c.pagedSearch(s.groupBase, s.GroupFilter, s.groupAttrs, s.PageSize, func(e *ldap.Entry) error {
		g, err := d.groupFromEntry(c, e)
		groups = append(groups, g)
		return err
	})
	if err != nil {
		return err
	}
	sn := build(s, users, groups, snapMeta{}, time.Now())
	r.Users, r.Inactive, r.Disabled, r.Groups, r.RosterGroups = len(users), len(sn.inactive), sn.disabled, len(groups), len(sn.groupNames)
	// The samples may have been disabled or duplicates: keep the good ones.
	kept := r.Samples[:0]
	for _, smp := range r.Samples {
		if p := sn.lookup(smp.Person.Username); p != nil {
			smp.Person.Groups = p.Groups
			kept = append(kept, smp)
		}
	}
	r.Samples = kept

	switch {
	case len(users) == 0:
		problem("user_filter %q matches nothing under %q: check the filter, the base DN, and that %s may read the users", s.UserFilter, s.userBase, r.BoundAs)
	case noName == len(users):
		problem("none of the %d users has the username attribute %q: set username_attr to the attribute that holds the login name", len(users), s.username)
	case noName > 0:
		warning("%d of %d users have no %q attribute and cannot log in", noName, len(users), s.username)
	}
	var bad []string
	for i := range users {
		if why := sn.inactive[users[i].id]; (why == whyBadName || why == whyDuplicate) && users[i].raw != "" {
			bad = append(bad, fmt.Sprintf("%q (%s)", users[i].raw, why))
		}
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 5 {
			bad, more = bad[:5], fmt.Sprintf(" and %d more", len(bad)-5)
		}
		warning("%d user(s) cannot log in: %s%s", len(bad), strings.Join(bad, ", "), more)
	}
	if len(users) > 0 && noID == len(users) {
		problem("no user has the ID attribute %q (hidden by an ACL?): renames will look like a delete and an add", s.IDAttr)
	}
	if len(users) > 0 && noChange == len(users) {
		problem("no user has the change attribute %q: every sync will be a full sync", s.ChangeAttr)
	}
	if len(groups) == 0 {
		problem("group_filter %q matches nothing under %q: nobody will have colleagues", s.GroupFilter, s.groupBase)
	}
	have := map[string]bool{}
	for _, g := range groups {
		have[strings.ToLower(g.name)] = true
	}
	for _, name := range s.RosterGroups {
		if name != "*" && !have[strings.ToLower(name)] {
			problem("roster_groups names %q, but the group filter finds no group of that name", name)
		}
	}
	return nil
}

func sampleOf(s *settings, e *ldap.Entry, u userRec) Sample {
	smp := Sample{DN: e.DN, Person: Person{Username: u.username, DisplayName: u.display, Mail: u.mail,
		Title: u.title, Phone: u.phone, Department: u.dept, GivenName: u.given, Surname: u.surname, Nickname: or(u.nick, u.given)}}
	a := entryAttrs(e.Attributes)
	for _, name := range s.photo {
		if v := a.raw(name); len(v) > 0 && len(v[0]) > 0 {
			typ := imageType(v[0])
			if typ == "" {
				typ = "not a JPEG/PNG/GIF/WebP image: ignored"
			} else if len(v[0]) > s.MaxPhotoBytes {
				typ += fmt.Sprintf(", larger than %d bytes: ignored", s.MaxPhotoBytes)
			}
			smp.Photo = fmt.Sprintf("%s: %d bytes %s", name, len(v[0]), typ)
			break
		}
	}
	return smp
}

// explain turns a connection error into a sentence an administrator can
// act on.
func explain(err error, u *serverURL) string {
	var (
		te   *tlsError
		sbe  *serviceBindError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
		rhe  tls.RecordHeaderError
		dnse *net.DNSError
		ne   net.Error
	)
	switch {
	case errors.As(err, &sbe):
		return fmt.Sprintf("the directory refused the service account: bind_dn %q or its password is wrong, or the account is locked or disabled", sbe.dn)
	case errors.As(err, &ua):
		return "TLS: the server's certificate is not signed by a CA ownChat trusts: set ca_file to the CA that issued it (the connection was closed; ownChat never falls back to plaintext)"
	case errors.As(err, &he):
		return fmt.Sprintf("TLS: the server's certificate is not valid for %q: %v; put a name the certificate holds in the URL", he.Host, he)
	case errors.As(err, &ci):
		return fmt.Sprintf("TLS: the server's certificate is not valid: %v", ci)
	case errors.As(err, &rhe), errors.As(err, &te) && !te.startTLS && errors.Is(err, io.EOF):
		return "TLS: the server did not answer with TLS (or closed the connection at the handshake): this looks like a plain LDAP port; use ldaps:// on the LDAPS port (636), or ldap:// with start_tls = true"
	case errors.As(err, &te) && te.startTLS:
		return fmt.Sprintf("StartTLS failed (a server without a TLS certificate refuses it): %v; the connection was closed, nothing was sent in clear", te.err)
	case errors.As(err, &te):
		return fmt.Sprintf("TLS handshake failed: %v (the connection was closed)", te.err)
	case errors.As(err, &dnse):
		return fmt.Sprintf("the host name %q does not resolve: %v", dnse.Name, dnse.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens on %s (connection refused): wrong host or port, or the directory is down", u.hostport)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s within the dial timeout: a firewall, a wrong host, or a server that is down", u.hostport)
	}
	return err.Error()
}

// String renders the report for a terminal, problems last.
func (r CheckReport) String() string {
	var b strings.Builder
	for _, sc := range r.Servers {
		if sc.OK {
			fmt.Fprintf(&b, "directory %s: ok\n", sc.URL)
		} else {
			fmt.Fprintf(&b, "directory %s: %s\n", sc.URL, sc.Problem)
		}
	}
	if r.Server != "" {
		fmt.Fprintf(&b, "read from %s as %s\n", r.Server, r.BoundAs)
		fmt.Fprintf(&b, "users: %d (%d cannot log in, of which %d disabled); groups: %d (%d shared-roster groups with members)\n",
			r.Users, r.Inactive, r.Disabled, r.Groups, r.RosterGroups)
	}
	for _, smp := range r.Samples {
		p := smp.Person
		fmt.Fprintf(&b, "sample %s\n  username %q, display name %q, given name %q, surname %q, nickname %q, mail %q, title %q, phone %q, department %q, groups %q\n",
			smp.DN, p.Username, p.DisplayName, p.GivenName, p.Surname, p.Nickname, p.Mail, p.Title, p.Phone, p.Department, p.Groups)
		if smp.Photo != "" {
			fmt.Fprintf(&b, "  photo %s\n", smp.Photo)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}
