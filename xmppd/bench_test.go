package xmppd

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// typicalMessage is a chat message as modern clients send it: body, chat
// state, receipt request, origin id.
const typicalMessage = `<message to='bob@example.com/b' type='chat' id='m1'><body>Hello, this is a short chat message.</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='4f0b6c4e-1c1f-4a8c-9f47-2b8d7a4e9c11'/></message>`

// BenchmarkRouteMessage measures the whole server path over loopback: alice
// pipelines b.N messages to bob's full JID, bob counts them. The clients
// write prebuilt bytes and read into a fixed buffer, so the allocations
// reported are the server's (plus a few per run, not per message).
func BenchmarkRouteMessage(b *testing.B) { benchRouteMessage(b) }

// benchRouteMessage is BenchmarkRouteMessage on a server with opts (the
// archive benchmark in archive_test.go).
func benchRouteMessage(b *testing.B, opts ...func(*Server)) {
	ts := newTestServer(b, append([]func(*Server){func(s *Server) { s.OutQueueBytes = 1 << 30 }}, opts...)...)
	alice := ts.login(b, "alice", "a")
	bob := ts.login(b, "bob", "b")
	bob.drain()
	alice.drain()

	const batch = 64
	chunk := []byte(strings.Repeat(typicalMessage, batch))
	pat := []byte("</message>")
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 256<<10)
		carry := 0
		n := 0
		bob.nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
		for n < b.N {
			k, err := bob.nc.Read(buf[carry:])
			if err != nil {
				break
			}
			data := buf[:carry+k]
			n += bytes.Count(data, pat)
			// Keep a tail that may hold the start of a split "</message>".
			carry = min(len(pat)-1, len(data))
			copy(buf, data[len(data)-carry:])
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
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	if n != b.N {
		b.Fatalf("bob received %d of %d messages", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "mallocs/msg")
}

// repeatReader yields head once and then body forever, without allocating.
type repeatReader struct {
	head, body string
	off        int // offset in head, then in body
	inBody     bool
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		src := r.head
		if r.inBody {
			src = r.body
		}
		k := copy(p[n:], src[r.off:])
		n += k
		r.off += k
		if r.off == len(src) {
			r.off = 0
			r.inBody = true
		}
	}
	return n, nil
}

// benchServer is a Server with alice and bob bound to in-process conns
// whose socket discards writes.
func benchServer(b *testing.B) (s *Server, alice, bob *conn) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	// A real store, so that per-user state (block lists) is cached as in
	// production.
	s = &Server{Domain: testDomain, Directory: newFakeDir(), AllowPlaintext: true, Store: st,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OutQueueBytes: 1 << 30}
	s.init()
	mk := func(user, res string) *conn {
		c := newConn(s, discardConn{}, "127.0.0.1", false)
		c.user, c.resource = user, res
		c.bareJID = user + "@" + testDomain
		c.fullJID = c.bareJID + "/" + res
		c.toAttr = appendAttr(nil, "to", c.fullJID)
		c.state = stBound
		c.available = true
		if _, ok := s.router.bind(c, 10); !ok {
			b.Fatal("bind")
		}
		return c
	}
	return s, mk("alice", "a"), mk("bob", "b")
}

// BenchmarkParseRouteSerialize is the per-message work of the hot path
// without sockets: parse one stanza, resolve its destination (the full-JID
// fast path), stamp from, serialize.
func BenchmarkParseRouteSerialize(b *testing.B) {
	s, alice, bob := benchServer(b)
	p := wire.NewParser(&repeatReader{head: clientHeader, body: typicalMessage}, wire.Limits{})
	if k, _, err := p.Next(); err != nil || k != wire.StreamStart {
		b.Fatal(k, err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalMessage)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k, el, err := p.Next()
		if err != nil || k != wire.Stanza {
			b.Fatal(k, err)
		}
		a, target, ok := s.resolve(el.Attr("to"))
		if !ok || target != bob || a.kind != addrLocalFull {
			b.Fatalf("resolved %+v %v", a, target)
		}
		el.SetAttr("from", alice.fullJID)
		buf = el.AppendXML(buf[:0], nsClient)
	}
	b.StopTimer()
	if !bytes.Contains(buf, []byte(`from='alice@example.com/a'`)) {
		b.Fatalf("serialized %s", buf)
	}
}

// BenchmarkHandleStanza adds the router's real work to the above:
// handleStanza with the from check, Directory lookup, serialization into
// bob's queue and the flusher, writing to a socket that discards.
func BenchmarkHandleStanza(b *testing.B) {
	_, alice, bob := benchServer(b)
	p := wire.NewParser(&repeatReader{head: clientHeader, body: typicalMessage}, wire.Limits{})
	if k, _, err := p.Next(); err != nil || k != wire.StreamStart {
		b.Fatal(k, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalMessage)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, el, err := p.Next()
		if err != nil {
			b.Fatal(err)
		}
		if !alice.handleStanza(el) {
			b.Fatal("handleStanza ended the stream")
		}
	}
	b.StopTimer()
	bob.waitFlushed()
}

// discardConn is a net.Conn whose writes succeed at once.
type discardConn struct{}

func (discardConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
