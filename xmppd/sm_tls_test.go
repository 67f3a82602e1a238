package xmppd

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// loginTLS is login over STARTTLS; it also returns the TCP connection
// under the TLS one, so that a test can cut the link without a TLS
// close_notify, as a lost mobile connection does.
func (ts *testServer) loginTLS(tb testing.TB, user, resource string) (*client, net.Conn) {
	tb.Helper()
	c := ts.dial(tb, user+"/"+resource)
	raw := c.nc
	c.header()
	c.startTLS()
	pw, _ := ts.dir.password(user)
	c.send(plainAuth("", user, pw))
	c.expectSuccess()
	c.restart()
	if got, want := c.bind(resource), user+"@"+testDomain+"/"+resource; got != want {
		tb.Fatalf("bound %q, want %q", got, want)
	}
	return c, raw
}

// resumeTLSAs is resumeAs over STARTTLS.
func (ts *testServer) resumeTLSAs(tb testing.TB, user, previd string, h uint32) *client {
	tb.Helper()
	c := ts.dial(tb, user+"/resume")
	c.header()
	c.startTLS()
	pw, _ := ts.dir.password(user)
	c.send(plainAuth("", user, pw))
	c.expectSuccess()
	c.restart()
	c.send(fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>`, previd, h))
	res := c.waitFor("<resumed/> or <failed/>", func(el *wire.Element) bool {
		return el.Space == nsSM && (el.Local == "resumed" || el.Local == "failed")
	})
	if res.Local != "resumed" {
		tb.Fatalf("resume answered %s", res)
	}
	return c
}

// TestSMResumeParkedTLS: a session parked after its TLS connection died
// keeps no TLS state (dropTransport), and still resumes on a new TLS
// connection: the unacknowledged messages and those queued while parked
// arrive exactly once, then the session goes on over the new connection
// (messages, <r/>, acks) and nothing lands in offline storage.
func TestSMResumeParkedTLS(t *testing.T) {
	ts := newTestServer(t, withTLS, func(s *Server) { s.AllowPlaintext = false })
	alice, raw := ts.loginTLS(t, "alice", "a")
	if _, ok := alice.nc.(*tls.Conn); !ok {
		t.Fatalf("alice's transport is %T, want *tls.Conn", alice.nc)
	}
	en, mark := alice.enableSM(true)
	id := en.Attr("id")
	bob, _ := ts.loginTLS(t, "bob", "b")
	srv := ts.smSession(t, alice.jid)

	for i := range 20 {
		bob.send(message(alice.jid, fmt.Sprint("t", i)))
	}
	alice.waitFor("t19", hasBody("t19"))
	alice.ack(alice.handledSince(mark) - 5) // the last five stay unacknowledged
	waitUntil(t, "the ack", func() bool { _, n := srv.testSMLife(); return n == 5 })
	before := seenBodies(t, alice.seen)
	handled := alice.handledSince(mark) - 3 // the client lost the last three

	raw.Close() // no close_notify, no </stream:stream>: the link is lost
	waitUntil(t, "the session to park", func() bool { l, _ := srv.testSMLife(); return l == smParked })
	srv.wmu.Lock()
	nc := srv.nc
	srv.wmu.Unlock()
	if _, ok := nc.(parkedTransport); !ok {
		t.Fatalf("a parked session still holds its %T", nc)
	}
	for i := 20; i < 25; i++ {
		bob.send(message(alice.jid, fmt.Sprint("t", i)))
	}
	waitUntil(t, "the messages to queue", func() bool { _, n := srv.testSMLife(); return n == 10 })

	a2 := ts.resumeTLSAs(t, "alice", id, handled)
	a2.jid = alice.jid
	if _, ok := a2.nc.(*tls.Conn); !ok {
		t.Fatalf("resumed over %T, want *tls.Conn", a2.nc)
	}
	a2.waitFor("t24", hasBody("t24"))
	// The retransmitted t17..t19 were seen before the link died but not
	// handled by the client: count them once, as the client would.
	got := append(before[:len(before)-3], seenBodies(t, a2.seen)...)
	exactlyOnce(t, got, bodiesRange("t", 0, 25))

	bob.send(message(alice.jid, "after"))
	a2.waitFor("after", hasBody("after"))
	a2.send(`<r xmlns='urn:xmpp:sm:3'/>`)
	a2.waitFor("<a/>", isSM("a"))
	a2.ack(handled + a2.handledSince(0))
	waitUntil(t, "everything acked", func() bool { _, n := srv.testSMLife(); return n == 0 })
	if n := len(offlineBodies(t, ts, "alice")); n != 0 {
		t.Fatalf("%d messages in offline storage after a successful resumption", n)
	}
}

// BenchmarkParkedSessionHeap reports the Go heap one parked session keeps
// (XEP-0198 resumption pending, connection lost), over plain TCP and over
// STARTTLS: parked TLS sessions used to keep their closed *tls.Conn, about
// 7 KB more than plain ones (dropTransport). The client's side of each
// connection is let go before measuring.
func BenchmarkParkedSessionHeap(b *testing.B) {
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			opts := []func(*Server){func(s *Server) { s.MaxSessionsPerUser = 1 << 30 }}
			if useTLS {
				opts = append(opts, withTLS)
			}
			ts := newTestServer(b, opts...)
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			parked := make([]*conn, 0, b.N)
			for i := range b.N {
				var c *client
				var raw net.Conn
				if useTLS {
					c, raw = ts.loginTLS(b, "alice", fmt.Sprint("p", i))
				} else {
					c = ts.login(b, "alice", fmt.Sprint("p", i))
					raw = c.nc
				}
				c.enableSM(true)
				parked = append(parked, ts.smSession(b, c.jid))
				raw.Close()
				// Keep nothing of the client but the closed socket.
				c.nc, c.p, c.seen, c.pending = raw, nil, nil, nil
			}
			for _, s := range parked {
				waitUntil(b, "the session to park", func() bool { l, _ := s.testSMLife(); return l == smParked })
			}
			runtime.GC()
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/float64(b.N), "heap-B/parked")
			b.ReportMetric(0, "ns/op") // the time is that of logins, not of interest
		})
	}
}
