package xmppd

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// csiQuiet is how long nothing must arrive for a held-back client: no
// barrier can prove it, since a ping would release what is held.
const csiQuiet = 150 * time.Millisecond

func statusOf(el *wire.Element) string {
	if s := el.Child(nsClient, "status"); s != nil {
		return s.Text()
	}
	return ""
}

// nothingFor asserts that nothing arrives within d (for an inactive client
// a ping barrier would itself release what is held).
func (c *client) nothingFor(d time.Duration) {
	c.tb.Helper()
	if len(c.pending) > 0 {
		c.tb.Fatalf("%s: unexpected %s", c.name, c.pending[0])
	}
	if k, el, err := c.next(d); err == nil {
		c.tb.Fatalf("%s: unexpected %v %s", c.name, k, el)
	}
}

func csiDump(els []*wire.Element) string {
	var b strings.Builder
	for _, el := range els {
		b.WriteString("\n\t")
		b.WriteString(el.String())
	}
	return b.String()
}

// TestCSIPresenceMerged: 100 presence changes of a contact while the client
// is inactive reach it as one presence, the latest, when it becomes active.
func TestCSIPresenceMerged(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	alice.send(`<inactive xmlns='urn:xmpp:csi:0'/>`)
	alice.drain() // nothing is held yet; the ping also orders <inactive/>
	for i := 0; i < 100; i++ {
		bob.send(fmt.Sprintf(`<presence><status>s%d</status></presence>`, i))
	}
	bob.drain()
	alice.nothingFor(csiQuiet)

	alice.send(`<active xmlns='urn:xmpp:csi:0'/>`)
	var got []string
	for _, el := range alice.drain() {
		if el.Local == "presence" && el.Attr("from") == bob.jid {
			got = append(got, statusOf(el))
		}
	}
	if len(got) != 1 || got[0] != "s99" {
		t.Fatalf("on <active/> alice got bob's presences %v, want exactly [s99]", got)
	}
}

// TestCSIFlush: a message with a body releases what is held, in order and
// merged (newest presence, newest chat state), before itself; so does an
// IQ; subscription requests are not held.
func TestCSIFlush(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	alice.send(`<inactive xmlns='urn:xmpp:csi:0'/>`)
	alice.drain()

	for i := 0; i < 3; i++ {
		bob.send(fmt.Sprintf(`<presence><status>p%d</status></presence>`, i))
	}
	for _, st := range []string{"composing", "paused", "composing", "active"} {
		bob.send(`<message type='chat' to='` + alice.jid + `'><` + st + ` xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	}
	bob.drain()
	alice.nothingFor(csiQuiet)
	bob.send(message(alice.jid, "wake up"))
	if el := alice.stanza(); !isPresenceFrom(bob.jid)(el) || statusOf(el) != "p2" {
		t.Fatalf("first after the flush: %s, want bob's newest presence p2", el)
	}
	if el := alice.stanza(); el.Local != "message" || el.Child(nsChatStates, "active") == nil || len(el.Nodes) != 1 {
		t.Fatalf("second after the flush: %s, want only the newest chat state", el)
	}
	alice.expect("the body", hasBody("wake up"))
	alice.nothingFor(csiQuiet)

	// An IQ result releases too.
	bob.send(`<presence><status>p3</status></presence>`)
	bob.drain()
	alice.nothingFor(csiQuiet)
	got := alice.drain()
	if len(got) != 1 || statusOf(got[0]) != "p3" {
		t.Fatalf("before the ping result alice got %s, want bob's presence p3", csiDump(got))
	}

	// A subscription request is not an update: it goes out at once.
	carol := ts.online(t, "carol", "c", 0)
	carol.send(`<presence type='subscribe' to='alice@example.com'/>`)
	alice.expect("the subscription request", is("presence", "type", "subscribe"))
	alice.send(`<active xmlns='urn:xmpp:csi:0'/>`)
	alice.drain()
}

// TestCSIWithSM: held stanzas are not counted by XEP-0198 until they are
// sent, so the client's count still matches after the flush.
func TestCSIWithSM(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	_, mark := alice.enableSM(false)
	alice.send(`<inactive xmlns='urn:xmpp:csi:0'/>`)
	alice.drain()
	h0 := alice.handledSince(mark)
	alice.ack(h0)
	srv := ts.smSession(t, alice.jid)
	waitUntil(t, "the ack", func() bool { _, n := srv.testSMLife(); return n == 0 })
	for i := 0; i < 20; i++ {
		bob.send(fmt.Sprintf(`<presence><status>s%d</status></presence>`, i))
	}
	bob.drain()
	if _, n := srv.testSMLife(); n != 0 {
		t.Fatalf("%d stanzas counted while held back", n)
	}
	alice.send(`<active xmlns='urn:xmpp:csi:0'/>`)
	alice.drain()
	h := alice.handledSince(mark)
	if _, n := srv.testSMLife(); n != int(h-h0) {
		t.Fatalf("server counts %d unacked, client handled %d", n, h-h0)
	}
	alice.ack(h)
	waitUntil(t, "the ack", func() bool { _, n := srv.testSMLife(); return n == 0 })
}

// recordConn is a net.Conn that keeps what is written.
type recordConn struct {
	discardConnLike
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recordConn) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Count(r.buf.String(), s)
}

type discardConnLike struct{}

func (discardConnLike) Read([]byte) (int, error)         { return 0, io.EOF }
func (discardConnLike) Close() error                     { return nil }
func (discardConnLike) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (discardConnLike) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (discardConnLike) SetDeadline(time.Time) error      { return nil }
func (discardConnLike) SetReadDeadline(time.Time) error  { return nil }
func (discardConnLike) SetWriteDeadline(time.Time) error { return nil }

// boundConn is a bound session on an in-process connection.
func boundConn(tb testing.TB, nc net.Conn) *conn {
	s := &Server{Domain: testDomain, Directory: newFakeDir(), AllowPlaintext: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.init()
	c := newConn(s, nc, "127.0.0.1", false)
	c.user, c.resource = "alice", "a"
	c.bareJID = "alice@" + testDomain
	c.fullJID = c.bareJID + "/a"
	c.toAttr = appendAttr(nil, "to", c.fullJID)
	c.state = stBound
	return c
}

// TestCSIBound: at csiMaxHeld held stanzas everything is released.
func TestCSIBound(t *testing.T) {
	rc := &recordConn{}
	c := boundConn(t, rc)
	handleCSI(c, wire.New(nsCSI, "inactive"))
	for i := 0; i < csiMaxHeld-1; i++ {
		c.send([]byte(fmt.Sprintf(`<presence from='u%d@example.com/r'/>`, i)))
	}
	// Updates of the same sender do not add up.
	for i := 0; i < 3*csiMaxHeld; i++ {
		c.send([]byte(`<presence from='u0@example.com/r'><status>` + fmt.Sprint(i) + `</status></presence>`))
	}
	c.waitFlushed()
	if n := rc.count("<presence"); n != 0 {
		t.Fatalf("%d presences written before the bound", n)
	}
	c.send([]byte(`<presence from='last@example.com/r'/>`))
	c.waitFlushed()
	if n := rc.count("<presence"); n != csiMaxHeld {
		t.Fatalf("%d presences written at the bound, want %d", n, csiMaxHeld)
	}
}

func TestCSIClassify(t *testing.T) {
	cs := &csiState{}
	carbon := func(inner string) string {
		return `<message from='alice@example.com' to='alice@example.com/a' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>` +
			inner + `</forwarded></received></message>`
	}
	state := `<message xmlns='jabber:client' from='bob@example.com/b' to='alice@example.com/x' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`
	for _, tc := range []struct {
		stanza string
		key    string // "" = not held
	}{
		{`<presence from='bob@example.com/b'/>`, "p bob@example.com/b"},
		{`<presence to='alice@example.com' from="bob@example.com/b"><show>away</show></presence>`, "p bob@example.com/b"},
		{`<presence from='bob@example.com/b' type='unavailable'/>`, "p bob@example.com/b"},
		{`<presence from='bob@example.com' type='subscribe'/>`, ""},
		{`<presence from='bob@example.com' type='error'/>`, ""},
		{`<message from='bob@example.com/b' type='chat'><body>hi</body></message>`, ""},
		{`<message from='bob@example.com/b' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>`, "m bob@example.com/b"},
		{`<message from='bob@example.com/b' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/><received xmlns='urn:xmpp:receipts' id='x'/></message>`, ""},
		{`<message from='bob@example.com/b' type='error'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, ""},
		{`<message from='bob@example.com/b'><x xmlns='jabber:x:conference' jid='room@conference.example.com'/></message>`, ""},
		{`<message from='bob@example.com/b'/>`, ""},
		{carbon(state), "c bob@example.com/b alice@example.com/x"},
		{carbon(`<message xmlns='jabber:client' from='bob@example.com/b' type='chat'><body>hi</body></message>`), ""},
		{`<iq from='bob@example.com/b' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`, ""},
	} {
		key, held := cs.classify([][]byte{[]byte(tc.stanza)})
		if held != (tc.key != "") || key != tc.key {
			t.Errorf("%s: key %q held %v, want %q", tc.stanza, key, held, tc.key)
		}
	}
	// The per-recipient to is spliced in between parts.
	key, held := cs.classify([][]byte{[]byte("<presence"), []byte(` to="alice@example.com"`), []byte(` from='bob@example.com/b'/>`)})
	if !held || key != "p bob@example.com/b" {
		t.Errorf("split presence: %q %v", key, held)
	}
}
