package xmppd

import (
	"sort"
	"sync"
)

// router is the registry of bound sessions: by username (for bare-JID
// routing and presence) and by full JID string (for the fast path where a
// stanza's to matches a session exactly, skipping JID parsing).
type router struct {
	mu    sync.RWMutex
	users map[string][]*conn
	full  map[string]*conn
	// frozen counts, per user, the erasures in progress: no session of
	// theirs may bind meanwhile (see Server.EraseLock).
	frozen map[string]int
}

func (r *router) init() {
	r.users = make(map[string][]*conn)
	r.full = make(map[string]*conn)
	r.frozen = make(map[string]int)
}

// bind registers c; a session with the same full JID is returned as
// replaced (it is unregistered here). ok is false when the account already
// has max sessions or is being erased.
func (r *router) bind(c *conn, max int) (replaced *conn, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen[c.user] > 0 {
		return nil, false
	}
	list := r.users[c.user]
	if old := r.full[c.fullJID]; old != nil {
		replaced = old
		list = removeConn(list, old)
	}
	if len(list) >= max {
		return nil, false
	}
	r.users[c.user] = append(list, c)
	r.full[c.fullJID] = c
	return replaced, true
}

func (r *router) freeze(user string) {
	r.mu.Lock()
	r.frozen[user]++
	r.mu.Unlock()
}

func (r *router) thaw(user string) {
	r.mu.Lock()
	if r.frozen[user]--; r.frozen[user] <= 0 {
		delete(r.frozen, user)
	}
	r.mu.Unlock()
}

func (r *router) isFrozen(user string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.frozen[user] > 0
}

func (r *router) unbind(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full[c.fullJID] == c {
		delete(r.full, c.fullJID)
	}
	list := removeConn(r.users[c.user], c)
	if len(list) == 0 {
		delete(r.users, c.user)
	} else {
		r.users[c.user] = list
	}
}

func removeConn(list []*conn, c *conn) []*conn {
	for i, x := range list {
		if x == c {
			n := make([]*conn, 0, len(list)-1)
			n = append(n, list[:i]...)
			return append(n, list[i+1:]...)
		}
	}
	return list
}

// sessionsOf returns the user's sessions. The slice is never mutated in
// place (bind/unbind copy), so callers may range over it without the lock.
func (r *router) sessionsOf(user string) []*conn {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.users[user]
}

func (r *router) lookupFull(full string) *conn {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.full[full]
}

func (r *router) list() []SessionInfo {
	r.mu.RLock()
	out := make([]SessionInfo, 0, len(r.full))
	for _, c := range r.full {
		c.pmu.Lock()
		out = append(out, SessionInfo{JID: c.fullJID, Remote: c.ip, Secure: c.secure, Since: c.since,
			Available: c.available, Priority: c.priority, Mechanism: c.mech})
		c.pmu.Unlock()
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].JID < out[j].JID })
	return out
}
