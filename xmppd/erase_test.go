package xmppd

import (
	"context"
	"testing"
)

func TestEndUserSessions(t *testing.T) {
	ts := newTestServer(t)
	a1 := ts.online(t, "alice", "1", 0)
	a2 := ts.login(t, "alice", "2")
	bob := ts.online(t, "bob", "b", 0)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := ts.EndUserSessions(ctx, "alice@"+testDomain, "your data is being erased")
	if err != nil || n != 2 {
		t.Fatalf("EndUserSessions = %d, %v; want 2, nil", n, err)
	}
	// Gone from the registry on return, not some time later.
	if left := ts.router.sessionsOf("alice"); len(left) != 0 {
		t.Fatalf("%d sessions of alice still registered", len(left))
	}
	a1.expectStreamError("not-authorized")
	a2.expectStreamError("not-authorized")
	if n, err := ts.EndUserSessions(ctx, "carol@"+testDomain, ""); n != 0 || err != nil {
		t.Errorf("offline user: %d, %v", n, err)
	}
	if n, err := ts.EndUserSessions(ctx, "bob@elsewhere.example", ""); n != 0 || err != nil {
		t.Errorf("other domain: %d, %v", n, err)
	}
	bob.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`)
}
