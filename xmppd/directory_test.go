package xmppd

import (
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

func avatarHash(el *wire.Element) (string, bool) {
	x := el.Child(nsVCardUpdate, "x")
	if x == nil || x.Child(nsVCardUpdate, "photo") == nil {
		return "", false
	}
	return x.Child(nsVCardUpdate, "photo").Text(), true
}

// TestDirectoryPhotoChanged: a sync that changes alice's photo sends her
// last presence again with the new XEP-0153 hash to her contacts and her
// own resources, keeping what else it carried; a removed photo is
// announced with an empty <photo/>; carol, not her contact, hears nothing.
func TestDirectoryPhotoChanged(t *testing.T) {
	ts := newTestServer(t)
	bob := ts.online(t, "bob", "b", 0)
	carol := ts.online(t, "carol", "c", 0)
	alice := ts.login(t, "alice", "a")
	alice.rosterGet("")
	alice.send(`<presence><show>away</show><status>lunch</status></presence>`)
	bob.waitFor("alice's presence", is("presence", "from", alice.jid, "type", ""))
	alice.waitFor("own presence", is("presence", "from", alice.jid, "type", ""))

	const h1 = "0123456789abcdef0123456789abcdef01234567"
	ts.dir.mu.Lock()
	ts.dir.photos = map[string]string{"alice": h1}
	ts.dir.mu.Unlock()
	ts.DirectoryChanged(DirectoryChange{PhotoChanged: []string{"alice"}})
	for _, c := range []*client{bob, alice} {
		p := c.waitFor("alice's new avatar", is("presence", "from", alice.jid, "type", ""))
		if h, _ := avatarHash(p); h != h1 {
			t.Fatalf("%s got %s, want hash %s", c.name, p, h1)
		}
		if p.Child(nsClient, "status").Text() != "lunch" || p.Child(nsClient, "show").Text() != "away" {
			t.Errorf("the re-sent presence lost show/status: %s", p)
		}
	}
	carol.silent()

	// The re-sent presence is now the session's presence: a new contact
	// gets it with the hash.
	ts.dir.mu.Lock()
	delete(ts.dir.photos, "alice")
	ts.dir.mu.Unlock()
	ts.DirectoryChanged(DirectoryChange{PhotoChanged: []string{"alice"}})
	p := bob.waitFor("alice's avatar removed", is("presence", "from", alice.jid, "type", ""))
	if h, ok := avatarHash(p); !ok || h != "" {
		t.Fatalf("bob got %s, want an empty <photo/>", p)
	}

	// An unavailable user's presence is not invented.
	alice.send(`<presence type='unavailable'/>`)
	bob.waitFor("alice offline", is("presence", "from", alice.jid, "type", "unavailable"))
	ts.DirectoryChanged(DirectoryChange{PhotoChanged: []string{"alice"}})
	bob.silent()
}

// TestDirectoryRenamed: dave becomes dvd in the directory. His session
// ends with <not-authorized/>; what was stored for dave (an offline
// message, alice's roster item) is dvd's.
func TestDirectoryRenamed(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	dave := ts.online(t, "dave", "d", 0)
	dave.send(`<presence type='unavailable'/>`)
	dave.drain()
	// An item in alice's personal roster.
	alice.iq("set", "", `<query xmlns='jabber:iq:roster'><item jid='dave@example.com' name='Dave!'/></query>`)
	alice.send(`<message to='dave@example.com' type='chat' id='m1'><body>kept</body></message>`)
	waitUntil(t, "the message stored offline", func() bool { n, _ := ts.Store.OfflineCount("dave"); return n == 1 })

	ts.dir.mu.Lock()
	ts.dir.users["dvd"] = ts.dir.users["dave"]
	delete(ts.dir.users, "dave")
	ts.dir.mu.Unlock()
	ts.DirectoryChanged(DirectoryChange{Gone: []string{"dave"}, Renamed: []UserRename{{From: "dave", To: "dvd"}},
		Contacts: []string{"dave", "dvd"}})
	dave.expectStreamError("not-authorized")

	if it, ok, err := ts.Store.RosterItem("alice", "dvd@example.com"); err != nil || !ok || it.Name != "Dave!" {
		t.Errorf("alice's item for dvd: %+v %v %v", it, ok, err)
	}
	if _, ok, _ := ts.Store.RosterItem("alice", "dave@example.com"); ok {
		t.Error("alice still has an item for dave")
	}
	dvd := ts.login(t, "dvd", "d")
	dvd.send(`<presence/>`)
	m := dvd.waitFor("the offline message", is("message", "id", "m1"))
	if m.Child(nsClient, "body").Text() != "kept" {
		t.Fatalf("got %s", m)
	}
}
