package xmppd

import (
	"strconv"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

const lastGet = `<query xmlns='jabber:iq:last'/>`

// lastOf returns seconds and status of a jabber:iq:last result.
func lastOf(t *testing.T, el *wire.Element) (int, string) {
	t.Helper()
	requireResult(t, "last activity", el)
	q := el.Child(nsLast, "query")
	if q == nil {
		t.Fatalf("no query in %s", el)
	}
	n, err := strconv.Atoi(q.Attr("seconds"))
	if err != nil || n < 0 {
		t.Fatalf("seconds in %s: %v", el, err)
	}
	return n, q.Text()
}

// TestLastActivity covers XEP-0012 for the server and for accounts.
func TestLastActivity(t *testing.T) {
	ts := newTestServer(t)
	bob := ts.online(t, "bob", "b", 0) // bob and alice are colleagues: subscribed both ways
	carol := ts.online(t, "carol", "c", 0)

	t.Run("server uptime", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond)
		if n, status := lastOf(t, bob.iq("get", testDomain, lastGet)); n < 1 || status != "" {
			t.Errorf("uptime %d %q, want >= 1s and no text (§5)", n, status)
		}
		requireError(t, "set", bob.iq("set", testDomain, lastGet), "bad-request")
	})

	t.Run("never logged in", func(t *testing.T) {
		requireError(t, "no record", bob.iq("get", "alice@example.com", lastGet), "item-not-found")
	})

	alice := ts.online(t, "alice", "a", 0)
	t.Run("online", func(t *testing.T) {
		// §3: an available resource means 0; the user may always ask.
		for _, c := range []*client{bob, alice} {
			if n, _ := lastOf(t, c.iq("get", "alice@example.com", lastGet)); n != 0 {
				t.Errorf("%s: %d seconds for an online user", c.name, n)
			}
		}
		if n, _ := lastOf(t, alice.iq("get", "", lastGet)); n != 0 {
			t.Errorf("own: %d", n)
		}
	})

	t.Run("not subscribed", func(t *testing.T) {
		// §3, §8: only who may see the presence may know.
		requireError(t, "carol asks alice", carol.iq("get", "alice@example.com", lastGet), "forbidden")
		requireError(t, "alice asks carol", alice.iq("get", "carol@example.com", lastGet), "forbidden")
		requireError(t, "unknown user", alice.iq("get", "nobody@example.com", lastGet), "service-unavailable")
	})

	t.Run("after logout", func(t *testing.T) {
		a2 := ts.online(t, "alice", "a2", 0)
		// One of two sessions leaving is no logout.
		a2.send(`<presence type='unavailable'><status>ignored</status></presence>`)
		a2.drain()
		if n, _ := lastOf(t, bob.iq("get", "alice@example.com", lastGet)); n != 0 {
			t.Errorf("%d seconds while alice/a is still available", n)
		}
		alice.send(`<presence type='unavailable'><status>Heading home</status></presence>`)
		alice.drain()
		time.Sleep(1100 * time.Millisecond)
		n, status := lastOf(t, bob.iq("get", "alice@example.com", lastGet))
		if n < 1 || n > 10 || status != "Heading home" {
			t.Errorf("last activity %d %q, want about 1 and the status of the unavailable presence", n, status)
		}
		if ts, st, err := ts.Store.LastActivity("alice"); err != nil || ts.IsZero() || st != "Heading home" {
			t.Errorf("stored %v %q %v", ts, st, err)
		}
		// A lost connection records too, without status.
		alice.presence(0)
		alice.nc.Close()
		waitUntil(t, "alice's session ends", func() bool { return len(ts.router.sessionsOf("alice")) == 1 })
		if n, status := lastOf(t, bob.iq("get", "alice@example.com", lastGet)); n > 1 || status != "" {
			t.Errorf("after the connection was lost: %d %q", n, status)
		}
	})
}
