package muc

import (
	"errors"

	"github.com/ownchat/ownchat/mam"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// Room MAM (XEP-0313 on a MUC room, §6.2 of XEP-0313 "MUC archives"): the
// room's groupchat messages are in the room's archive (written by the
// Config.Archive hook with the room's stanza-id as the archive id); queries
// to the room JID are answered here, from the room JID.

// archived reports whether r keeps an archive (callers hold r.mu).
func (r *room) archived() bool {
	return r.svc.st != nil && r.svc.cfg.Archive != nil &&
		(r.svc.cfg.Archived == nil || r.svc.cfg.Archived(r.jid))
}

// mayReadArchive applies who may query a room's archive: never outcasts;
// in a members-only room members and above; in an open room its occupants
// and anyone affiliated (members may catch up without joining).
func (r *room) mayReadArchive(o *occupant, bare string) bool {
	aff := r.affOf(bare)
	switch {
	case aff == Outcast:
		return false
	case r.cfg.MembersOnly:
		return aff >= Member
	default:
		return o != nil || aff >= Member
	}
}

// mam answers urn:xmpp:mam:2 payloads to the room. It decides under r.mu
// (who may read) and returns the store read, which the caller runs after
// releasing the lock, so that a page of history never delays the room's
// fan-out; nil when there is nothing to read.
func (r *room) mam(el, q *wire.Element, o *occupant, from string) (unlocked func()) {
	s := r.svc
	if !r.archived() {
		s.bounce(el, "cancel", "feature-not-implemented")
		return nil
	}
	if !r.mayReadArchive(o, bareOf(from)) {
		s.bounceText(el, "auth", "forbidden", "only occupants, or members of a members-only room, may read its archive")
		return nil
	}
	get := el.Attr("type") == "get"
	jid := r.jid
	switch {
	case q.Local == "query" && get:
		s.result(el, mam.QueryForm())
	case q.Local == "query":
		req, err := mam.ParseQuery(q, jid, s.cfg.MaxArchivePage)
		if err != nil {
			s.mamError(el, jid, err)
			return nil
		}
		return func() {
			page, err := mam.Page(s.st, &req)
			if err != nil {
				s.mamError(el, jid, err)
				return
			}
			mam.SendPage(from, jid, &req, &page, func(b []byte) { s.r.DeliverFull(from, b) })
			s.result(el, mam.Fin(&req, &page))
		}
	case q.Local == "metadata" && get:
		return func() {
			md, err := mam.ReadMetadata(s.st, jid)
			if err != nil {
				s.mamError(el, jid, err)
				return
			}
			s.result(el, md)
		}
	default:
		// Preferences are the user's; a room's archive follows its
		// configuration and the retention rules.
		s.bounce(el, "cancel", "feature-not-implemented")
	}
	return nil
}

func (s *Service) mamError(el *wire.Element, room string, err error) {
	var e *mam.Error
	if !errors.As(err, &e) {
		s.log.Error("muc: archive query", "room", room, "err", err)
		s.bounce(el, "wait", "internal-server-error")
		return
	}
	if e.Text != "" {
		s.bounceText(el, e.Type, e.Condition, e.Text)
		return
	}
	s.bounce(el, e.Type, e.Condition)
}

const nsMAM = mam.NS
