package ldapsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-ldap/ldap/v3"
)

var errNoSuchUser = errors.New("no such user")

// Authenticate checks username's password against the directory, live:
// it looks up the user's DN with the service account, among the entries
// the user filter matches and the disabled filter does not, then binds as
// that DN with the password (RFC 4513 §5.1.3). Nothing is cached, so a
// changed password, a deleted or a disabled account takes effect at the
// next login. username may be an alias (see Resolve).
//
// An unknown, ambiguous, disabled, locked or expired user and a wrong
// password all give ErrBadCredentials, and an unknown user still costs a
// bind (against a DN that does not exist), so timing does not tell which
// names exist. When no directory server answers, the error is an
// *UnavailableError, whose Temporary() reports true.
func (d *Directory) Authenticate(ctx context.Context, username, password string) error {
	// A simple bind with an empty password is an unauthenticated bind,
	// which servers answer with success (RFC 4513 §5.1.2).
	if password == "" || username == "" {
		d.stats.loginsRefused.Add(1)
		return ErrBadCredentials
	}
	name := username
	if owner, ok := d.Resolve(username); ok {
		name = owner
	}
	dn, err := d.findUser(ctx, name)
	switch {
	case errors.Is(err, errNoSuchUser):
		d.decoyBind(ctx, password)
		d.stats.loginsRefused.Add(1)
		d.log.Debug("ldapsync: login refused", "user", username, "reason", err)
		return ErrBadCredentials
	case err != nil:
		return d.loginUnavailable(username, err)
	}
	err = d.binds.do(ctx, func(c *conn) error { return c.l.Bind(dn, password) })
	switch {
	case err == nil:
		d.stats.logins.Add(1)
		return nil
	case answered(err) || ldap.IsErrorWithCode(err, ldap.ErrorEmptyPassword):
		// 49 invalidCredentials above all (AD adds the reason, such as
		// 533 disabled or 775 locked, in the diagnostic message), also
		// 50, 53 (ppolicy) and anything else the server says no with.
		d.stats.loginsRefused.Add(1)
		d.log.Debug("ldapsync: login refused", "user", username, "dn", dn, "reason", err)
		return ErrBadCredentials
	default:
		return d.loginUnavailable(username, err)
	}
}

func (d *Directory) loginUnavailable(username string, err error) error {
	d.stats.loginsUnavailable.Add(1)
	err = unavailable(err)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		// The server answered the lookup with an error (for instance the
		// service account may not search): a configuration problem, and
		// still nothing the user can fix by retyping the password.
		err = &UnavailableError{Err: err}
	}
	// With the directory down every login fails: warn once per 10s.
	level := slog.LevelDebug
	if now, last := time.Now().UnixNano(), d.warnedAt.Load(); now-last > int64(10*time.Second) && d.warnedAt.CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	d.log.Log(context.Background(), level, "ldapsync: login failed: directory unavailable", "user", username, "err", err)
	return fmt.Errorf("ldapsync: authenticate %s: %w", username, err)
}

// findUser returns the DN of the one entry that may log in as name.
func (d *Directory) findUser(ctx context.Context, name string) (string, error) {
	s := d.s
	filter := userLookupFilter(s, name)
	attrs := []string{s.username}
	if s.ExpiresAttr != "" {
		attrs = append(attrs, s.ExpiresAttr)
	}
	var dn string
	err := d.search.do(ctx, func(c *conn) error {
		dn = ""
		req := ldap.NewSearchRequest(s.userBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, int(s.RequestTimeout/time.Second), false, filter, attrs, nil)
		res, err := c.l.Search(req)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return fmt.Errorf("%w: more than one entry for %q", errNoSuchUser, name)
		}
		if err != nil {
			return fmt.Errorf("look up %q: %w", name, err)
		}
		found := 0
		for _, e := range res.Entries {
			a := entryAttrs(e.Attributes)
			// The server matched with the attribute's own rules; insist
			// that the entry's name is the same JID localpart.
			if u, ok := normUsername(a.first([]string{s.username})); !ok || u != name {
				continue
			}
			if exp := adExpiry(a.first([]string{s.ExpiresAttr})); s.ExpiresAttr != "" && exp > 0 && exp <= time.Now().Unix() {
				return fmt.Errorf("%w: account expired", errNoSuchUser)
			}
			found++
			dn = e.DN
		}
		switch found {
		case 0:
			return errNoSuchUser
		case 1:
			return nil
		}
		d.log.Warn("ldapsync: login refused: several directory entries have this username", "user", name)
		return fmt.Errorf("%w: %d entries for %q", errNoSuchUser, found, name)
	})
	return dn, err
}

// decoyBind spends the round trip a real bind would, for a user that does
// not exist. Its result is irrelevant.
func (d *Directory) decoyBind(ctx context.Context, password string) {
	dn := "cn=ownchat-no-such-user," + d.s.userBase
	d.binds.do(ctx, func(c *conn) error { return c.l.Bind(dn, password) })
}

// userLookupFilter selects the user filter's entries whose username is
// name and that are not disabled. name is escaped (RFC 4515 §3), so
// "*)(uid=*" is a name, not a filter.
func userLookupFilter(s *settings, name string) string {
	filter := "(&" + s.UserFilter + "(" + s.username + "=" + ldap.EscapeFilter(name) + ")"
	if s.DisabledFilter != "" {
		filter += "(!" + s.DisabledFilter + ")"
	}
	return filter + ")"
}
