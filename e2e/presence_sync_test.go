package e2e

import (
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

// TestLDAPPresenceAfterGroupRemoval: xmppd remembers who shares a group
// with whom for presence routing (xmppd/rostercache.go). When a sync takes
// ivan out of the only group he shares with jsmith, neither one's next
// presence may reach the other. Each check is a barrier, not a wait: the
// sender's presence is followed by a message to the other, which the
// server routes after the presence, so the presence would be queued before
// the message if it were sent at all.
func TestLDAPPresenceAfterGroupRemoval(t *testing.T) {
	requireSlixmpp(t)
	dir := slapdtest.Start(t, slapdtest.Options{})
	ls := startLDAPServer(t, dir)
	// ivan and jsmith share the posixGroup ops, nothing else.
	ivan := ls.online(t, "ivan")[0]
	js := ls.connect(t, "jsmith", "JSmith-secret") // not online's "<uid>-secret"
	js.WaitSession(t)
	js.MustDo(t, map[string]any{"cmd": "roster_get"})
	js.MustDo(t, map[string]any{"cmd": "presence"})
	withStatus := func(from *Slix, status string) func(Event) bool {
		return func(e Event) bool {
			return e.Name() == "presence" && e.Str("from") == from.JID && e.Str("status") == status
		}
	}
	// sendThenBarrier sends from's presence with status, then a message to
	// to, and returns once to has the message.
	sendThenBarrier := func(from, to *Slix, status string) {
		t.Helper()
		from.MustDo(t, map[string]any{"cmd": "presence", "status": status})
		from.MustDo(t, map[string]any{"cmd": "send", "to": to.Opts.JID, "body": "barrier " + status})
		to.Expect(t, Is("message", "from", from.JID, "body", "barrier "+status), eventTimeout)
	}

	// Colleagues: each one's presence reaches the other.
	for _, tc := range []struct{ from, to *Slix }{{js, ivan}, {ivan, js}} {
		sendThenBarrier(tc.from, tc.to, "colleagues")
		tc.to.Expect(t, withStatus(tc.from, "colleagues"), eventTimeout)
	}

	dir.Modify("cn=ops,"+slapdtest.Groups, func(r *ldap.ModifyRequest) { r.Delete("memberUid", []string{"ivan"}) })
	expectPush(t, js, "ivan", removed)
	expectPush(t, ivan, "jsmith", removed)

	for _, tc := range []struct{ from, to *Slix }{{js, ivan}, {ivan, js}} {
		sendThenBarrier(tc.from, tc.to, "strangers")
		tc.to.Never(t, withStatus(tc.from, "strangers"), 0)
	}
}
