package xmppd

import "sync"

// offlineLocks order, per user, storing a message for later with a
// session's reading of the offline store when it becomes available
// (deliverToBareOnce, deliverOffline). Striped: a few bytes however many
// users there are; two users sharing a stripe only wait for each other's
// offline writes, which bbolt serializes anyway.
type offlineLocks [64]sync.Mutex

// lockOffline takes user's offline lock and returns its release.
func (s *Server) lockOffline(user string) (unlock func()) {
	m := &s.offLocks[userStripe(user, len(s.offLocks))]
	m.Lock()
	return m.Unlock
}

// userStripe picks one of n stripes for user (FNV-1a).
func userStripe(user string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(user); i++ {
		h = (h ^ uint32(user[i])) * 16777619
	}
	return int(h % uint32(n))
}

// bestSession returns the available session of user, other than except,
// with the highest non-negative priority: the one that takes messages to
// the bare JID (RFC 6121 §8.5.2.1.1); nil when there is none.
func (s *Server) bestSession(user string, except *conn) *conn {
	var best *conn
	bestPrio := -1
	for _, r := range s.router.sessionsOf(user) {
		if r == except {
			continue
		}
		r.pmu.Lock()
		ok, prio := r.available, r.priority
		r.pmu.Unlock()
		if ok && prio > bestPrio {
			best, bestPrio = r, prio
		}
	}
	return best
}
