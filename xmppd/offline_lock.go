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

// hasAvailableSession reports whether user has an available session with
// a non-negative priority: one that takes messages to the bare JID.
func (s *Server) hasAvailableSession(user string) bool {
	for _, r := range s.router.sessionsOf(user) {
		r.pmu.Lock()
		ok := r.available && r.priority >= 0
		r.pmu.Unlock()
		if ok {
			return true
		}
	}
	return false
}
