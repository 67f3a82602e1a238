package main

import (
	"context"
	"log/slog"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/sharedroster"
	"github.com/ownchat/ownchat/staticdir"
	"github.com/ownchat/ownchat/xmppd"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// staticDirectory adapts staticdir to the interface the server consumes;
// the packages do not import each other.
type staticDirectory struct{ d *staticdir.Directory }

func (s staticDirectory) Authenticate(ctx context.Context, username, password string) error {
	return s.d.Authenticate(ctx, username, password)
}

func (s staticDirectory) Person(username string) (xmppd.Person, bool) {
	p, ok := s.d.Lookup(username)
	return xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}, ok
}

func (s staticDirectory) Colleagues(username string) []xmppd.Person {
	cs := s.d.Colleagues(username)
	out := make([]xmppd.Person, len(cs))
	for i, p := range cs {
		out[i] = xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}
	}
	return out
}

// Search serves XEP-0055: the static directory has names and groups only
// (a group matches the "department" field).
func (s staticDirectory) Search(q map[string]string, max int) []xmppd.PersonCard {
	ps := s.d.Search(q, max)
	out := make([]xmppd.PersonCard, len(ps))
	for i, p := range ps {
		var dept string
		if len(p.Groups) > 0 {
			dept = p.Groups[0]
			for _, g := range p.Groups[1:] {
				dept += ", " + g
			}
		}
		out[i] = xmppd.PersonCard{Username: p.Username, DisplayName: p.DisplayName, Department: dept}
	}
	return out
}

// staticVCard returns the vCard fields the configuration owns: N and
// NICKNAME of the users with given_name, surname or nickname, rendered as
// the LDAP directory renders them. FN stays the user's own here (the
// static directory has always let users set it). The directory never
// changes, so the elements are built once. Nil when no user has names:
// then every vCard field is the user's.
func staticVCard(d *staticdir.Directory) func(user string) *wire.Element {
	const ns = "vcard-temp"
	cards := map[string]*wire.Element{}
	for _, p := range d.People() {
		v := &wire.Element{Space: ns, Local: "vCard", Attrs: []wire.Attr{{Name: "xmlns", Value: ns}}}
		n, _ := d.Names(p.Username)
		addNames(v, n.Given, n.Surname, n.Nickname)
		if len(v.Nodes) > 0 {
			cards[p.Username] = v
		}
	}
	if len(cards) == 0 {
		return nil
	}
	return func(user string) *wire.Element { return cards[user] }
}

// rosterRules maps [[directory.roster_rule]] for both backends.
func rosterRules(cfg *conf.Config) []sharedroster.Rule { return rosterRulesOf(cfg.Directory) }

func rosterRulesOf(d conf.Directory) []sharedroster.Rule {
	out := make([]sharedroster.Rule, len(d.RosterRules))
	for i, r := range d.RosterRules {
		out[i] = sharedroster.Rule{Group: r.Group, Sees: r.Sees}
	}
	return out
}

// enableSearch serves the directory search (XEP-0055) at
// directory.<domain> when [directory] search_fields lists any field.
func enableSearch(cfg *conf.Config, srv *xmppd.Server, log *slog.Logger) {
	ds, ok := srv.Directory.(xmppd.DirectorySearcher)
	if !ok || len(cfg.Directory.SearchFields) == 0 {
		return
	}
	srv.EnableSearch(ds, cfg.Directory.SearchFields)
	log.Info("directory search", "service", xmppd.SearchSubdomain+"."+cfg.Domain, "fields", cfg.Directory.SearchFields)
}
