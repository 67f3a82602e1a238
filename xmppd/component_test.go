package xmppd

import (
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// TestComponentHearsSessionEnd: a joined room is a directed-presence
// recipient, so it gets unavailable presence when the session ends without
// leaving (RFC 6121 §4.6.3) — otherwise ghosts stay in rooms. A room left
// explicitly gets nothing more.
func TestComponentHearsSessionEnd(t *testing.T) {
	comp := &recordingComponent{got: make(chan *wire.Element, 10)}
	ts := newTestServer(t, func(s *Server) { s.AddComponent("conference.example.com", "Chat rooms", comp) })
	alice := ts.online(t, "alice", "a", 0)
	alice.send(`<presence to='left@conference.example.com/Alice'/>`)
	alice.send(`<presence to='left@conference.example.com/Alice' type='unavailable'/>`)
	alice.send(`<presence to='room@conference.example.com/Alice'/>`)
	alice.silent()
	for i := 0; i < 3; i++ {
		<-comp.got
	}
	alice.nc.Close()
	select {
	case el := <-comp.got:
		if el.Local != "presence" || el.Attr("type") != "unavailable" || el.Attr("from") != "alice@example.com/a" ||
			el.Attr("to") != "room@conference.example.com/Alice" {
			t.Fatalf("component got %s, want unavailable from alice to the room she is in", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the room never heard that alice's session ended")
	}
	select {
	case el := <-comp.got:
		t.Fatalf("unexpected %s (the left room must not hear again)", el)
	case <-time.After(200 * time.Millisecond):
	}
}
