package xmppd

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

var errTooManyFiles = syscall.EMFILE

// preAuthStanzaBytes bounds stanzas before SASL success.
const preAuthStanzaBytes = 16 << 10

type streamState uint8

const (
	stWaitHeader  streamState = iota // expecting <stream:stream>
	stNegotiating                    // features sent, not yet bound
	stBound                          // resource bound: stanzas flow
)

// conn is one client connection. Its reader goroutine (serve) owns every
// field not marked otherwise; other goroutines only enqueue bytes through
// send and read the presence state under pmu.
type conn struct {
	srv       *Server
	nc        net.Conn // replaced by the *tls.Conn after STARTTLS; guarded by wmu for writers
	ip        string
	directTLS bool
	since     time.Time

	p          *wire.Parser
	state      streamState
	secure     bool
	authed     bool
	preAuthIQs int    // registration requests answered before auth (negotiate.go)
	headerSent bool   // guarded by wmu (see appendHeader)
	streamID   string // guarded by wmu
	lang       string

	user     string // normalized localpart after SASL
	mech     string
	resource string
	fullJID  string
	bareJID  string
	toAttr   []byte // " to='<full JID>'" prebuilt for shared fan-out

	authFailures int
	sasl         *saslExchange

	// stanza rate limiting (reader goroutine only)
	bucket tokenBucket

	// idle handling: the reader marks activity; pings are sent by the reader
	// wrapper on read timeouts.
	pingOut atomic.Bool

	// writer: a bounded queue of serialized bytes drained by at most one
	// short-lived flusher goroutine, so an idle session holds no writer
	// goroutine and no buffer.
	wmu      sync.Mutex
	wcond    *sync.Cond
	wq       [][]byte
	wqBytes  int
	flushing bool
	wclosed  bool // no more sends accepted (closing or closed)
	closeErr bool // a stream error was queued: close after the flush

	// presence state, read by other sessions' goroutines
	pmu        sync.Mutex
	available  bool
	priority   int
	presence   []byte // last broadcast available presence (serialized, from stamped)
	interested bool   // requested the roster (RFC 6121 §2.1.6)
	bareTo     []byte // " to='<bare JID>'" for presence fan-out
	directed   map[string]struct{}

	// Session features that outlive a connection when XEP-0198 resumes the
	// session (sm.go, csi.go, carbons.go). sm and csi are guarded by wmu
	// (every send consults them); the reader serving the session also reads
	// sm without the lock, as only it sets the field.
	sm          *smState
	csi         *csiState
	hold        bool        // guarded by wmu: queue through csiHold (inactive or parked)
	noResume    bool        // guarded by wmu: the stream ended on purpose (closing tag, stream error)
	carbons     atomic.Bool // XEP-0280 enabled
	pep         pepSession  // guarded by pmu: caps filter of PEP notifications (capsresolve.go)
	offlineSent uint64      // highest offline Seq queued under SM (guarded by the user's offline lock)
	// resumedInto is set when a XEP-0198 resumption moved this connection
	// into an earlier session; the reader then serves that session.
	resumedInto *conn
}

func newConn(s *Server, nc net.Conn, ip string, directTLS bool) *conn {
	c := &conn{srv: s, nc: nc, ip: ip, directTLS: directTLS, since: time.Now()}
	c.wcond = sync.NewCond(&c.wmu)
	c.bucket = tokenBucket{rate: s.StanzasPerSecond, burst: 2 * s.StanzasPerSecond}
	return c
}

// serve runs the reader loop: parse, negotiate, dispatch. A panic ends only
// this connection (like net/http's conn.serve).
func (c *conn) serve() {
	s := c.srv
	defer s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			s.metrics.panics.Add(1)
			s.Logger.Error("panic serving connection", "remote", c.ip, "panic", r, "stack", string(debug.Stack()))
			c.streamError(errInternalServerError, "")
		}
		c.cleanup()
	}()
	c.nc.SetDeadline(c.since.Add(s.AuthTimeout))
	if c.directTLS {
		tc := tls.Server(c.nc, directTLSConfig(s.TLSConfig))
		if err := tc.Handshake(); err != nil {
			s.Logger.Debug("direct TLS handshake failed", "remote", c.ip, "err", err)
			return
		}
		c.nc = tc
		c.secure = true
	}
	// Before authentication nobody needs big stanzas (SASL exchanges are
	// small), so a stranger gets a small limit; see authSucceeded.
	c.p = wire.NewParser(&connReader{c: c}, wire.Limits{MaxStanzaBytes: min(s.MaxStanzaBytes, preAuthStanzaBytes)})
	for {
		kind, el, err := c.p.Next()
		if err != nil {
			c.readError(err)
			return
		}
		switch kind {
		case wire.StreamStart:
			if !c.handleStreamStart(el) {
				return
			}
		case wire.StreamEnd:
			// RFC 6120 §4.4: answer the closing tag with ours, then close.
			c.closeStream()
			return
		case wire.Stanza:
			if c.closing() {
				// A stream error was sent from another goroutine (conflict,
				// shutdown, account disabled): nothing more from this stream
				// is processed (RFC 6120 §4.9.1.1).
				return
			}
			if c.state == stWaitHeader {
				c.streamError(errNotWellFormed, "stanza before stream header")
				return
			}
			if !c.bucket.take(1) {
				c.srv.metrics.throttled.Add(1)
				time.Sleep(c.bucket.wait(1))
			}
			if !c.handleElement(el) {
				return
			}
			if o := c.resumedInto; o != nil {
				// XEP-0198 §5: from now on this connection serves the
				// resumed session; cleanup (deferred above) follows c.
				c = o
			}
		}
	}
}

func (c *conn) readError(err error) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		c.srv.metrics.streamErrors.Add(1)
		c.streamError(streamCondition(we.Condition), we.Text)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.state == stBound && c.smResumable() {
			// A silent link is the case resumption exists for: park the
			// session (XEP-0198 §5) instead of ending it with an error.
			return
		}
		if c.state != stBound {
			c.streamError(errConnectionTimeout, "negotiation took too long")
		} else {
			c.streamError(errConnectionTimeout, "no answer to ping")
		}
	default:
		c.srv.Logger.Debug("read failed", "remote", c.ip, "err", err)
	}
}

// connReader adapts the connection for the parser: it throttles the read
// rate, keeps deadlines, and turns the first idle timeout into an XEP-0199
// ping instead of an error.
type connReader struct {
	c      *conn
	tokens float64
	last   time.Time
}

func (r *connReader) Read(p []byte) (int, error) {
	if o := r.c.resumedInto; o != nil {
		r.c = o // the transport now serves a resumed session (adopt)
	}
	c := r.c
	s := c.srv
	for {
		closing := c.closing()
		if c.state == stBound && !closing {
			if c.pingOut.Load() {
				c.nc.SetReadDeadline(time.Now().Add(s.PingTimeout))
			} else {
				c.nc.SetReadDeadline(time.Now().Add(s.IdleTimeout))
			}
		}
		n, err := c.nc.Read(p)
		if n > 0 {
			c.pingOut.Store(false)
			r.throttle(n)
			return n, err
		}
		// Once closing, halfClose's short deadline is final: no ping and no
		// idle extension keeps a finished stream open.
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.state == stBound &&
			!closing && !c.pingOut.Load() && !s.DisableServerPings {
			c.pingOut.Store(true)
			c.sendServerPing()
			continue
		}
		return n, err
	}
}

// throttle sleeps when the connection reads faster than BytesPerSecond; TCP
// back-pressure then slows the sender instead of buffering its flood.
func (r *connReader) throttle(n int) {
	rate := float64(r.c.srv.BytesPerSecond)
	now := time.Now()
	if r.last.IsZero() {
		r.tokens = 2 * rate
	} else {
		r.tokens += now.Sub(r.last).Seconds() * rate
		if r.tokens > 2*rate {
			r.tokens = 2 * rate
		}
	}
	r.last = now
	r.tokens -= float64(n)
	if r.tokens < 0 {
		r.c.srv.metrics.throttled.Add(1)
		time.Sleep(time.Duration(-r.tokens / rate * float64(time.Second)))
	}
}

// send queues serialized bytes for the client. Parts are written back to
// back, so a stanza shared by many recipients is encoded once and only a
// small per-recipient piece (such as the to attribute) differs. It reports
// false when the session is closing.
//
// Once the stream is bound, one call is exactly one stanza: XEP-0198 counts
// calls, and XEP-0352 holds back or merges whole calls. Stream-level
// elements use sendNonza.
func (c *conn) send(parts ...[]byte) bool { return c.enqueue(parts, 0) }

// enqueue is send for one stanza; seq is the offline-store sequence of a
// stored message being delivered (0 otherwise), acked by XEP-0198.
func (c *conn) enqueue(parts [][]byte, seq uint64) bool {
	c.wmu.Lock()
	if c.hold {
		held, act := c.csiHold(parts, seq)
		if held {
			c.wmu.Unlock()
			c.doAction(act)
			return true
		}
		// csiHold flushed what it held; this stanza follows them.
		ok, act2 := c.queueLocked(parts, seq)
		c.wmu.Unlock()
		c.doAction(act | act2)
		return ok
	}
	ok, act := c.queueLocked(parts, seq)
	c.wmu.Unlock()
	if act != 0 {
		c.doAction(act)
	}
	return ok
}

// connAction is work queueLocked decided on but that must run after wmu is
// released.
type connAction uint8

const (
	actSlow       connAction = 1 << iota // slow consumer: close the socket
	actSMOverflow                        // XEP-0198 queue over its bound
)

// queueLocked queues one stanza for writing. With stream management it is
// also kept until acked, and it is accepted (true) until the session ends,
// even while no connection serves it.
func (c *conn) queueLocked(parts [][]byte, seq uint64) (bool, connAction) {
	managed, write, act := c.smQueueLocked(parts, seq)
	if managed && !write {
		return true, act
	}
	if !managed && c.wclosed {
		return false, 0
	}
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		c.wq = append(c.wq, p)
		c.wqBytes += len(p)
	}
	if managed {
		c.smRequestLocked()
	}
	if c.wqBytes > c.srv.OutQueueBytes {
		// Slow consumer: never buffer without bound (nats-server's rule).
		// With stream management the stanzas stay in its queue for a
		// resumption or offline storage.
		c.wclosed = true
		c.wq = nil
		c.wqBytes = 0
		return managed, act | actSlow
	}
	c.startFlushLocked()
	return true, act
}

// doAction runs what queueLocked decided, without wmu held.
func (c *conn) doAction(act connAction) {
	if act&actSlow != 0 {
		c.srv.metrics.slowConsumers.Add(1)
		c.srv.Logger.Warn("slow consumer disconnected", "jid", c.fullJID, "remote", c.ip)
		c.close()
	}
	if act&actSMOverflow != 0 {
		c.wmu.Lock()
		parked := c.parkedLocked()
		c.wmu.Unlock()
		if parked {
			c.smEnd(true)
		} else {
			c.streamError(errResourceConstraint, "too many unacknowledged stanzas")
		}
	}
}

// closing reports whether the stream is finished on our side: a stream
// error or closing tag is queued, or the connection was dropped.
func (c *conn) closing() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wclosed
}

func (c *conn) startFlushLocked() {
	if !c.flushing && len(c.wq) > 0 {
		c.flushing = true
		go c.flush()
	}
}

var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// flush drains the queue: all pending parts are coalesced into one write
// (one TLS record batch, one syscall), then the goroutine exits.
func (c *conn) flush() {
	bp := writeBufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 256<<10 {
			*bp = (*bp)[:0]
			writeBufPool.Put(bp)
		}
	}()
	// After the flusher clears flushing, XEP-0198 may hand the conn to a new
	// transport (adopt): what it does after that uses only the transport it
	// wrote to, never c.nc.
	var nc net.Conn
	for {
		c.wmu.Lock()
		if len(c.wq) == 0 {
			c.flushing = false
			closeAfter := c.closeErr
			if nc == nil {
				nc = c.nc
			}
			c.wcond.Broadcast()
			c.wmu.Unlock()
			if closeAfter {
				halfClose(nc)
			}
			return
		}
		q := c.wq
		c.wq = nil
		c.wqBytes = 0
		nc = c.nc
		c.wmu.Unlock()

		buf := (*bp)[:0]
		for _, p := range q {
			buf = append(buf, p...)
		}
		*bp = buf
		nc.SetWriteDeadline(time.Now().Add(c.srv.WriteTimeout))
		if _, err := nc.Write(buf); err != nil {
			c.wmu.Lock()
			c.wclosed = true
			c.wq = nil
			c.flushing = false
			c.wcond.Broadcast()
			c.wmu.Unlock()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.srv.metrics.slowConsumers.Add(1)
			}
			nc.Close()
			return
		}
		c.srv.metrics.bytesOut.Add(int64(len(buf)))
	}
}

// waitFlushed blocks until everything queued so far is written. Used before
// the TLS handshake takes over the socket.
func (c *conn) waitFlushed() {
	c.wmu.Lock()
	for c.flushing || (len(c.wq) > 0 && !c.wclosed) {
		c.wcond.Wait()
	}
	c.wmu.Unlock()
}

// swapConn replaces the transport (STARTTLS) once the queue is drained.
func (c *conn) swapConn(nc net.Conn) {
	c.wmu.Lock()
	c.nc = nc
	c.wmu.Unlock()
}

// halfClose ends our side after a stream error or close was flushed and
// gives the client a moment to read it before the reader's cleanup closes.
func halfClose(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(time.Second))
}

// close closes the current transport; closing twice is harmless.
func (c *conn) close() {
	c.wmu.Lock()
	c.wclosed = true
	nc := c.nc
	c.wmu.Unlock()
	nc.Close()
}

// cleanup runs once when the reader exits: the session leaves the registry
// (broadcasting unavailable presence) and the socket closes. A session with
// XEP-0198 resumption may instead outlive its connection (smDetach); its
// unacked messages go to offline storage when it ends (smRelease).
func (c *conn) cleanup() {
	detached := false
	if c.state == stBound {
		if detached = c.smDetach(); !detached {
			c.smStoreUnacked()
			c.unbindSession()
			c.smRelease()
		}
	}
	defer c.smReaderDone()
	if c.sasl != nil {
		c.sasl = nil
	}
	// Let a queued stream error reach the client before closing.
	done := make(chan struct{})
	go func() { c.waitFlushed(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	c.close()
	c.srv.ipLimits.release(c.ip)
	c.srv.trackConn(c, false)
	if detached {
		// After trackConn: Shutdown reads c.nc of the conns it tracks.
		c.dropTransport()
	}
}

// dropTransport lets go of the closed connection of a session that
// outlives it (XEP-0198 parking): a *tls.Conn keeps its record buffers and
// cipher state after Close, about 7 KB that a parked session never uses
// again (BenchmarkParkedSessionHeap). It runs before smReaderDone, so no
// resumption has adopted a new transport yet; no new flusher starts on the
// closed queue, and one still blocked in a write holds its own reference.
func (c *conn) dropTransport() {
	c.wmu.Lock()
	c.nc = parkedTransport{}
	c.wmu.Unlock()
}

// parkedTransport stands in for the connection of a parked session, so
// that code which closes or inspects c.nc needs no nil check. It has no
// state: every parked session shares the zero value.
type parkedTransport struct{}

var errParked = errors.New("xmppd: session parked: no connection")

func (parkedTransport) Read([]byte) (int, error)         { return 0, errParked }
func (parkedTransport) Write([]byte) (int, error)        { return 0, errParked }
func (parkedTransport) Close() error                     { return nil }
func (parkedTransport) LocalAddr() net.Addr              { return parkedAddr{} }
func (parkedTransport) RemoteAddr() net.Addr             { return parkedAddr{} }
func (parkedTransport) SetDeadline(time.Time) error      { return nil }
func (parkedTransport) SetReadDeadline(time.Time) error  { return nil }
func (parkedTransport) SetWriteDeadline(time.Time) error { return nil }

type parkedAddr struct{}

func (parkedAddr) Network() string { return "parked" }
func (parkedAddr) String() string  { return "parked" }

// closeStream answers the client's </stream:stream> with ours.
func (c *conn) closeStream() {
	c.wmu.Lock()
	c.noResume = true // a clean close ends the session (XEP-0198 §7)
	if c.wclosed {
		c.wmu.Unlock()
		return
	}
	c.wq = append(c.wq, []byte("</stream:stream>"))
	c.closeErr = true
	c.wclosed = true
	c.startFlushLocked()
	c.wmu.Unlock()
}

// rejectConn answers a connection refused by the per-IP limits with a
// policy-violation stream error so the client learns why.
func rejectConn(nc net.Conn) {
	nc.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(nc, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"+
		"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many connections from your address</text></stream:error></stream:stream>")
	nc.Close()
}

func directTLSConfig(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	cfg.NextProtos = []string{"xmpp-client"}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}
