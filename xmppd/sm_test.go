package xmppd

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// ---- XEP-0198 helpers ------------------------------------------------------

func isSM(local string) pred {
	return func(el *wire.Element) bool { return el.Space == nsSM && el.Local == local }
}

// isStanzaString reports whether a serialized element from client.seen is
// a stanza (counted by XEP-0198) rather than a nonza.
func isStanzaString(s string) bool {
	return strings.HasPrefix(s, "<message ") || strings.HasPrefix(s, "<presence ") || strings.HasPrefix(s, "<iq ")
}

// handledSince counts the stanzas the client has parsed since seen[mark]:
// its XEP-0198 h when mark was taken right after <enabled/>.
func (c *client) handledSince(mark int) uint32 {
	n := uint32(0)
	for _, s := range c.seen[mark:] {
		if isStanzaString(s) {
			n++
		}
	}
	return n
}

// enableSM sends <enable/> and returns <enabled/> and the mark for
// handledSince.
func (c *client) enableSM(resume bool) (*wire.Element, int) {
	c.tb.Helper()
	if resume {
		c.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	} else {
		c.send(`<enable xmlns='urn:xmpp:sm:3'/>`)
	}
	el := c.waitFor("<enabled/>", isSM("enabled"))
	return el, len(c.seen)
}

// ack sends <a h='…'/>.
func (c *client) ack(h uint32) {
	c.send(fmt.Sprintf(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, h))
}

// smSession returns the server side of a bound full JID.
func (ts *testServer) smSession(tb testing.TB, jid string) *conn {
	tb.Helper()
	c := ts.router.lookupFull(jid)
	if c == nil {
		tb.Fatalf("no session %s", jid)
	}
	return c
}

// smLife reads a session's XEP-0198 state.
func (c *conn) testSMLife() (life smLife, unacked int) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sm == nil {
		return 0, -1
	}
	return c.sm.life, c.sm.n
}

// resumeAs authenticates a new connection as user and sends <resume/>; it
// returns the client and <resumed/> or <failed/>.
func (ts *testServer) resumeAs(tb testing.TB, user, previd string, h uint32) (*client, *wire.Element) {
	tb.Helper()
	c := ts.dial(tb, user+"/resume")
	c.header()
	pw, _ := ts.dir.password(user)
	c.send(plainAuth("", user, pw))
	c.expectSuccess()
	feats := c.restart()
	if feats.Child(nsSM, "sm") == nil {
		tb.Fatalf("no <sm/> in the features after auth: %s", feats)
	}
	c.send(fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>`, previd, h))
	el := c.expect("<resumed/> or <failed/>", func(el *wire.Element) bool {
		return el.Space == nsSM && (el.Local == "resumed" || el.Local == "failed")
	})
	return c, el
}

func message(to, body string) string {
	return `<message type='chat' to='` + to + `'><body>` + body + `</body></message>`
}

// bodies returns the bodies of the messages among the serialized elements
// in seen, in order.
func seenBodies(tb testing.TB, seen []string) []string {
	tb.Helper()
	var out []string
	for _, s := range seen {
		if !strings.HasPrefix(s, "<message ") {
			continue
		}
		el, err := wire.ParseElement([]byte(s))
		if err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
		if b := bodyText(el); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// exactlyOnce checks that got holds each of want exactly once.
func exactlyOnce(tb testing.TB, got, want []string) {
	tb.Helper()
	count := map[string]int{}
	for _, b := range got {
		count[b]++
	}
	for _, w := range want {
		if count[w] != 1 {
			tb.Errorf("%q received %d times, want exactly once (all: %v)", w, count[w], got)
		}
		delete(count, w)
	}
	for b, n := range count {
		tb.Errorf("unexpected %q received %d times", b, n)
	}
}

func offlineBodies(tb testing.TB, ts *testServer, user string) []string {
	tb.Helper()
	msgs, err := ts.Store.Offline(user)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		el, err := wire.ParseElement(m.Stanza)
		if err != nil {
			tb.Fatalf("stored %s: %v", m.Stanza, err)
		}
		out = append(out, bodyText(el))
	}
	return out
}

func bodiesRange(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// ---- tests -----------------------------------------------------------------

// TestSMFeatureAndEnable: <sm/> is offered after authentication only;
// <enable/> needs a bound resource (§3); a second <enable/> is a stream error.
func TestSMFeatureAndEnable(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ResumeTimeout = 90 * time.Second })
	c := ts.dial(t, "pre")
	if f := c.header(); f.Child(nsSM, "sm") != nil || f.Child(nsCSI, "csi") != nil {
		t.Fatalf("SM or CSI offered before authentication: %s", f)
	}
	c.send(plainAuth("", "alice", "alice-pw"))
	c.expectSuccess()
	f := c.restart()
	if f.Child(nsSM, "sm") == nil || f.Child(nsCSI, "csi") == nil {
		t.Fatalf("features after auth lack sm or csi: %s", f)
	}
	c.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	c.expect("failed before bind", isSM("failed").and(hasChild(nsStanzas, "unexpected-request")))
	c.bind("a")

	en, _ := c.enableSM(true)
	if id := en.Attr("id"); len(id) < 26 || en.Attr("resume") != "true" || en.Attr("max") != "90" {
		t.Fatalf("enabled %s: want a 128-bit id, resume='true', max='90'", en)
	}
	c.send(`<enable xmlns='urn:xmpp:sm:3'/>`)
	c.expectStreamError("policy-violation")

	// Without resume='true' there is no SM-ID.
	d := ts.login(t, "bob", "b")
	if en, _ := d.enableSM(false); en.HasAttr("id") || en.HasAttr("resume") {
		t.Fatalf("enabled without resume: %s", en)
	}
	// The client's smaller max wins.
	e := ts.login(t, "carol", "c")
	e.send(`<enable xmlns='urn:xmpp:sm:3' resume='1' max='30'/>`)
	if en := e.waitFor("enabled", isSM("enabled")); en.Attr("max") != "30" {
		t.Fatalf("enabled %s, want max='30'", en)
	}
}

// TestSMAcks: the server answers <r/> with its count of handled stanzas,
// requests acks itself after a batch, drops what the client acks, and ends
// the stream of a client that acks more than it got (§4, §6).
func TestSMAcks(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	_, mark := alice.enableSM(false)

	// Three stanzas from alice after <enable/>.
	alice.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	alice.send(message(bob.jid, "one"))
	alice.send(`<presence><status>busy</status></presence>`)
	alice.send(`<r xmlns='urn:xmpp:sm:3'/>`)
	if a := alice.waitFor("<a/>", isSM("a")); a.Attr("h") != "3" {
		t.Fatalf("server acked %s, want h='3'", a)
	}

	// smAckEvery+4 messages to alice: the server asks for an ack after
	// smAckEvery.
	n := smAckEvery + 4
	for i := 0; i < n; i++ {
		bob.send(message(alice.jid, fmt.Sprint("m", i)))
	}
	last := fmt.Sprint("m", n-1)
	alice.waitFor(last, hasBody(last))
	// The server asked after a batch, not only when its timer fired.
	first, lastAt := -1, -1
	for i, s := range alice.seen[mark:] {
		if first < 0 && strings.HasPrefix(s, "<r ") {
			first = i
		}
		if strings.Contains(s, "<body>"+last+"</body>") {
			lastAt = i
		}
	}
	if first < 0 || first > lastAt {
		t.Fatalf("no <r/> among the first %d stanzas:%s", smAckEvery, alice.history())
	}
	srv := ts.smSession(t, alice.jid)
	h := alice.handledSince(mark)
	if _, n := srv.testSMLife(); n != int(h) {
		t.Fatalf("server keeps %d unacked, client handled %d", n, h)
	}
	alice.ack(h - 5)
	waitUntil(t, "the ack to apply", func() bool { _, n := srv.testSMLife(); return n == 5 })
	alice.ack(h)
	waitUntil(t, "the ack to apply", func() bool { _, n := srv.testSMLife(); return n == 0 })

	alice.ack(h + 1)
	alice.expectStreamError("undefined-condition")
	var se *wire.Element
	for _, s := range alice.seen {
		if strings.Contains(s, "handled-count-too-high") {
			se, _ = parseStanzaStreamError(s)
		}
	}
	if se == nil || se.Attr("h") != strconv.Itoa(int(h+1)) || se.Attr("send-count") != strconv.Itoa(int(h)) {
		t.Fatalf("stream error lacks <handled-count-too-high h='%d' send-count='%d'/>: %v", h+1, h, alice.seen[len(alice.seen)-1])
	}
}

// parseStanzaStreamError finds <handled-count-too-high/> in a serialized
// stream error.
func parseStanzaStreamError(s string) (*wire.Element, error) {
	i := strings.Index(s, "<handled-count-too-high")
	j := strings.Index(s[i:], "/>")
	el, err := wire.ParseElement([]byte(s[i : i+j+2]))
	return el, err
}

// TestSMQueue: the chunked queue keeps order across chunk boundaries and
// releases what is acked.
func TestSMQueue(t *testing.T) {
	st := &smState{}
	next, want := 0, 0 // next item to push, oldest unacked
	push := func(k int) {
		for i := 0; i < k; i++ {
			b := []byte(fmt.Sprint(next))
			st.push([][]byte{b, nil, []byte("|")}, uint64(next+1), 1<<20, 1<<30)
			next++
		}
	}
	ack := func(k int) {
		seq, ok := st.ack(st.acked + uint32(k))
		if !ok {
			t.Fatalf("ack of %d of %d refused", k, st.n)
		}
		if k > 0 && seq != uint64(want+k) {
			t.Fatalf("acked up to seq %d, want %d", seq, want+k)
		}
		want += k
	}
	for _, step := range []struct{ push, ack int }{
		{1, 1}, {63, 10}, {64, 100}, {130, 0}, {0, 17}, {1, 131}, {200, 64}, {5, 0},
	} {
		push(step.push)
		ack(step.ack)
		if st.n != next-want || st.bytes != sizeOf(want, next) {
			t.Fatalf("after %+v: n %d bytes %d, want %d and %d", step, st.n, st.bytes, next-want, sizeOf(want, next))
		}
	}
	items := st.take()
	for i, it := range items {
		if got := string(it.bytes()); got != fmt.Sprint(want+i)+"|" {
			t.Fatalf("item %d is %q, want %q", i, got, fmt.Sprint(want+i)+"|")
		}
	}
	if st.n != 0 || st.first != nil || st.sent() != uint32(next) {
		t.Fatalf("after take: %+v", st)
	}
}

// sizeOf is the queue size of items from to to-1 as TestSMQueue pushes them.
func sizeOf(from, to int) int {
	n := 0
	for i := from; i < to; i++ {
		n += len(fmt.Sprint(i)) + 1
	}
	return n
}

// TestSMCounterWrap: h is an unsignedInt that wraps from 2^32-1 to 0 (§4),
// on the server's inbound count and on the acks of its outbound count.
func TestSMCounterWrap(t *testing.T) {
	t.Run("arithmetic", func(t *testing.T) {
		st := &smState{acked: math.MaxUint32 - 2}
		for i := 0; i < 5; i++ {
			if !st.push([][]byte{[]byte(fmt.Sprint("<message>", i))}, 0, 100, 1<<20) {
				t.Fatal("push over bounds")
			}
		}
		if got := st.sent(); got != 2 {
			t.Fatalf("sent = %d, want 2 (2^32-3 + 5 wraps)", got)
		}
		for _, tc := range []struct {
			h    uint32
			ok   bool
			left int
		}{
			{math.MaxUint32 - 3, false, 5}, // behind the last ack: "more" than sent
			{math.MaxUint32 - 2, true, 5},  // nothing new
			{math.MaxUint32, true, 3},
			{0, true, 2},
			{3, false, 2}, // one more than sent
			{2, true, 0},
			{2, true, 0},
		} {
			_, ok := st.ack(tc.h)
			if ok != tc.ok || st.n != tc.left {
				t.Fatalf("ack(%d) = %v with %d left, want %v with %d", tc.h, ok, st.n, tc.ok, tc.left)
			}
		}
		if st.bytes != 0 || st.first != nil || st.last != nil {
			t.Fatalf("an empty queue still holds chunks: %+v", st)
		}
	})
	t.Run("on the wire", func(t *testing.T) {
		ts := newTestServer(t)
		alice := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		alice.drain()
		_, mark := alice.enableSM(false)
		alice.drain()
		srv := ts.smSession(t, alice.jid)
		alice.ack(alice.handledSince(mark))
		waitUntil(t, "everything acked", func() bool { _, n := srv.testSMLife(); return n == 0 })
		// Jump both counters to just below 2^32. The reader takes wmu in
		// closing() before it handles the next stanza, which orders this
		// write before its reads.
		const base = math.MaxUint32 - 1
		srv.wmu.Lock()
		srv.sm.in, srv.sm.acked = base, base
		srv.wmu.Unlock()
		mark = len(alice.seen)
		for i := 0; i < 3; i++ {
			alice.send(`<iq type='get' id='w` + strconv.Itoa(i) + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
		}
		alice.send(`<r xmlns='urn:xmpp:sm:3'/>`)
		if a := alice.waitFor("<a/>", isSM("a")); a.Attr("h") != "1" {
			t.Fatalf("server acked %s, want h='1' (2^32-2 + 3)", a)
		}
		bob.send(message(alice.jid, "wrap"))
		alice.waitFor("wrap", hasBody("wrap"))
		h := base + alice.handledSince(mark) // 3 results + 1 message: wraps to 2
		if h != 2 {
			t.Fatalf("client count %d, want 2", h)
		}
		alice.ack(h)
		waitUntil(t, "the wrapped ack to apply", func() bool { _, n := srv.testSMLife(); return n == 0 })
		alice.ack(h + 1)
		alice.expectStreamError("undefined-condition")
	})
}

// TestSMResumeAfterKill: the TCP connection of a client with messages in
// flight dies; the client resumes from a new connection with the count it
// handled, and every message arrives exactly once: the handled ones before
// the kill, the rest retransmitted or queued while the session was parked.
// The contact never sees the session go offline.
func TestSMResumeAfterKill(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	en, mark := alice.enableSM(true)
	id := en.Attr("id")
	alice.rosterGet("")
	alice.presence(0)
	bob := ts.online(t, "bob", "b", 0)
	alice.waitFor("bob's presence", isPresenceFrom(bob.jid))
	srv := ts.smSession(t, alice.jid)

	for i := 0; i < 30; i++ {
		bob.send(message(alice.jid, fmt.Sprint("k", i)))
	}
	alice.waitFor("k4", hasBody("k4"))
	alice.ack(alice.handledSince(mark)) // the first few are acked
	alice.waitFor("k11", hasBody("k11"))
	before := seenBodies(t, alice.seen)
	handled := alice.handledSince(mark)
	alice.nc.Close() // no </stream:stream>: the connection is lost
	waitUntil(t, "the session to park", func() bool { l, _ := srv.testSMLife(); return l == smParked })
	if len(ts.Sessions()) != 2 {
		t.Fatalf("sessions %v: the parked session must stay", ts.Sessions())
	}
	for i := 30; i < 40; i++ {
		bob.send(message(alice.jid, fmt.Sprint("k", i)))
	}
	bob.drain()

	a2, res := ts.resumeAs(t, "alice", id, handled)
	// alice sent 2 stanzas after <enable/>: the roster get and presence.
	if !isSM("resumed")(res) || res.Attr("previd") != id || res.Attr("h") != "2" {
		t.Fatalf("resume answer %s, want <resumed previd='%s' h='2'/>", res, id)
	}
	a2.jid = alice.jid
	a2.waitFor("k39", hasBody("k39"))
	a2.drain()
	exactlyOnce(t, append(before, seenBodies(t, a2.seen)...), bodiesRange("k", 0, 40))
	bob.quiet("alice going offline", isUnavailableFrom(alice.jid))

	// The resumed session is the same session: routing, counting and acks go on.
	if got := ts.router.lookupFull(alice.jid); got != srv {
		t.Fatalf("router has %p for %s, want the resumed session %p", got, alice.jid, srv)
	}
	bob.send(message(alice.jid, "after"))
	a2.waitFor("after", hasBody("after"))
	a2.send(`<r xmlns='urn:xmpp:sm:3'/>`)
	if a := a2.waitFor("<a/>", isSM("a")); a.Attr("h") != "3" { // + the drain ping
		t.Fatalf("after resumption the server acked %s, want h='3'", a)
	}
	a2.ack(handled + a2.handledSince(0))
	waitUntil(t, "everything acked", func() bool { _, n := srv.testSMLife(); return n == 0 })
	if n := len(offlineBodies(t, ts, "alice")); n != 0 {
		t.Fatalf("%d messages in offline storage after a successful resumption", n)
	}
}

// TestSMResumeLive: the server has not noticed that the old connection is
// gone when the client resumes: the old stream gets <conflict/> (§5) and
// the new one takes over.
func TestSMResumeLive(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	en, mark := alice.enableSM(true)
	alice.presence(0)
	bob := ts.online(t, "bob", "b", 0)
	bob.send(message(alice.jid, "before"))
	alice.waitFor("before", hasBody("before"))
	h := alice.handledSince(mark)
	handledSeen := len(alice.seen)
	bob.send(message(alice.jid, "unread"))
	bob.drain()

	a2, res := ts.resumeAs(t, "alice", en.Attr("id"), h)
	if !isSM("resumed")(res) {
		t.Fatalf("resume answer %s", res)
	}
	alice.expectStreamError("conflict")
	a2.jid = alice.jid
	a2.waitFor("unread", hasBody("unread"))
	bob.send(message(alice.jid, "new"))
	a2.waitFor("new", hasBody("new"))
	// What the old connection parsed after it reported h does not count:
	// the client was gone by then.
	exactlyOnce(t, append(seenBodies(t, alice.seen[:handledSeen]), seenBodies(t, a2.seen)...), []string{"before", "unread", "new"})
	bob.quiet("alice going offline", isUnavailableFrom(alice.jid))
}

// TestSMResumeOtherUser: resumption is for the same account only; another
// user learns nothing (no h) and the session stays resumable.
func TestSMResumeOtherUser(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	en, _ := alice.enableSM(true)
	alice.nc.Close()
	srv := ts.smSession(t, alice.jid)
	waitUntil(t, "the session to park", func() bool { l, _ := srv.testSMLife(); return l == smParked })

	bob, res := ts.resumeAs(t, "bob", en.Attr("id"), 0)
	if !isSM("failed")(res) || res.Child(nsStanzas, "item-not-found") == nil || res.HasAttr("h") {
		t.Fatalf("bob resuming alice's session got %s, want <failed><item-not-found/></failed> without h", res)
	}
	// §5: the failed client may bind instead.
	bob.bind("b")
	_, res = ts.resumeAs(t, "alice", "no-such-id", 0)
	if !isSM("failed")(res) || res.Child(nsStanzas, "item-not-found") == nil {
		t.Fatalf("unknown previd: %s", res)
	}
	a2, res := ts.resumeAs(t, "alice", en.Attr("id"), 0)
	if !isSM("resumed")(res) {
		t.Fatalf("alice could not resume after bob's attempt: %s", res)
	}
	a2.jid = alice.jid
	a2.drain()
}

// TestSMResumeWindowPassed: after the window the session ends like a lost
// connection without SM (unavailable presence), its unacked messages are in
// offline storage exactly once, chat states are not, a late <resume/> gets
// <failed h=”/>, and the stored messages are deleted only once a new
// session with SM acks them.
func TestSMResumeWindowPassed(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ResumeTimeout = 300 * time.Millisecond })
	alice := ts.login(t, "alice", "a")
	en, _ := alice.enableSM(true)
	alice.rosterGet("")
	alice.presence(0)
	bob := ts.online(t, "bob", "b", 0)
	for i := 0; i < 5; i++ {
		bob.send(message(alice.jid, fmt.Sprint("w", i)))
	}
	bob.send(`<message type='chat' to='` + alice.jid + `'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	alice.waitFor("w4", hasBody("w4")) // read, never acked
	alice.nc.Close()
	srv := ts.smSession(t, alice.jid)
	waitUntil(t, "the session to park", func() bool { l, _ := srv.testSMLife(); return l == smParked })
	for i := 5; i < 10; i++ {
		bob.send(message(alice.jid, fmt.Sprint("w", i)))
	}
	bob.waitFor("alice unavailable after the window", isUnavailableFrom(alice.jid))
	waitUntil(t, "the session to end", func() bool { return len(ts.Sessions()) == 1 })
	exactlyOnce(t, offlineBodies(t, ts, "alice"), bodiesRange("w", 0, 10))

	_, res := ts.resumeAs(t, "alice", en.Attr("id"), 3)
	if !isSM("failed")(res) || res.Child(nsStanzas, "item-not-found") == nil || res.Attr("h") != "2" {
		t.Fatalf("late resume: %s, want <failed h='2'><item-not-found/></failed>", res)
	}

	// A new session with SM gets them; a lost connection before its ack
	// leaves them stored (once, not stored again from its queue).
	a2 := ts.login(t, "alice", "a2")
	_, mark := a2.enableSM(false)
	a2.presence(0)
	a2.waitFor("w9", hasBody("w9"))
	exactlyOnce(t, seenBodies(t, a2.seen[mark:]), bodiesRange("w", 0, 10))
	a2.drain()
	exactlyOnce(t, offlineBodies(t, ts, "alice"), bodiesRange("w", 0, 10)) // not yet acked
	a2.nc.Close()
	waitUntil(t, "a2 to end", func() bool { return len(ts.Sessions()) == 1 })
	exactlyOnce(t, offlineBodies(t, ts, "alice"), bodiesRange("w", 0, 10))

	// Acked: deleted.
	a3 := ts.login(t, "alice", "a3")
	_, mark = a3.enableSM(false)
	a3.presence(0)
	a3.waitFor("w9", hasBody("w9"))
	a3.presence(1) // a second initial presence does not send them again
	a3.drain()
	exactlyOnce(t, seenBodies(t, a3.seen[mark:]), bodiesRange("w", 0, 10))
	a3.ack(a3.handledSince(mark))
	waitUntil(t, "the acked messages to be deleted", func() bool { return len(offlineBodies(t, ts, "alice")) == 0 })
}

// TestSMEndsWithUnacked: a session with SM that ends without resumption
// (clean close, or a lost connection without resume='true') puts its
// unacked messages into offline storage.
func TestSMEndsWithUnacked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume bool
		end    func(c *client)
	}{
		{"closing tag", true, func(c *client) { c.send(`</stream:stream>`); c.expectClosed() }},
		{"lost without resume", false, func(c *client) { c.nc.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			alice := ts.login(t, "alice", "a")
			_, mark := alice.enableSM(tc.resume)
			alice.presence(0)
			bob := ts.online(t, "bob", "b", 0)
			bob.send(message(alice.jid, "acked"))
			alice.waitFor("acked", hasBody("acked"))
			alice.ack(alice.handledSince(mark))
			bob.send(message(alice.jid, "unacked"))
			alice.waitFor("unacked", hasBody("unacked"))
			alice.drain()
			tc.end(alice)
			bob.waitFor("alice unavailable", isUnavailableFrom(alice.jid))
			waitUntil(t, "the session to end", func() bool { return len(ts.Sessions()) == 1 })
			exactlyOnce(t, offlineBodies(t, ts, "alice"), []string{"unacked"})
		})
	}
}

// TestSMShutdown: a parked session ends on Shutdown and its unacked
// messages are stored before the store closes.
func TestSMShutdown(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	alice.enableSM(true)
	alice.presence(0)
	bob := ts.online(t, "bob", "b", 0)
	bob.send(message(alice.jid, "parked"))
	alice.waitFor("parked", hasBody("parked"))
	alice.nc.Close()
	srv := ts.smSession(t, alice.jid)
	waitUntil(t, "the session to park", func() bool { l, _ := srv.testSMLife(); return l == smParked })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, offlineBodies(t, ts, "alice"), []string{"parked"})
}

// TestSMQueueBound: a parked session whose queue overflows ends at once,
// its messages stored.
func TestSMQueueBound(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxUnackedStanzas = 5 })
	alice := ts.login(t, "alice", "a")
	alice.enableSM(true)
	alice.presence(0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	alice.nc.Close()
	srv := ts.smSession(t, alice.jid)
	waitUntil(t, "the session to park", func() bool { l, _ := srv.testSMLife(); return l == smParked })
	for i := 0; i < 8; i++ {
		bob.send(message(alice.jid, fmt.Sprint("q", i)))
	}
	bob.waitFor("alice unavailable", isUnavailableFrom(alice.jid))
	waitUntil(t, "the session to end", func() bool { return len(ts.Sessions()) == 1 })
	bob.drain() // bob's reader has handled all eight
	got := offlineBodies(t, ts, "alice")
	// The unacked ping result and drain are not messages; every message is
	// stored once: those in the queue when it overflowed, the rest routed
	// to offline storage after the session left.
	exactlyOnce(t, got, bodiesRange("q", 0, 8))
}

func TestParseStanzaRoundTrip(t *testing.T) {
	in := `<message from='a@example.com/x' to='b@example.com' type='chat'><body>hi &amp; bye</body><x xmlns='urn:example'/></message>`
	el, err := wire.ParseElement([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if out := el.AppendXML(nil, nsClient); !bytes.Equal(out, []byte(in)) {
		t.Fatalf("round trip\n got %s\nwant %s", out, in)
	}
}

// processCPU is the user and system time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSMThroughput is BenchmarkRouteMessage's 1:1 run with and
// without XEP-0198 on both sessions, in the same run: alice pipelines
// messages to bob's full JID; with SM bob answers every <r/> with <a h/> as
// it reads, like a client that acks at once.
func BenchmarkSMThroughput(b *testing.B) {
	for _, sm := range []bool{false, true} {
		name := "off"
		if sm {
			name = "on"
		}
		b.Run(name, func(b *testing.B) { benchSM(b, sm) })
	}
}

func benchSM(b *testing.B, sm bool) {
	ts := newTestServer(b, func(s *Server) {
		s.OutQueueBytes = 1 << 30
		// The bound is policy, not cost: keep it out of the way of a
		// pipelined run whose acks trail by the socket buffers.
		s.MaxUnackedStanzas = 1 << 22
	})
	alice := ts.login(b, "alice", "a")
	bob := ts.login(b, "bob", "b")
	mark := -1
	if sm {
		alice.enableSM(false)
		_, mark = bob.enableSM(false)
	}
	bob.drain()
	alice.drain()
	base := 0 // what bob handled before the run, for its h
	if sm {
		base = int(bob.handledSince(mark))
	}

	const batch = 64
	chunk := []byte(strings.Repeat(typicalMessage, batch))
	end, req := []byte("</message>"), []byte("<r xmlns='urn:xmpp:sm:3'/>")
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 256<<10)
		ack := make([]byte, 0, 64)
		carry, n := 0, 0
		bob.nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
		for n < b.N {
			k, err := bob.nc.Read(buf[carry:])
			if err != nil {
				break
			}
			data := buf[:carry+k]
			done := 0 // data[:done] is counted
			ack = ack[:0]
			for {
				// The server puts its <r/> right after a stanza.
				for sm && bytes.HasPrefix(data[done:], req) {
					ack = append(ack, "<a xmlns='urn:xmpp:sm:3' h='"...)
					ack = strconv.AppendInt(ack, int64(base+n), 10)
					ack = append(ack, "'/>"...)
					done += len(req)
				}
				i := bytes.Index(data[done:], end)
				if i < 0 {
					break
				}
				done += i + len(end)
				n++
			}
			if len(ack) > 0 {
				bob.nc.Write(ack) // one write for the acks of this read
			}
			keep := max(done, len(data)-len(end)+1)
			if rest := data[done:]; sm && len(rest) < len(req) && bytes.HasPrefix(req, rest) {
				keep = done // the start of an <r/>
			}
			carry = copy(buf, data[keep:])
		}
		got <- n
	}()

	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalMessage)))
	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU()
	alice.nc.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	for sent := 0; sent < b.N; sent += batch {
		w := chunk
		if left := b.N - sent; left < batch {
			w = chunk[:left*len(typicalMessage)]
		}
		if _, err := alice.nc.Write(w); err != nil {
			b.Fatal(err)
		}
	}
	n := <-got
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	if n != b.N {
		b.Fatalf("bob received %d of %d messages", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	// CPU time (server and both clients) is steadier than wall time on a
	// shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "mallocs/msg")
	if sm {
		// Ack the tail so that the session does not end with thousands of
		// unacked messages to store offline.
		bob.ack(uint32(base + b.N))
		bs := ts.smSession(b, bob.jid)
		waitUntil(b, "bob's last ack", func() bool { _, n := bs.testSMLife(); return n == 0 })
	}
}
