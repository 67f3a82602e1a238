package ldapsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// UnavailableError reports that no directory server could answer: the
// directory is down or unreachable, or the service account was refused.
// Temporary reports true, so a login fails with temporary-auth-failure
// (RFC 6120 §6.5.11) rather than not-authorized.
type UnavailableError struct {
	Err error
}

func (e *UnavailableError) Error() string { return "ldapsync: directory unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Temporary reports true: trying again later may succeed.
func (e *UnavailableError) Temporary() bool { return true }

// Connection pools: one for the service account's searches, one for the
// binds of users logging in. A user bind changes a connection's identity,
// so those connections never search; and a service connection never binds
// as anyone else, so it needs no rebind.
const (
	// downFor is how long a server that failed to connect is tried only
	// after the others (a health check by use, without a probe loop).
	downFor = 30 * time.Second
	// maxConnAge retires pooled connections, so that after a failover the
	// pool moves back to the first server once it is up again.
	maxConnAge = 5 * time.Minute
)

type pool struct {
	s      *settings
	log    *slog.Logger
	bindDN string // service account; empty: anonymous
	bindPW string
	idle   chan *conn
	// slots bounds the connections in use: after a restart thousands of
	// clients log in at once, and the directory must see a queue of
	// binds, not thousands of connections.
	slots chan struct{}

	mu     sync.Mutex
	down   map[string]time.Time // URL -> until when it sorts last
	closed bool
}

type conn struct {
	l      *ldap.Conn
	url    *serverURL
	born   time.Time
	broken bool // unusable: closed, timed out, or mid-operation when ctx ended
}

func newPool(s *settings, log *slog.Logger, bindDN, bindPW string) *pool {
	return &pool{s: s, log: log, bindDN: bindDN, bindPW: bindPW,
		idle: make(chan *conn, s.PoolSize), slots: make(chan struct{}, 4*s.PoolSize),
		down: map[string]time.Time{}}
}

// do runs fn on a pooled connection. ctx ending closes the connection,
// which aborts the operation in flight. A pooled connection the server
// closed while idle gets one retry on a fresh connection.
func (p *pool) do(ctx context.Context, fn func(c *conn) error) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return &UnavailableError{Err: fmt.Errorf("waiting for a directory connection: %w", ctx.Err())}
	}
	defer func() { <-p.slots }()
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = c.run(ctx, fn)
		p.put(c)
		if err != nil && c.broken && reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return err
	}
}

func (c *conn) run(ctx context.Context, fn func(c *conn) error) error {
	stop := context.AfterFunc(ctx, func() { c.l.Close() })
	err := fn(c)
	if !stop() {
		c.broken = true
		if err != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}
	if c.l.IsClosing() || lostConn(err) {
		c.broken = true
	}
	return err
}

// lostConn reports whether err means the connection failed (network,
// timeout, server going away) rather than the server answering no.
func lostConn(err error) bool {
	var le *ldap.Error
	return errors.As(err, &le) && !answered(err)
}

// answered reports whether err is a result the server sent, after which
// the connection is still good, as opposed to a network failure, a
// timeout or a server shutting down.
func answered(err error) bool {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return false
	}
	switch le.ResultCode {
	case ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultServerDown,
		ldap.LDAPResultTimeout, ldap.LDAPResultConnectError, ldap.LDAPResultOther:
		return false
	}
	return le.ResultCode < ldap.ErrorNetwork
}

// unavailable wraps err as an UnavailableError unless the server answered
// it (a search error that is a configuration matter stays as it is).
func unavailable(err error) error {
	var ue *UnavailableError
	if err == nil || errors.As(err, &ue) || answered(err) {
		return err
	}
	return &UnavailableError{Err: err}
}

func (p *pool) get(ctx context.Context) (c *conn, reused bool, err error) {
	for {
		select {
		case c := <-p.idle:
			if c.l.IsClosing() || time.Since(c.born) > maxConnAge {
				c.l.Close()
				continue
			}
			return c, true, nil
		default:
		}
		c, err := p.dial(ctx)
		return c, false, err
	}
}

func (p *pool) put(c *conn) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if c.broken || closed || c.l.IsClosing() {
		c.l.Close()
		return
	}
	select {
	case p.idle <- c:
	default:
		c.l.Close()
	}
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			c.l.Close()
		default:
			return
		}
	}
}

// order returns the servers to try: the healthy ones in configured order,
// then the ones that failed recently, so a dead first server costs one
// dial timeout per downFor rather than one per operation.
func (p *pool) order() []*serverURL {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	out := make([]*serverURL, 0, len(p.s.urls))
	var late []*serverURL
	for i := range p.s.urls {
		u := &p.s.urls[i]
		if now.Before(p.down[u.raw]) {
			late = append(late, u)
		} else {
			out = append(out, u)
		}
	}
	return append(out, late...)
}

func (p *pool) mark(u *serverURL, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.down, u.raw)
		return
	}
	if _, was := p.down[u.raw]; !was || time.Now().After(p.down[u.raw]) {
		p.log.Warn("ldapsync: directory server failed", "url", u.raw, "err", err)
	}
	p.down[u.raw] = time.Now().Add(downFor)
}

// dial connects to the first server that answers, in p.order().
func (p *pool) dial(ctx context.Context) (*conn, error) {
	var errs []error
	for _, u := range p.order() {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		c, err := dialServer(ctx, p.s, u, p.bindDN, p.bindPW)
		p.mark(u, err)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, &UnavailableError{Err: errors.Join(errs...)}
}

// dialServer opens one connection: TCP, TLS (ldaps:// or StartTLS; on any
// TLS failure the connection is closed, never used in clear), then the
// service bind. Each step is bounded by DialTimeout.
func dialServer(ctx context.Context, s *settings, u *serverURL, bindDN, bindPW string) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", u.hostport)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.raw, err)
	}
	deadline, _ := ctx.Deadline()
	var l *ldap.Conn
	switch {
	case u.tls || s.StartTLS:
		// StartTLS is done here on the raw connection rather than with
		// go-ldap's, which flattens the handshake error into a string:
		// Check must tell an unknown CA from a wrong host name.
		raw.SetDeadline(deadline)
		if !u.tls {
			if err := startTLS(raw); err != nil {
				raw.Close()
				return nil, &tlsError{url: u.raw, startTLS: true, err: err}
			}
		}
		tc := tls.Client(raw, u.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &tlsError{url: u.raw, startTLS: !u.tls, err: err}
		}
		raw.SetDeadline(time.Time{})
		l = ldap.NewConn(tc, true)
	default:
		l = ldap.NewConn(raw, false)
	}
	l.Start()
	l.SetTimeout(s.RequestTimeout)
	// Whatever goes wrong below, the ldap.Conn must be closed; ctx ending
	// (the dial timeout) closes it too, which unblocks the Bind.
	stop := context.AfterFunc(ctx, func() { l.Close() })
	fail := func(err error) (*conn, error) {
		stop()
		l.Close()
		return nil, err
	}
	if bindDN != "" {
		if err := l.Bind(bindDN, bindPW); err != nil {
			if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				return fail(&serviceBindError{url: u.raw, dn: bindDN, err: err})
			}
			return fail(fmt.Errorf("%s: bind as %s: %w", u.raw, bindDN, err))
		}
	}
	if !stop() {
		return fail(fmt.Errorf("%s: %w", u.raw, ctx.Err()))
	}
	return &conn{l: l, url: u, born: time.Now()}, nil
}

// oidStartTLS names the StartTLS extended operation (RFC 4511 §4.14.1).
const oidStartTLS = "1.3.6.1.4.1.1466.20037"

// startTLS sends the StartTLS extended request as message 1 and reads
// the response, on a connection nothing else has used yet. The request is
// constant, so it is spelled out in BER:
//
//	30 1d            LDAPMessage SEQUENCE
//	   02 01 01      messageID 1
//	   77 18         [APPLICATION 23] ExtendedRequest
//	      80 16 ...  [0] requestName: the OID
func startTLS(c net.Conn) error {
	req := append([]byte{0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16}, oidStartTLS...)
	if _, err := c.Write(req); err != nil {
		return err
	}
	body, err := readBER(c, 0x30)
	if err != nil {
		return fmt.Errorf("reading the StartTLS response: %w", err)
	}
	// messageID, then [APPLICATION 24] ExtendedResponse whose first
	// element is the resultCode ENUMERATED (RFC 4511 §4.1.9, §4.12).
	id, rest, ok := berTLV(body)
	if !ok || id.tag != 0x02 {
		return errors.New("malformed StartTLS response")
	}
	resp, _, ok := berTLV(rest)
	if !ok || resp.tag != 0x78 {
		return fmt.Errorf("unexpected answer to StartTLS (BER tag %#x)", resp.tag)
	}
	code, rest, ok := berTLV(resp.value)
	if !ok || code.tag != 0x0a || len(code.value) != 1 {
		return errors.New("malformed StartTLS response")
	}
	if code.value[0] != 0 {
		_, rest, _ = berTLV(rest) // matchedDN
		diag, _, _ := berTLV(rest)
		return fmt.Errorf("the server refused StartTLS: LDAP result %d %s %q", code.value[0],
			ldap.LDAPResultCodeMap[uint16(code.value[0])], diag.value)
	}
	return nil
}

type tlv struct {
	tag   byte
	value []byte
}

// berTLV splits one definite-length BER element off b.
func berTLV(b []byte) (tlv, []byte, bool) {
	if len(b) < 2 {
		return tlv{}, nil, false
	}
	tag, n, hdr := b[0], int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return tlv{}, nil, false
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	if len(b) < hdr+n {
		return tlv{}, nil, false
	}
	return tlv{tag: tag, value: b[hdr : hdr+n]}, b[hdr+n:], true
}

// readBER reads one BER element with the given tag from r and returns its
// value; at most 64 KiB, plenty for a StartTLS response.
func readBER(r io.Reader, tag byte) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != tag {
		return nil, fmt.Errorf("unexpected BER tag %#x", hdr[0])
	}
	n := int(hdr[1])
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 2 {
			return nil, errors.New("BER length too long")
		}
		var lb [2]byte
		if _, err := io.ReadFull(r, lb[:k]); err != nil {
			return nil, err
		}
		n = 0
		for _, c := range lb[:k] {
			n = n<<8 | int(c)
		}
	}
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	return body, err
}

// tlsError is a failed TLS handshake or StartTLS: the connection was
// closed and nothing was sent in clear.
type tlsError struct {
	url      string
	startTLS bool
	err      error
}

func (e *tlsError) Error() string {
	if e.startTLS {
		return fmt.Sprintf("%s: StartTLS failed, connection closed (no fallback to plaintext): %v", e.url, e.err)
	}
	return fmt.Sprintf("%s: TLS handshake failed: %v", e.url, e.err)
}
func (e *tlsError) Unwrap() error { return e.err }

// serviceBindError is the directory refusing the service account.
type serviceBindError struct {
	url, dn string
	err     error
}

func (e *serviceBindError) Error() string {
	return fmt.Sprintf("%s: the directory refused the service account %s (wrong bind DN or password): %v", e.url, e.dn, e.err)
}
func (e *serviceBindError) Unwrap() error { return e.err }
