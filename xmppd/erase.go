package xmppd

import (
	"context"
	"fmt"
	"time"
)

// EndUserSessions ends every session of the local user bare (user@domain)
// with a not-authorized stream error carrying text, and waits until they
// have left the session registry. Waiting matters for erasure: a session's
// end still writes (last activity, unacknowledged messages to offline
// storage), and those writes must land before the data is deleted, not
// after. It returns how many sessions it ended.
func (s *Server) EndUserSessions(ctx context.Context, bare, text string) (int, error) {
	s.init()
	user, ok := s.localUser(bare)
	if !ok {
		return 0, nil
	}
	n := s.CloseUserSessions(user, string(errNotAuthorized), text)
	if n == 0 {
		return 0, nil
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for len(s.router.sessionsOf(user)) > 0 {
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("xmppd: sessions of %s did not end: %w", bare, ctx.Err())
		case <-t.C:
		}
	}
	return n, nil
}
