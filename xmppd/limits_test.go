package xmppd

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

const nsPanic = "urn:example:test:panic"

// TestHandlerPanic: a panic ends only the connection that caused it
// (like net/http's conn.serve), with internal-server-error, and is counted.
func TestHandlerPanic(t *testing.T) {
	ts := newTestServer(t, func(s *Server) {
		s.init()
		s.serverIQ[nsPanic] = func(c *conn, el, q *wire.Element) { panic("test: handler bug") }
	})
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.send(`<iq type='get' id='boom' to='example.com'><query xmlns='` + nsPanic + `'/></iq>`)
	alice.expectStreamError("internal-server-error")
	// The session was cleaned up like any other: bob sees alice leave.
	bob.waitFor("alice unavailable", isUnavailableFrom("alice@example.com/a"))
	// Everyone else keeps working.
	bob.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`)
	a2 := ts.online(t, "alice", "a2", 0)
	a2.send(chatTo("bob@example.com/b", "after the panic"))
	bob.waitFor("message", hasBody("after the panic"))
	if n := ts.metrics.panics.Load(); n != 1 {
		t.Errorf("panics = %d, want 1", n)
	}
	rec := httptest.NewRecorder()
	ts.HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\nxmppd_panics_total 1\n") {
		t.Errorf("/metrics does not count the panic:\n%s", rec.Body.String())
	}
}

// flood sends messages of size bytes from sender to the full JID to until
// the server counts a slow consumer. A barrier every few messages keeps the
// sender's own socket backlog short, so the test measures the receiver.
func flood(t *testing.T, ts *testServer, sender *client, to string, size int) {
	t.Helper()
	msg := `<message to='` + to + `' type='chat'><body>` + strings.Repeat("x", size) + `</body></message>`
	deadline := time.Now().Add(testTimeout)
	sent := 0
	for ts.metrics.slowConsumers.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s was never disconnected (sent %d bytes)", to, sent)
		}
		for i := 0; i < 16; i++ {
			sender.send(msg)
		}
		sent += 16 * len(msg)
		for _, el := range sender.drain() {
			// Once the receiver is gone, messages to its offline queue
			// (bound 1) are refused.
			if !isStanzaError("message", "service-unavailable")(el) {
				t.Errorf("sender got %s", el)
			}
		}
	}
	waitUntil(t, to+"'s session to end", func() bool {
		for _, s := range ts.Sessions() {
			if s.JID == to {
				return false
			}
		}
		return true
	})
}

// TestSlowConsumer: a session that does not read is disconnected once its
// queue passes OutQueueBytes; the sender is not slowed down.
func TestSlowConsumer(t *testing.T) {
	ts := newTestServer(t, func(s *Server) {
		s.OutQueueBytes = 64 << 10
		s.WriteTimeout = 30 * time.Second // only the queue bound can act
		s.MaxOfflineMessages = 1
	})
	alice := ts.online(t, "alice", "a", 0)
	ts.online(t, "dave", "d", 0) // never reads from now on
	flood(t, ts, alice, "dave@example.com/d", 8000)
	if el := alice.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`); el.Attr("type") != "result" {
		t.Fatalf("ping after the flood: %s", el)
	}
}

// TestWriteTimeout: a write blocked past WriteTimeout also marks a slow
// consumer, even when the queue is within its bound.
func TestWriteTimeout(t *testing.T) {
	ts := newTestServer(t, func(s *Server) {
		s.OutQueueBytes = 1 << 30
		s.WriteTimeout = 200 * time.Millisecond
		s.MaxOfflineMessages = 1
	})
	alice := ts.online(t, "alice", "a", 0)
	ts.online(t, "dave", "d", 0) // never reads
	flood(t, ts, alice, "dave@example.com/d", 8000)
	alice.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`)
}

// TestShutdown: every stream, bound or not, gets <system-shutdown/>
// (RFC 6120 §4.9.3.19); Serve returns ErrServerClosed; the ready flag drops.
func TestShutdown(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ShutdownGrace = 3 * time.Second })
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.login(t, "bob", "b")
	pre := ts.dial(t, "pre-auth")
	pre.header()
	if !ts.Ready() {
		t.Fatal("not ready before shutdown")
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- ts.Shutdown(context.Background()) }()
	for _, c := range []*client{alice, bob, pre} {
		c.expectStreamError("system-shutdown")
		c.nc.Close()
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Clients that close promptly do not make Shutdown wait for the grace.
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("Shutdown took %v", d)
	}
	if ts.Ready() {
		t.Error("still ready after shutdown")
	}
	select {
	case err := <-ts.done:
		ts.done <- err // for the harness cleanup
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return")
	}
}

// TestShutdownDuringHandshakes: Shutdown races with connections that are
// just sending their stream header (run with -race).
func TestShutdownDuringHandshakes(t *testing.T) {
	ts := newTestServer(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				continue
			}
			io.WriteString(nc, clientHeader)
			go func() {
				nc.SetReadDeadline(time.Now().Add(testTimeout))
				io.Copy(io.Discard, nc)
				nc.Close()
			}()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
}

// TestShutdownGrace: clients that ignore the shutdown are cut off after
// ShutdownGrace, and Shutdown honors its context.
func TestShutdownGrace(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ShutdownGrace = 200 * time.Millisecond })
	ts.online(t, "alice", "a", 0) // never reads, never closes
	ts.dial(t, "silent")          // no header at all
	start := time.Now()
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with a 200ms grace", d)
	}
	if n := ts.metrics.connections.Load(); n != 0 {
		t.Errorf("%d connections after Shutdown", n)
	}
}

// TestConnsPerIP: connections beyond MaxConnsPerIP are refused with
// policy-violation; the limit frees up when a connection ends.
func TestConnsPerIP(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxConnsPerIP = 2 })
	c1 := ts.login(t, "alice", "1")
	c2 := ts.dial(t, "2")
	c2.header()
	c3 := ts.dial(t, "3")
	c3.expectStreamError("policy-violation")
	if n := ts.metrics.connRejected.Load(); n != 1 {
		t.Errorf("connRejected = %d", n)
	}
	c1.nc.Close()
	waitUntil(t, "the first connection to be released", func() bool { return ts.metrics.connections.Load() == 1 })
	ts.login(t, "bob", "b").drain()
}

// TestConnRatePerIP: a burst of new connections beyond the rate is refused.
func TestConnRatePerIP(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ConnRatePerIP = 1 }) // burst 2
	for i := 0; i < 2; i++ {
		ts.dial(t, "ok").header()
	}
	ts.dial(t, "too fast").expectStreamError("policy-violation")
}

// TestDeepNesting: the parser's depth limit ends the stream; the server
// survives.
func TestDeepNesting(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	alice.send(`<message to='bob@example.com'>` + strings.Repeat("<a>", 1000) + strings.Repeat("</a>", 1000) + `</message>`)
	alice.expectStreamError("policy-violation")
	c := ts.dial(t, "x")
	c.send(clientHeader + strings.Repeat("<a>", 1000))
	c.expectStreamError("policy-violation")
	ts.login(t, "bob", "b").drain()
}

// TestUnsupportedStanza: a bound client's unknown top-level element ends
// the stream (RFC 6120 §4.9.3.24).
func TestUnsupportedStanza(t *testing.T) {
	ts := newTestServer(t)
	for _, el := range []string{`<foo/>`, `<enable xmlns='urn:example:not-implemented'/>`} {
		c := ts.login(t, "alice", "a")
		c.send(el)
		c.expectStreamError("unsupported-stanza-type")
	}
}

// TestClientCloses: the client's </stream:stream> is answered with ours and
// the session ends (RFC 6120 §4.4).
func TestClientCloses(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()
	alice.send(`</stream:stream>`)
	alice.expectClosed()
	bob.waitFor("alice unavailable", isUnavailableFrom("alice@example.com/a"))
	waitUntil(t, "the session to end", func() bool { return len(ts.Sessions()) == 1 })
}

// TestServerPing: an idle session is pinged (XEP-0199 §4.2); an answer keeps
// it, silence ends it with connection-timeout.
func TestServerPing(t *testing.T) {
	ts := newTestServer(t, func(s *Server) {
		s.DisableServerPings = false
		s.IdleTimeout = 200 * time.Millisecond
		s.PingTimeout = 300 * time.Millisecond
	})
	alice := ts.login(t, "alice", "a")
	ping := alice.waitFor("server ping", is("iq", "type", "get", "from", testDomain).and(hasChild(nsPing, "ping")))
	alice.send(`<iq type='result' id='` + ping.Attr("id") + `' to='example.com'/>`)
	// Answered: the next ping comes after another idle period, the session
	// lives on.
	ping = alice.waitFor("second server ping", is("iq", "type", "get", "from", testDomain).and(hasChild(nsPing, "ping")))
	// Not answered this time.
	alice.expectStreamError("connection-timeout")
	if len(ts.Sessions()) != 0 {
		waitUntil(t, "the session to end", func() bool { return len(ts.Sessions()) == 0 })
	}
}

// TestStanzaRate: a flooding connection is slowed, not dropped.
func TestStanzaRate(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.StanzasPerSecond = 50 })
	alice := ts.login(t, "alice", "a")
	start := time.Now()
	var b strings.Builder
	for i := 0; i < 200; i++ {
		b.WriteString(`<iq type='get' id='p' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`)
	}
	alice.send(b.String())
	for i := 0; i < 200; i++ {
		alice.expect("ping result", is("iq", "type", "result", "id", "p"))
	}
	// 200 stanzas at 50/s with a burst of 100: at least ~2s.
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("200 stanzas took %v at 50/s", d)
	}
	if ts.metrics.throttled.Load() == 0 {
		t.Error("throttling not counted")
	}
}

// TestConcurrentSessions exercises the router under the race detector:
// sessions message each other and change presence concurrently while other
// connections come and go and the admin view is read.
func TestConcurrentSessions(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxSessionsPerUser = 100 })
	const n, msgs = 8, 50
	var clients []*client
	for i := 0; i < n; i++ {
		user := []string{"alice", "bob"}[i%2]
		clients = append(clients, ts.online(t, user, fmt.Sprintf("r%d", i), i%3))
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		peer := []string{"bob", "alice"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for j := 0; j < msgs; j++ {
				b.WriteString(chatTo(peer+"@example.com", "x"))
				if j%10 == 0 {
					fmt.Fprintf(&b, "<presence><priority>%d</priority></presence>", j%3)
				}
			}
			io.WriteString(c.nc, b.String())
		}()
	}
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(2)
	go func() {
		defer churn.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if nc, err := net.Dial("tcp", ts.addr); err == nil {
				io.WriteString(nc, clientHeader)
				nc.Close()
			}
		}
	}()
	go func() {
		defer churn.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ts.Sessions()
			ts.writeMetrics(io.Discard, nil)
		}
	}()
	wg.Wait()
	got := 0
	for round := 0; round < 2; round++ {
		for _, c := range clients {
			for _, el := range c.drain() {
				switch {
				case el.Local == "message" && el.Attr("type") == "error":
					t.Errorf("%s: error %s", c.name, el)
				case el.Local == "message":
					got++
				}
			}
		}
	}
	close(stop)
	churn.Wait()
	// Every message reached at least one resource (the highest priority
	// ones, or offline storage when all were negative: never here).
	if got < n*msgs {
		t.Errorf("%d messages delivered, want at least %d", got, n*msgs)
	}
}
