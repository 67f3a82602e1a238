package muc

import "github.com/ownchat/ownchat/xmppd/wire"

// Reserved nicks (XEP-0045 §7.12, §7.2.9). A member's registered nick is
// the one the directory gives them (display name, else username): nobody
// else may take it in that room, and a client can ask for it before
// joining.

// reservedNick returns bare's registered nick, "" without a directory.
func (s *Service) reservedNick(bare string) string {
	if s.cfg.Directory == nil {
		return ""
	}
	n, ok := normNick(s.cfg.Directory.Nick(bare))
	if !ok {
		return ""
	}
	return n
}

// reservedBy returns the bare JID of the member (or admin, owner) who
// reserved nick in r, "" when nobody did. The map is built on first use
// and dropped when affiliations change (setAffiliation). Under r.mu.
func (r *room) reservedBy(nick string) string {
	if r.svc.cfg.Directory == nil {
		return ""
	}
	if r.nicks == nil {
		r.nicks = make(map[string]string, len(r.affs))
		for j, a := range r.affs {
			if a >= Member {
				if n := r.svc.reservedNick(j); n != "" {
					r.nicks[n] = j
				}
			}
		}
	}
	return r.nicks[nick]
}

// roomUserItem answers §7.12 "Discovering Reserved Room Nickname": a
// disco#info query on node x-roomuser-item gets the requester's reserved
// nick as the identity name, or an empty result when none.
func (r *room) roomUserItem(el *wire.Element, from string) {
	q := wire.New(nsDiscoInfo, "query", "node", nodeRoomUser)
	bare := bareOf(from)
	if r.affOf(bare) >= Member {
		if n := r.svc.reservedNick(bare); n != "" {
			q.Add(wire.New("", "identity", "category", "conference", "type", "text", "name", n))
		}
	}
	r.svc.result(el, fixSpace(q))
}

const nodeRoomUser = "x-roomuser-item"
