package main

import (
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/muc"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
)

// setupMUC creates the multi-user chat service from [muc], registers it as
// the component <subdomain>.<domain>, creates the rooms the file declares
// and binds rooms to the directory. It returns nil when [muc] is disabled.
func setupMUC(cfg *conf.Config, srv *xmppd.Server, st *store.Store, log *slog.Logger) (*muc.Service, error) {
	m := &cfg.MUC
	if !m.Enabled {
		return nil, nil
	}
	domain := m.Subdomain + "." + cfg.Domain
	dir := mucDirectoryOf(srv.Directory, cfg.Domain)
	history := m.HistorySize
	if history == 0 {
		history = -1 // muc.Config: 0 means the default, negative none
	}
	defaults := muc.DefaultRoomConfig()
	defaults.MaxUsers = m.MaxOccupantsPerRoom
	svc, err := muc.New(muc.Config{
		Domain:      domain,
		Name:        m.Name,
		HistorySize: history,
		MayCreate:   mayCreate(m, dir),
		Defaults:    &defaults,
		Directory:   dir,
		UserDomain:  cfg.Domain,
		VCard:       srv.VCard, // vCard requests to an occupant JID
		// Bound rooms' bookmarks in XEP-0402 (PEP) and XEP-0048 at once.
		Bookmark: func(user, room, name string, add bool) error {
			return srv.SetRoomBookmark(user, room, name, true, add)
		},
		// XEP-0313 on rooms (archive.go).
		Archive: roomArchiveHook(srv, st, log), Archived: roomArchived(srv), MaxArchivePage: cfg.Archive.MaxPage,
	}, st, srv, log.With("component", domain))
	if err != nil {
		return nil, fmt.Errorf("multi-user chat: %w", err)
	}
	srv.AddComponent(domain, m.Name, svc)
	if err := svc.EnsureRooms(roomTemplates(m)); err != nil {
		// A room that cannot be set up must not keep the others down.
		log.Error("multi-user chat: rooms from the configuration", "err", err)
	}
	mucSynced.Store(&svc)
	return svc, nil
}

// mucSynced is the service whose bound rooms follow each directory sync;
// the LDAP sync goroutine may start before the service exists.
var mucSynced atomic.Pointer[*muc.Service]

// mucDirectorySynced re-applies the directory to the bound rooms; the LDAP
// sync calls it after every sync that changed something.
func mucDirectorySynced() {
	if p := mucSynced.Load(); p != nil {
		if err := (*p).SyncBoundRooms(); err != nil {
			slog.Error("multi-user chat: bound rooms after a directory sync", "err", err)
		}
	}
}

// roomTemplates maps [[muc.room]] and [[muc.auto_room]] to templates owned
// by the [muc] admins.
func roomTemplates(m *conf.MUC) []muc.RoomTemplate {
	ts := make([]muc.RoomTemplate, 0, len(m.Rooms)+len(m.AutoRooms))
	for _, r := range m.Rooms {
		ts = append(ts, muc.RoomTemplate{Name: r.Name, Title: r.Title, Description: r.Description,
			Groups: r.MembersGroups, Persistent: r.Persistent, MembersOnly: r.MembersOnly, Public: r.Public, Owners: m.Admins})
	}
	for _, a := range m.AutoRooms {
		// A department room: found through bookmarks, not listed publicly.
		ts = append(ts, muc.RoomTemplate{Name: a.Name, Title: a.Group, Groups: []string{a.Group},
			Persistent: true, MembersOnly: true, Owners: m.Admins})
	}
	return ts
}

// mayCreate maps create_rooms: everyone (nil: no check), or the admins
// and the members of the listed groups.
func mayCreate(m *conf.MUC, dir *mucDirectory) func(bareJID string) bool {
	everyone, groups := m.CreatePolicy()
	if everyone {
		return nil
	}
	admins := slices.Clone(m.Admins)
	return func(bare string) bool {
		if slices.Contains(admins, bare) {
			return true
		}
		if dir == nil || len(groups) == 0 {
			return false
		}
		p, ok := dir.person(bare)
		if !ok {
			return false
		}
		for _, g := range groups {
			if slices.Contains(p.Groups, g) {
				return true
			}
		}
		return false
	}
}

// mucDirectory adapts the server's directory (static or LDAP) to
// muc.Directory. Groups are the people's shared-roster groups: with LDAP,
// those roster_groups selects.
type mucDirectory struct {
	domain string
	lookup func(username string) (xmppd.Person, bool)
	people func() []xmppd.Person
}

func mucDirectoryOf(d xmppd.Directory, domain string) *mucDirectory {
	switch d := d.(type) {
	case staticDirectory:
		return &mucDirectory{domain: domain, lookup: d.Person, people: func() []xmppd.Person {
			ps := d.d.People()
			out := make([]xmppd.Person, len(ps))
			for i, p := range ps {
				out[i] = xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}
			}
			return out
		}}
	case ldapDirectory:
		return &mucDirectory{domain: domain, lookup: d.Person, people: func() []xmppd.Person {
			ps := d.d.People()
			out := make([]xmppd.Person, len(ps))
			for i, p := range ps {
				out[i] = xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}
			}
			return out
		}}
	}
	return nil
}

func (d *mucDirectory) person(bare string) (xmppd.Person, bool) {
	n := len(bare) - len(d.domain) - 1
	if n <= 0 || bare[n] != '@' || bare[n+1:] != d.domain {
		return xmppd.Person{}, false
	}
	return d.lookup(bare[:n])
}

func (d *mucDirectory) GroupMembers(group string) ([]string, bool) {
	var out []string
	found := false
	for _, p := range d.people() {
		if slices.Contains(p.Groups, group) {
			found = true
			out = append(out, p.Username+"@"+d.domain)
		}
	}
	return out, found
}

func (d *mucDirectory) Groups() []string {
	var out []string
	for _, p := range d.people() {
		out = append(out, p.Groups...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (d *mucDirectory) Nick(bare string) string {
	p, ok := d.person(bare)
	if !ok {
		return ""
	}
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Username
}
