package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Namespaces and fixed elements of the client handshake.
const (
	nsStream = "http://etherx.jabber.org/streams"
	nsTLS    = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL   = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind   = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSess   = "urn:ietf:params:xml:ns:xmpp-session"
)

// maxToken bounds one top-level element read by the client; a stanza
// larger than this is a server bug as far as the benchmark is concerned.
const maxToken = 1 << 20

// clientConfig is what every session of a run shares.
type clientConfig struct {
	Addr     string
	Domain   string
	Password string
	Resource string
	// STARTTLS: negotiate TLS (RFC 6120 §5) before authenticating;
	// otherwise the server must offer SASL on the plaintext stream.
	STARTTLS bool
	TLS      *tls.Config
	// Timeout bounds the whole login (dial to bind).
	Timeout time.Duration
	// SM enables XEP-0198 stream management with resumption after
	// binding.
	SM bool
	// Sources are local addresses dialled from, round robin, to get more
	// than one ephemeral port range; nil dials from the default address.
	Sources []*net.TCPAddr
	next    atomic.Uint64
	// tlsInfo describes the first TLS connection made ("TLS 1.3
	// TLS_AES_128_GCM_SHA256"), for the report.
	tlsInfo atomic.Pointer[string]
}

// session is one logged-in, bound client stream.
type session struct {
	conn  net.Conn // the TLS connection when TLS is on
	raw   net.Conn // the TCP connection under it
	split streamSplitter
	sc    *bufio.Scanner

	wmu sync.Mutex // guards w: stanzas and iq answers come from two goroutines
	w   *bufio.Writer

	user string
	jid  string // full JID from resource binding

	sm smCounter // XEP-0198 counting, when enabled
	// gone is set by an idle reader when the server closed the stream.
	gone bool
}

// loginError says which step of the handshake failed.
type loginError struct {
	Step string // "dial", "stream", "starttls", "tls", "sasl", "bind", "session", "sm", "presence", "resume"
	User string
	Err  error
}

func (e *loginError) Error() string {
	return fmt.Sprintf("xmppbench: %s: %s: %v", e.User, e.Step, e.Err)
}

func (e *loginError) Unwrap() error { return e.Err }

// login opens a stream for user and takes it through STARTTLS (if
// configured), SASL PLAIN, resource binding, stream management (if
// configured) and, if presence is set, an initial presence.
func (c *clientConfig) login(ctx context.Context, user string, presence bool) (*session, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	s, feats, err := c.authenticate(ctx, user)
	if err != nil {
		return nil, err
	}
	fail := func(step string, err error) (*session, error) {
		s.raw.Close()
		return nil, &loginError{Step: step, User: user, Err: err}
	}

	// RFC 6120 §7.6.1: ask for our resource; the server may pick another.
	res := ""
	if c.Resource != "" {
		res = "<resource>" + c.Resource + "</resource>"
	}
	tok, err := s.roundTrip("<iq type='set' id='bind1'><bind xmlns='" + nsBind + "'>" + res + "</bind></iq>")
	if err != nil {
		return fail("bind", err)
	}
	if t, _, _ := attr(tok, "type"); !bytes.Equal(t, []byte("result")) {
		return fail("bind", fmt.Errorf("answered %s", tok))
	}
	jid, found := childText(tok, "jid")
	if !found || len(jid) == 0 {
		return fail("bind", fmt.Errorf("no jid in %s", tok))
	}
	s.jid = string(jid)

	// RFC 3921 §3 session establishment, only where a server still insists
	// (RFC 6121 Appendix E lets servers mark it optional).
	if sessionRequired(feats) {
		tok, err = s.roundTrip("<iq type='set' id='sess1'><session xmlns='" + nsSess + "'/></iq>")
		if err != nil {
			return fail("session", err)
		}
		if t, _, _ := attr(tok, "type"); !bytes.Equal(t, []byte("result")) {
			return fail("session", fmt.Errorf("answered %s", tok))
		}
	}
	if c.SM {
		// XEP-0198 §3: after binding; before the initial presence, so that
		// every stanza the session receives is counted, as clients do.
		if !offersSM(feats) {
			return fail("sm", fmt.Errorf("stream management not offered in %s", feats))
		}
		if err := s.enableSM(); err != nil {
			return fail("sm", err)
		}
	}
	if presence {
		// RFC 6121 §4.2.1 initial presence.
		s.w.WriteString("<presence/>")
		if err := s.w.Flush(); err != nil {
			return fail("presence", err)
		}
	}
	s.raw.SetDeadline(time.Time{})
	return s, nil
}

// withTimeout bounds one login by c.Timeout.
func (c *clientConfig) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.Timeout > 0 {
		return context.WithTimeout(ctx, c.Timeout)
	}
	return ctx, func() {}
}

// authenticate dials, negotiates STARTTLS (if configured) and SASL PLAIN,
// and returns the session with the stream restarted after SASL and its
// features (resource binding, stream management). The connection has
// ctx's deadline; on error it is closed.
func (c *clientConfig) authenticate(ctx context.Context, user string) (*session, []byte, error) {
	fail := func(step string, err error) (*session, []byte, error) {
		return nil, nil, &loginError{Step: step, User: user, Err: err}
	}
	d := net.Dialer{}
	if n := len(c.Sources); n > 0 {
		d.LocalAddr = c.Sources[c.next.Add(1)%uint64(n)]
	}
	raw, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fail("dial", err)
	}
	s := &session{conn: raw, raw: raw, user: user}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	if dl, has := ctx.Deadline(); has {
		raw.SetDeadline(dl)
	}
	s.reset(raw)

	feats, err := s.open(c.Domain)
	if err != nil {
		return fail("stream", err)
	}
	if c.STARTTLS {
		if !bytes.Contains(feats, []byte("<starttls")) {
			return fail("starttls", fmt.Errorf("not offered in %s", feats))
		}
		// RFC 6120 §5.4.2.1.
		tok, err := s.roundTrip("<starttls xmlns='" + nsTLS + "'/>")
		if err != nil {
			return fail("starttls", err)
		}
		if !bytes.Equal(tokenName(tok), []byte("proceed")) {
			return fail("starttls", fmt.Errorf("answered %s", tok))
		}
		cfg := c.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: c.Domain}
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("tls", err)
		}
		if c.tlsInfo.Load() == nil {
			st := tc.ConnectionState()
			info := tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
			if st.CurveID != 0 {
				info += " " + st.CurveID.String()
			}
			c.tlsInfo.CompareAndSwap(nil, &info)
		}
		s.conn = tc
		s.reset(tc)
		// RFC 6120 §5.4.3.3: the stream restarts over TLS.
		if feats, err = s.open(c.Domain); err != nil {
			return fail("stream", err)
		}
	} else if starttlsRequired(feats) {
		return fail("starttls", fmt.Errorf("server requires STARTTLS; run with -tls=true"))
	}

	if !offersMechanism(feats, "PLAIN") {
		return fail("sasl", fmt.Errorf("PLAIN not offered in %s", feats))
	}
	// RFC 6120 §6.4.2 with the PLAIN mechanism of RFC 4616.
	tok, err := s.roundTrip("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + saslPlain(user, c.Password) + "</auth>")
	if err != nil {
		return fail("sasl", err)
	}
	if !bytes.Equal(tokenName(tok), []byte("success")) {
		return fail("sasl", fmt.Errorf("answered %s", tok))
	}
	// RFC 6120 §6.4.6: restart the stream on the same connection.
	s.split.reset()
	if feats, err = s.open(c.Domain); err != nil {
		return fail("stream", err)
	}
	ok = true
	return s, feats, nil
}

// reset makes s read and write conn with fresh buffers, as a new stream
// over a new transport needs. The buffers start small: an idle session
// should cost the load generator little.
func (s *session) reset(conn net.Conn) {
	s.split.reset()
	s.sc = bufio.NewScanner(conn)
	s.sc.Buffer(make([]byte, 0, 2048), maxToken)
	s.sc.Split(s.split.split)
	s.w = bufio.NewWriterSize(conn, 2048)
}

// open sends a stream header (RFC 6120 §4.7) and returns the stream
// features that follow the server's answer.
func (s *session) open(domain string) ([]byte, error) {
	s.w.WriteString("<?xml version='1.0'?><stream:stream to='" + domain +
		"' version='1.0' xmlns='jabber:client' xmlns:stream='" + nsStream + "'>")
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	tok, err := s.next()
	if err != nil {
		return nil, err
	}
	if !s.split.open {
		return nil, fmt.Errorf("expected a stream header, got %s", tok)
	}
	tok, err = s.next()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tokenName(tok), []byte("stream:features")) {
		return nil, fmt.Errorf("expected stream features, got %s", tok)
	}
	return tok, nil
}

// roundTrip writes one element and returns the next top-level element the
// server sends. During the handshake nothing else is expected.
func (s *session) roundTrip(out string) ([]byte, error) {
	s.w.WriteString(out)
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	return s.next()
}

// next returns the next top-level token, or an error for a closed stream
// or a stream error (RFC 6120 §4.9). The token is valid until the next
// call.
func (s *session) next() ([]byte, error) {
	if !s.sc.Scan() {
		if err := s.sc.Err(); err != nil {
			return nil, err
		}
		return nil, errStreamEOF
	}
	tok := s.sc.Bytes()
	if streamEnded(tok) {
		return nil, &streamError{raw: string(tok)}
	}
	return tok, nil
}

// streamEnded reports a token that ends the stream: </stream:stream> or a
// <stream:error/> (RFC 6120 §4.9).
func streamEnded(tok []byte) bool {
	return len(tok) > 2 && tok[1] == '/' ||
		bytes.HasPrefix(tok, []byte("<stream:error"))
}

// streamError is a stream error or close sent by the server.
type streamError struct{ raw string }

func (e *streamError) Error() string { return "server closed the stream: " + e.raw }

var errStreamEOF = fmt.Errorf("connection closed by server")

// write sends b and flushes it; it is safe to call from any goroutine.
func (s *session) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.w.Write(b)
	return s.w.Flush()
}

// close ends the stream politely (RFC 6120 §4.4) and closes the
// connection without waiting for the server's own close.
func (s *session) close() {
	s.wmu.Lock()
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.w.WriteString("</stream:stream>")
	s.w.Flush()
	s.wmu.Unlock()
	s.conn.Close()
}

// readLoop reads stanzas until the stream ends, hands each one to
// onStanza (which must not keep it) and answers iq requests so a server
// that pings idle clients (XEP-0199) keeps them. With stream management on
// it counts every stanza and answers each <r/> at once with <a h/>
// (XEP-0198 §4); the SM nonzas are not handed to onStanza. It returns the
// reason the stream ended.
func (s *session) readLoop(onStanza func(tok []byte)) error {
	for {
		tok, err := s.next()
		if err != nil {
			return err
		}
		if s.sm.on {
			// Counted when read: the iq answered below and a message
			// onStanza sees are handled as far as the server is concerned.
			switch s.sm.see(tok) {
			case smRequest:
				if err := s.write(s.sm.ack()); err != nil {
					return err
				}
				continue
			case smNonza:
				continue
			}
		}
		if len(tok) > 3 && tok[1] == 'i' && tok[2] == 'q' {
			s.answerIQ(tok)
			continue
		}
		if onStanza != nil {
			onStanza(tok)
		}
	}
}

// answerIQ replies to an iq get or set: a result to a ping (XEP-0199 §4.2),
// service-unavailable to anything else (RFC 6120 §8.4).
func (s *session) answerIQ(tok []byte) {
	typ, _, _ := attr(tok, "type")
	if !bytes.Equal(typ, []byte("get")) && !bytes.Equal(typ, []byte("set")) {
		return
	}
	var b bytes.Buffer
	b.WriteString("<iq")
	if id, q, ok := attr(tok, "id"); ok {
		b.WriteString(" id=" + string(q))
		b.Write(id)
		b.WriteByte(q)
	}
	if from, q, ok := attr(tok, "from"); ok {
		b.WriteString(" to=" + string(q))
		b.Write(from)
		b.WriteByte(q)
	}
	if bytes.Contains(tok, []byte("urn:xmpp:ping")) {
		b.WriteString(" type='result'/>")
	} else {
		b.WriteString(" type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	}
	s.write(b.Bytes())
}

// saslPlain is the initial response of SASL PLAIN (RFC 4616 §2):
// [authzid] NUL authcid NUL passwd, with an empty authzid, base64-encoded
// as RFC 6120 §6.4.2 requires.
func saslPlain(user, password string) string {
	msg := make([]byte, 0, 2+len(user)+len(password))
	msg = append(msg, 0)
	msg = append(msg, user...)
	msg = append(msg, 0)
	msg = append(msg, password...)
	return base64.StdEncoding.EncodeToString(msg)
}

// offersMechanism reports whether the features list mech among the SASL
// mechanisms (RFC 6120 §6.4.1).
func offersMechanism(feats []byte, mech string) bool {
	i := bytes.Index(feats, []byte("<mechanisms"))
	if i < 0 {
		return false
	}
	return bytes.Contains(feats[i:], []byte("<mechanism>"+mech+"</mechanism>"))
}

// starttlsRequired reports a <starttls><required/></starttls> feature
// (RFC 6120 §5.3.1).
func starttlsRequired(feats []byte) bool {
	return featureHas(feats, "starttls", "<required")
}

// sessionRequired reports a session feature not marked <optional/>.
func sessionRequired(feats []byte) bool {
	i := bytes.Index(feats, []byte("<session"))
	if i < 0 || !bytes.Contains(feats[i:], []byte(nsSess)) {
		return false
	}
	return !featureHas(feats, "session", "<optional")
}

// featureHas reports whether the feature element name inside feats holds
// child (a prefix such as "<required").
func featureHas(feats []byte, name, child string) bool {
	i := bytes.Index(feats, []byte("<"+name))
	if i < 0 {
		return false
	}
	f := feats[i:]
	gt := tagEnd(f, 1)
	if gt < 0 || f[gt-1] == '/' {
		return false // <starttls .../>: no children
	}
	end := bytes.Index(f, []byte("</"+name))
	if end < 0 {
		return false
	}
	return bytes.Contains(f[gt:end], []byte(child))
}
