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
	headerSent bool
	streamID   string
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

	closeOnce sync.Once
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
	c.p = wire.NewParser(&connReader{c: c}, wire.Limits{MaxStanzaBytes: s.MaxStanzaBytes})
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
func (c *conn) send(parts ...[]byte) bool {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return false
	}
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		c.wq = append(c.wq, p)
		c.wqBytes += len(p)
	}
	if c.wqBytes > c.srv.OutQueueBytes {
		// Slow consumer: never buffer without bound (nats-server's rule).
		c.wclosed = true
		c.wq = nil
		c.wqBytes = 0
		c.wmu.Unlock()
		c.srv.metrics.slowConsumers.Add(1)
		c.srv.Logger.Warn("slow consumer disconnected", "jid", c.fullJID, "remote", c.ip)
		c.close()
		return false
	}
	c.startFlushLocked()
	c.wmu.Unlock()
	return true
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
	for {
		c.wmu.Lock()
		if len(c.wq) == 0 {
			c.flushing = false
			closeAfter := c.closeErr
			c.wcond.Broadcast()
			c.wmu.Unlock()
			if closeAfter {
				c.halfClose()
			}
			return
		}
		q := c.wq
		c.wq = nil
		c.wqBytes = 0
		nc := c.nc
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
			c.close()
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
func (c *conn) halfClose() {
	c.wmu.Lock()
	nc := c.nc
	c.wmu.Unlock()
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(time.Second))
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		c.wclosed = true
		nc := c.nc
		c.wmu.Unlock()
		nc.Close()
	})
}

// cleanup runs once when the reader exits: the session leaves the registry
// (broadcasting unavailable presence) and the socket closes.
func (c *conn) cleanup() {
	if c.state == stBound {
		c.unbindSession()
	}
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
}

// closeStream answers the client's </stream:stream> with ours.
func (c *conn) closeStream() {
	c.wmu.Lock()
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
