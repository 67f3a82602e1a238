package xmppd

import (
	"context"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// parkWithUnacked logs user in with resumable stream management, makes it
// available to bob, has bob send it body (read by the client, never acked)
// and drops the TCP connection without </stream:stream>. It returns the
// SM-ID and the server side of the now parked session.
func (ts *testServer) parkWithUnacked(t *testing.T, user, resource string, bob *client, body string) (string, *conn) {
	t.Helper()
	c := ts.login(t, user, resource)
	en, _ := c.enableSM(true)
	c.rosterGet("")
	c.presence(0)
	bob.waitFor(user+" available", isPresenceFrom(c.jid))
	bob.send(message(c.jid, body))
	c.waitFor(body, hasBody(body))
	srv := ts.smSession(t, c.jid)
	c.nc.Close()
	waitUntil(t, "the session to park", func() bool { l, _ := srv.testSMLife(); return l == smParked })
	return en.Attr("id"), srv
}

// isFailedNotFound is XEP-0198 §5's <failed><item-not-found/></failed>.
func isFailedNotFound(el *wire.Element) bool {
	return isSM("failed")(el) && el.Child(nsStanzas, "item-not-found") != nil
}

// TestParkedSessionDirectoryGone: a user disabled in the directory whose
// client had just lost its connection (session parked for XEP-0198
// resumption) ends with the sync, not resume_timeout later: the colleague
// sees them unavailable when the sync returns, the unacked message is in
// offline storage exactly once, last activity is written, and a later
// resumption gets <failed><item-not-found/></failed>.
func TestParkedSessionDirectoryGone(t *testing.T) {
	// The window is far longer than the test: nothing here may wait for it.
	ts := newTestServer(t, func(s *Server) { s.ResumeTimeout = time.Hour })
	bob := ts.online(t, "bob", "b", 0)
	id, _ := ts.parkWithUnacked(t, "alice", "a", bob, "unacked")
	bob.drain()

	ts.dir.mu.Lock()
	disabled := ts.dir.users["alice"]
	delete(ts.dir.users, "alice")
	ts.dir.mu.Unlock()
	ts.DirectoryChanged(DirectoryChange{Gone: []string{"alice"}, RosterChanged: []string{"bob"}, Contacts: []string{"alice"}})

	// Delivered before DirectoryChanged returned: the barrier's answer
	// comes after it.
	var seen bool
	for _, el := range bob.drain() {
		if isUnavailableFrom("alice@" + testDomain + "/a")(el) {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("bob did not see alice go unavailable with the sync; received:%s", bob.history())
	}
	if n := len(ts.router.sessionsOf("alice")); n != 0 {
		t.Fatalf("%d sessions of alice still registered after the sync", n)
	}
	exactlyOnce(t, offlineBodies(t, ts, "alice"), []string{"unacked"})
	if at, _, err := ts.Store.LastActivity("alice"); err != nil || at.IsZero() {
		t.Fatalf("last activity of alice: %v, %v; want it written", at, err)
	}

	// Re-enabled later, the client tries to resume the old session.
	ts.dir.mu.Lock()
	ts.dir.users["alice"] = disabled
	ts.dir.mu.Unlock()
	_, res := ts.resumeAs(t, "alice", id, 1)
	if !isFailedNotFound(res) {
		t.Fatalf("resuming the ended session: %s, want <failed><item-not-found/></failed>", res)
	}
	// Ending the session stored the message once; the failed resumption
	// did not store it again.
	exactlyOnce(t, offlineBodies(t, ts, "alice"), []string{"unacked"})
}

// TestParkedSessionCloseUserSessions: CloseUserSessions counts and ends
// parked sessions together with live ones.
func TestParkedSessionCloseUserSessions(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ResumeTimeout = time.Hour })
	bob := ts.online(t, "bob", "b", 0)
	live := ts.online(t, "alice", "live", 0)
	ts.parkWithUnacked(t, "alice", "parked", bob, "p1")
	bob.drain()
	if n := ts.CloseUserSessions("alice", "not-authorized", "account disabled"); n != 2 {
		t.Fatalf("CloseUserSessions = %d, want 2 (one live, one parked)", n)
	}
	live.expectStreamError("not-authorized")
	bob.waitFor("the parked session unavailable", isUnavailableFrom("alice@"+testDomain+"/parked"))
	bob.waitFor("the live session unavailable", isUnavailableFrom("alice@"+testDomain+"/live"))
	waitUntil(t, "alice's sessions to end", func() bool { return len(ts.router.sessionsOf("alice")) == 0 })
	exactlyOnce(t, offlineBodies(t, ts, "alice"), []string{"p1"})
}

// TestParkedSessionEndUserSessions: erasure does not wait for the
// resumption window of a parked session; when EndUserSessions returns,
// the session's writes (unacked message, last activity) have landed.
func TestParkedSessionEndUserSessions(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ResumeTimeout = time.Hour })
	bob := ts.online(t, "bob", "b", 0)
	id, _ := ts.parkWithUnacked(t, "alice", "a", bob, "before-erase")
	release := ts.EraseLock("alice@" + testDomain)
	defer release()
	// Far shorter than the window and than testTimeout: an implementation
	// that waits for the window fails with the context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := ts.EndUserSessions(ctx, "alice@"+testDomain, "your data is being erased")
	if err != nil || n != 1 {
		t.Fatalf("EndUserSessions = %d, %v; want 1, nil", n, err)
	}
	exactlyOnce(t, offlineBodies(t, ts, "alice"), []string{"before-erase"})
	if at, _, err := ts.Store.LastActivity("alice"); err != nil || at.IsZero() {
		t.Fatalf("last activity of alice: %v, %v; want it written before EndUserSessions returns", at, err)
	}
	bob.waitFor("alice unavailable", isUnavailableFrom("alice@"+testDomain+"/a"))
	release()
	_, res := ts.resumeAs(t, "alice", id, 1)
	if !isFailedNotFound(res) {
		t.Fatalf("resuming the erased session: %s, want <failed><item-not-found/></failed>", res)
	}
}

// TestEndUserSessionsLiveSM: a live session with stream management ends
// through its reader; EndUserSessions returns only once its unacknowledged
// message is in offline storage, not merely once it left the registry.
func TestEndUserSessionsLiveSM(t *testing.T) {
	ts := newTestServer(t)
	bob := ts.online(t, "bob", "b", 0)
	alice := ts.login(t, "alice", "a")
	alice.enableSM(false)
	alice.presence(0)
	bob.send(message(alice.jid, "live-unacked"))
	alice.waitFor("live-unacked", hasBody("live-unacked"))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := ts.EndUserSessions(ctx, "alice@"+testDomain, "your data is being erased")
	if err != nil || n != 1 {
		t.Fatalf("EndUserSessions = %d, %v; want 1, nil", n, err)
	}
	exactlyOnce(t, offlineBodies(t, ts, "alice"), []string{"live-unacked"})
	alice.expectStreamError("not-authorized")
}
