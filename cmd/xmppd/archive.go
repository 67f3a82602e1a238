package main

import (
	"bytes"
	"html"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
)

// archiveSettings maps [archive] onto the server's message archive. Which
// archives are kept at all follows the retention policy in force at the
// time it is asked (SIGHUP swaps it and tells the server to ask again).
func archiveSettings(cfg *conf.Config) xmppd.ArchiveSettings {
	a := cfg.Archive
	return xmppd.ArchiveSettings{
		Enabled: a.Enabled,
		Forced:  a.ComplianceMode,
		MaxPage: a.MaxPage,
		Skip:    archiveSkip,
	}
}

// archiveSkip is true where the rules say "none": such an archive is never
// written. For a person's archive that is kept it also records their
// directory groups (archiveGroups): the server asks Skip once per owner
// and again after each directory sync or rule change, never per message,
// which makes it the cheap point to keep the recorded groups current.
func archiveSkip(owner string, room bool, groups []string) bool {
	pol := currentPolicy()
	if pol == nil {
		return false
	}
	skip := !pol.For(retention.Subject{JID: owner, Room: room, Groups: groups}).Archived()
	if !skip && !room {
		if r := archiveGroups.Load(); r != nil {
			r.record(owner)
		}
	}
	return skip
}

// archiveGroups is set by startRetention once the store and the directory
// are in place; nil outside a running server.
var archiveGroups atomic.Pointer[groupRecorder]

// groupRecorder writes a person's directory groups into their archive's
// owner record, so that group rules still apply when the directory no
// longer knows them, whether or not a purge ran while it did.
type groupRecorder struct {
	store  *store.Store
	groups func(owner string) ([]string, bool)
	log    *slog.Logger
}

// record is called on the message path before the owner's first record is
// queued: it costs one read transaction, and a write only when the groups
// changed (the first message ever, or a new membership).
func (r *groupRecorder) record(owner string) {
	g, known := r.groups(owner)
	if !known {
		// Someone the directory no longer knows keeps the groups recorded
		// while it did; nil here would erase them.
		return
	}
	if _, err := r.store.RecordArchiveGroups(map[string][]string{owner: g}, true); err != nil {
		// Only the leaver case suffers; the message goes on.
		r.log.Warn("archive: recording directory groups failed", "owner", owner, "err", err)
	}
}

// roomArchived is muc.Config.Archived: the server's cached answer, so the
// retention rules are asked once per room.
func roomArchived(srv *xmppd.Server) func(room string) bool {
	return func(room string) bool { return srv.Archive.Enabled && srv.RoomArchived(room) }
}

// roomArchiveHook is muc.Config.Archive: a room's groupchat message into the
// room's archive, id = the room's stanza-id, With = the sender's occupant
// JID (XEP-0313 on MUC). stanza is the part after the to attribute,
// starting "' from='room@service/nick'".
func roomArchiveHook(srv *xmppd.Server, st *store.Store, log *slog.Logger) func(room, stanzaID string, at time.Time, stanza []byte) {
	if !srv.Archive.Enabled {
		return nil
	}
	const fromPrefix = "' from='"
	return func(room, stanzaID string, at time.Time, stanza []byte) {
		if !srv.RoomArchived(room) {
			return
		}
		id, err := store.ParseArchiveID(stanzaID)
		if err != nil {
			log.Error("room archive: stanza-id is not an archive id", "room", room, "id", stanzaID, "err", err)
			return
		}
		if !bytes.HasPrefix(stanza, []byte(fromPrefix)) {
			log.Error("room archive: unexpected message shape", "room", room)
			return
		}
		rest := stanza[len(fromPrefix):]
		end := bytes.IndexByte(rest, '\'')
		if end < 0 {
			log.Error("room archive: unexpected message shape", "room", room)
			return
		}
		full := make([]byte, 0, len(stanza)+32)
		full = append(full, "<message xmlns='jabber:client"...)
		full = append(full, stanza...)
		st.Archive(store.ArchiveRecord{
			Owner:  room,
			ID:     id,
			With:   html.UnescapeString(string(rest[:end])),
			Kind:   store.KindGroupchat,
			Stanza: full,
		})
	}
}
