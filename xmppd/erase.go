package xmppd

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// EraseLock keeps the local user bare (user@domain) from binding a new
// session until release is called, so that nothing of theirs is written
// while their data is deleted: call it before EndUserSessions and release
// after the deletion.
func (s *Server) EraseLock(bare string) (release func()) {
	s.init()
	user, ok := s.localUser(bare)
	if !ok {
		return func() {}
	}
	s.router.freeze(user)
	var once sync.Once
	return func() { once.Do(func() { s.router.thaw(user) }) }
}

// UserErased drops what the server caches of a person whose data was just
// erased (MAM preferences, the converted avatar hash), so nothing of it
// outlives the erasure in memory.
func (s *Server) UserErased(bare string) {
	s.init()
	s.ArchivePrefsChanged(bare)
	if user, ok := s.localUser(bare); ok {
		s.avatars.mu.Lock()
		delete(s.avatars.hashes, user)
		s.avatars.mu.Unlock()
	}
}

// EndUserSessions ends every session of the local user bare (user@domain)
// with a not-authorized stream error carrying text, and waits until they
// have left the session registry and finished writing. Waiting matters for
// erasure: a session's end still writes (last activity, unacknowledged
// messages to offline storage), and those writes must land before the data
// is deleted, not after. Sessions parked for XEP-0198 resumption end at
// once (CloseUserSessions), not when their window passes. It returns how
// many sessions it ended, parked ones included.
func (s *Server) EndUserSessions(ctx context.Context, bare, text string) (int, error) {
	s.init()
	user, ok := s.localUser(bare)
	if !ok {
		return 0, nil
	}
	cs := s.router.sessionsOf(user)
	n := s.CloseUserSessions(user, string(errNotAuthorized), text)
	if n == 0 {
		return 0, nil
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !s.userSessionsSettled(user, cs) {
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("xmppd: sessions of %s did not end: %w", bare, ctx.Err())
		case <-t.C:
		}
	}
	return n, nil
}

// userSessionsSettled reports whether user has no session in the registry
// and each of the sessions cs, told to end, has written all it writes at its
// end (smSettled).
func (s *Server) userSessionsSettled(user string, cs []*conn) bool {
	if len(s.router.sessionsOf(user)) > 0 {
		return false
	}
	for _, c := range cs {
		if !c.smSettled() {
			return false
		}
	}
	return true
}
