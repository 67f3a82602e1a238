package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/ldapsync"
	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// ldapConfig maps [directory] onto ldapsync's options, preset applied.
func ldapConfig(d conf.Directory) (ldapsync.Config, error) {
	c := ldapsync.Config{
		URLs: d.URL, StartTLS: d.StartTLS, AllowInsecure: d.AllowInsecure, CAFile: d.CAFile,
		BindDN: d.BindDN, BindPassword: d.BindPassword,
		BaseDN: d.BaseDN, UserBaseDN: d.UserBaseDN, GroupBaseDN: d.GroupBaseDN,
		UserFilter: d.UserFilter, GroupFilter: d.GroupFilter, DisabledFilter: d.DisabledFilter,
		UsernameAttr: d.UsernameAttr, AliasAttrs: d.AliasAttrs, DisplayNameAttr: d.DisplayNameAttr,
		GroupNameAttr: d.GroupNameAttr, MemberAttr: d.MemberAttr, MemberUIDAttr: d.MemberUIDAttr,
		MailAttr: d.MailAttr, TitleAttr: d.TitleAttr, PhoneAttr: d.PhoneAttr, DepartmentAttr: d.DepartmentAttr,
		PhotoAttr: d.PhotoAttr, GivenNameAttr: d.GivenNameAttr, SurnameAttr: d.SurnameAttr, NicknameAttr: d.NicknameAttr,
		IDAttr: d.IDAttr, ChangeAttr: d.ChangeAttr, ExpiresAttr: d.ExpiresAttr,
		RosterGroups: d.RosterGroups, SyncInterval: d.SyncInterval, FullSyncInterval: d.FullSyncInterval,
		DialTimeout: d.DialTimeout, RequestTimeout: d.RequestTimeout, PageSize: d.PageSize,
		MaxPhotoBytes: d.MaxPhotoBytes, MaxRemovedFraction: d.MaxRemovedFraction,
		RosterRules: rosterRulesOf(d),
	}
	if d.Preset != "" {
		if err := c.ApplyPreset(d.Preset); err != nil {
			return c, err
		}
	}
	return c, nil
}

// ldapDirectory adapts ldapsync to the interfaces the server consumes.
type ldapDirectory struct{ d *ldapsync.Directory }

func (l ldapDirectory) Authenticate(ctx context.Context, username, password string) error {
	return l.d.Authenticate(ctx, username, password)
}

func (l ldapDirectory) Person(username string) (xmppd.Person, bool) {
	p, ok := l.d.Lookup(username)
	return xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups, PhotoHash: p.PhotoHash}, ok
}

func (l ldapDirectory) Colleagues(username string) []xmppd.Person {
	cs := l.d.Colleagues(username)
	out := make([]xmppd.Person, len(cs))
	for i, p := range cs {
		out[i] = xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}
	}
	return out
}

// Search serves XEP-0055 from the directory snapshot.
func (l ldapDirectory) Search(q map[string]string, max int) []xmppd.PersonCard {
	ps := l.d.Search(q, max)
	out := make([]xmppd.PersonCard, len(ps))
	for i, p := range ps {
		out[i] = xmppd.PersonCard{Username: p.Username, DisplayName: p.DisplayName, Mail: p.Mail, Department: p.Department, Title: p.Title}
	}
	return out
}

// Resolve maps a login alias (userPrincipalName, mail) to the username.
func (l ldapDirectory) Resolve(login string) (string, bool) { return l.d.Resolve(login) }

// startLDAP opens the directory (its stored snapshot lets the server serve
// rosters while the directory is down), marks the server ready once a
// snapshot is in place, and keeps syncing until ctx ends; each diff is
// applied to the running sessions.
func startLDAP(ctx context.Context, cfg *conf.Config, st *store.Store, srv *xmppd.Server, log *slog.Logger) (*ldapsync.Directory, error) {
	lc, err := ldapConfig(cfg.Directory)
	if err != nil {
		return nil, err
	}
	d, err := ldapsync.New(lc, st, log.With("component", "ldapsync"))
	if err != nil {
		return nil, err
	}
	srv.Directory = ldapDirectory{d}
	srv.VCardFields = directoryVCard(d, log)
	srv.SetReady(d.Ready())
	if !d.Ready() {
		log.Warn("no directory snapshot yet: logins wait for the first sync (/healthz says 503 until then)")
		go func() {
			for !d.Ready() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			srv.SetReady(true)
		}()
	}
	go d.Run(ctx, func(diff ldapsync.Diff) {
		log.Info("directory sync", "changes", diff.Summary)
		srv.DirectoryChanged(directoryChange(diff))
		recordLeavers(st, cfg.Domain, diff, d, log)
		mucDirectorySynced() // rooms bound to groups follow them
		srv.SetReady(d.Ready())
	})
	srv.HandleAdmin("sync", func(args []string) (string, error) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		diff, err := d.Sync(sctx)
		if err != nil {
			return "", err
		}
		srv.SetReady(d.Ready())
		return "sync done: " + diff.Summary + "\n", nil
	})
	return d, nil
}

// recordLeavers writes, for each person the directory removed or disabled,
// what happens to their data into the audit log: compliance officers must
// be able to show that a leaver's archive followed its rule and was not
// silently lost or kept.
//
// First it records with each archive the groups its rules follow: a
// leaver's from the snapshot before this sync (the live directory no
// longer knows them, and no purge may have run since they were archived),
// and the new groups of people the sync regrouped.
func recordLeavers(st *store.Store, domain string, diff ldapsync.Diff, d *ldapsync.Directory, log *slog.Logger) {
	groups := groupsToRecord(d, diff, domain) // by bare JID, the leavers' as they were
	if len(groups) > 0 {
		if _, err := st.RecordArchiveGroups(groups, false); err != nil {
			log.Error("archive: recording directory groups failed; a leaver's group rule may not apply", "err", err)
		}
	}
	if len(diff.Removed)+len(diff.Disabled) == 0 {
		return
	}
	now := time.Now()
	for _, l := range []struct {
		users  []string
		action string
	}{{diff.Removed, "directory: user removed"}, {diff.Disabled, "directory: user disabled"}} {
		for _, u := range l.users {
			detail := leaverDetail(st, u+"@"+domain, groups)
			if _, err := st.AppendAudit(now, "directory sync", l.action, detail); err != nil {
				log.Error("audit of a leaver", "user", u, "err", err)
			}
		}
	}
}

func leaverDetail(st *store.Store, bare string, groups map[string][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: sessions closed, logins refused", bare)
	if p := currentPolicy(); p != nil {
		d := p.For(retention.Subject{JID: bare, Groups: groups[bare]})
		n := 0
		if page, err := st.QueryArchive(store.ArchiveQuery{Owner: bare, Max: 1, Count: true}); err == nil {
			n = page.Count
		}
		fmt.Fprintf(&b, "; archive of %d messages kept under %s = %s", n, d.Rule, d.Duration)
		if cases, err := st.HeldBy(bare); err == nil && len(cases) > 0 {
			fmt.Fprintf(&b, " and legal hold %s", strings.Join(cases, ", "))
		}
	}
	b.WriteString("; roster, vCard, offline messages and PEP kept until `xmppd ctl user erase`")
	return b.String()
}

func directoryChange(diff ldapsync.Diff) xmppd.DirectoryChange {
	ch := xmppd.DirectoryChange{RosterChanged: diff.RosterChanged, Regrouped: diff.Regrouped, PhotoChanged: diff.PhotoChanged}
	ch.Gone = append(ch.Gone, diff.Removed...)
	ch.Gone = append(ch.Gone, diff.Disabled...)
	ch.Contacts = append(ch.Contacts, diff.Added...)
	ch.Contacts = append(ch.Contacts, diff.Removed...)
	ch.Contacts = append(ch.Contacts, diff.Disabled...)
	ch.Contacts = append(ch.Contacts, diff.Changed...)
	ch.Contacts = append(ch.Contacts, diff.Regrouped...)
	for _, r := range diff.Renamed {
		ch.Renamed = append(ch.Renamed, xmppd.UserRename{From: r.From, To: r.To})
		ch.Gone = append(ch.Gone, r.From)
		ch.Contacts = append(ch.Contacts, r.From, r.To)
	}
	return ch
}

// directoryVCard renders the directory's fields of a person as vcard-temp
// (XEP-0054): they are merged into the user's vCard and cannot be changed
// by the user. Only what the directory has is included.
func directoryVCard(d *ldapsync.Directory, log *slog.Logger) func(user string) *wire.Element {
	const ns = "vcard-temp"
	text := func(local, value string) *wire.Element {
		return (&wire.Element{Space: ns, Local: local}).AddText(value)
	}
	return func(user string) *wire.Element {
		p, ok, err := d.Profile(user)
		if err != nil {
			log.Warn("directory vCard", "user", user, "err", err)
		}
		if !ok {
			return nil
		}
		v := &wire.Element{Space: ns, Local: "vCard", Attrs: []wire.Attr{{Name: "xmlns", Value: ns}}}
		if p.DisplayName != "" {
			v.Add(text("FN", p.DisplayName))
		}
		addNames(v, p.GivenName, p.Surname, p.Nickname)
		if p.Mail != "" {
			v.Add((&wire.Element{Space: ns, Local: "EMAIL"}).Add(&wire.Element{Space: ns, Local: "INTERNET"}, text("USERID", p.Mail)))
		}
		if p.Phone != "" {
			v.Add((&wire.Element{Space: ns, Local: "TEL"}).Add(&wire.Element{Space: ns, Local: "WORK"}, text("NUMBER", p.Phone)))
		}
		if p.Title != "" {
			v.Add(text("TITLE", p.Title))
		}
		if p.Department != "" {
			v.Add((&wire.Element{Space: ns, Local: "ORG"}).Add(text("ORGUNIT", p.Department)))
		}
		if len(p.Photo) > 0 {
			v.Add((&wire.Element{Space: ns, Local: "PHOTO"}).Add(text("TYPE", p.PhotoType), text("BINVAL", base64.StdEncoding.EncodeToString(p.Photo))))
		}
		return v
	}
}

// addNames adds N (XEP-0054: FAMILY, GIVEN in the DTD's order, each only
// when known) and NICKNAME to a directory vCard. Both directory backends
// use it, so that a person's vCard looks the same whichever serves it.
func addNames(v *wire.Element, given, surname, nickname string) {
	const ns = "vcard-temp"
	if given != "" || surname != "" {
		n := &wire.Element{Space: ns, Local: "N"}
		if surname != "" {
			n.Add((&wire.Element{Space: ns, Local: "FAMILY"}).AddText(surname))
		}
		if given != "" {
			n.Add((&wire.Element{Space: ns, Local: "GIVEN"}).AddText(given))
		}
		v.Add(n)
	}
	if nickname != "" {
		v.Add((&wire.Element{Space: ns, Local: "NICKNAME"}).AddText(nickname))
	}
}

// ldapGauges exposes the directory sync in /metrics: sync lag and failures
// are what an operator alerts on.
func ldapGauges(d *ldapsync.Directory) []xmppd.Gauge {
	g := func(name, typ, help string, v func(ldapsync.Stats) float64) xmppd.Gauge {
		return xmppd.Gauge{Name: name, Type: typ, Help: help, Value: func() float64 { return v(d.Stats()) }}
	}
	return []xmppd.Gauge{
		g("xmppd_directory_users", "gauge", "Directory users who may log in.", func(s ldapsync.Stats) float64 { return float64(s.Users) }),
		g("xmppd_directory_disabled_users", "gauge", "Directory users disabled, locked or expired.", func(s ldapsync.Stats) float64 { return float64(s.Disabled) }),
		g("xmppd_directory_groups", "gauge", "Shared-roster groups with members.", func(s ldapsync.Stats) float64 { return float64(s.Groups) }),
		g("xmppd_directory_syncs_total", "counter", "Directory syncs run.", func(s ldapsync.Stats) float64 { return float64(s.Syncs) }),
		g("xmppd_directory_sync_failures_total", "counter", "Directory syncs that failed.", func(s ldapsync.Stats) float64 { return float64(s.SyncFailures) }),
		g("xmppd_directory_last_sync_timestamp_seconds", "gauge", "Unix time of the last successful sync (0: none yet).", func(s ldapsync.Stats) float64 {
			if s.LastSync.IsZero() {
				return 0
			}
			return float64(s.LastSync.Unix())
		}),
		g("xmppd_directory_logins_refused_total", "counter", "Logins the directory refused (bad credentials).", func(s ldapsync.Stats) float64 { return float64(s.LoginsRefused) }),
		g("xmppd_directory_logins_unavailable_total", "counter", "Logins refused because the directory was unreachable.", func(s ldapsync.Stats) float64 { return float64(s.LoginsUnavailable) }),
	}
}
