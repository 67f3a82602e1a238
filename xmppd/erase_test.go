package xmppd

import (
	"context"
	"strings"
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

// TestEraseLock: while an erasure holds the lock, the person cannot bind a
// new session (nothing of theirs may be written during the deletion);
// afterwards they can.
func TestEraseLock(t *testing.T) {
	ts := newTestServer(t)
	release := ts.EraseLock("alice@" + testDomain)
	c := ts.dial(t, "alice/locked")
	c.header()
	pw, _ := ts.dir.password("alice")
	c.send(plainAuth("", "alice", pw))
	c.expectSuccess()
	c.restart()
	c.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>`)
	el := c.expect("bind refused", is("iq", "id", "b1", "type", "error"))
	if e := el.Child(nsClient, "error"); e == nil || !strings.Contains(el.String(), "resource-constraint") || !strings.Contains(el.String(), "being erased") {
		t.Fatalf("bind during erasure: %s; want resource-constraint saying the data is being erased", el)
	}
	if n := len(ts.router.sessionsOf("alice")); n != 0 {
		t.Fatalf("%d sessions of alice bound during the erasure", n)
	}
	ts.login(t, "bob", "b") // others are not affected
	release()
	release() // idempotent
	ts.login(t, "alice", "after")
}
