package xmppd

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/xmppd/wire"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return idEncoding.EncodeToString(b)
}

// appendHeader appends our stream header. Call it with c.wmu held: the
// header state (headerSent, streamID) is shared with streamError, which
// other goroutines call (Shutdown, a conflicting bind).
func (c *conn) appendHeader(b []byte) []byte {
	if c.streamID == "" {
		c.streamID = randomID(10)
	}
	c.headerSent = true
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='"...)
	b = append(b, c.streamID...)
	b = append(b, "' from='"...)
	b = wire.AppendAttrEscaped(b, c.srv.Domain)
	b = append(b, "' version='1.0' xml:lang='en'>"...)
	return b
}

// handleStreamStart checks the client's stream header (RFC 6120 §4.7, §4.8)
// and answers with our header and the features of the current stage.
func (c *conn) handleStreamStart(el *wire.Element) bool {
	c.wmu.Lock()
	c.streamID = randomID(10)
	c.wmu.Unlock()
	if el.Local != "stream" || el.Space != nsStream {
		c.streamError(errInvalidNamespace, "")
		return false
	}
	if el.Attr("xmlns") != nsClient {
		// jabber:server streams (s2s) are not served here.
		c.streamError(errInvalidNamespace, "this port serves jabber:client streams")
		return false
	}
	if to := el.Attr("to"); to != "" {
		d, err := jid.Parse(to)
		if err != nil || d.Localpart() != "" || d.Resourcepart() != "" || d.Domainpart() != c.srv.Domain {
			c.streamError(errHostUnknown, "this server does not serve that domain")
			return false
		}
	}
	if v := el.Attr("version"); v == "" || !strings.HasPrefix(v, "1.") {
		c.streamError(errUnsupportedVersion, "version 1.0 is required")
		return false
	}
	c.lang = el.Attr("xml:lang")
	c.sendHeader(c.appendFeatures(make([]byte, 0, 512)))
	c.state = stNegotiating
	return true
}

// sendHeader queues our stream header followed by features. Deciding and
// queueing under one lock means a concurrent streamError can neither come
// without a header nor bring a second one.
func (c *conn) sendHeader(features []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	b := c.appendHeader(make([]byte, 0, 256+len(features)))
	b = append(b, features...)
	c.wq = append(c.wq, b)
	c.wqBytes += len(b)
	c.startFlushLocked()
}

// restartStream forgets our header so the next one is sent (RFC 6120
// §4.3.3); headerSent is shared with streamError.
func (c *conn) restartStream() {
	c.wmu.Lock()
	c.headerSent = false
	c.wmu.Unlock()
}

func (c *conn) tlsRequired() bool { return !c.secure && !c.srv.AllowPlaintext }

func (c *conn) appendFeatures(b []byte) []byte {
	s := c.srv
	b = append(b, "<stream:features>"...)
	switch {
	case !c.authed:
		if !c.secure && s.TLSConfig != nil {
			b = append(b, "<starttls xmlns='"+nsTLS+"'>"...)
			if c.tlsRequired() {
				b = append(b, "<required/>"...)
			}
			b = append(b, "</starttls>"...)
		}
		if !c.tlsRequired() {
			b = append(b, "<mechanisms xmlns='"+nsSASL+"'>"...)
			for _, m := range c.mechanisms() {
				b = append(b, "<mechanism>"...)
				b = append(b, m...)
				b = append(b, "</mechanism>"...)
			}
			b = append(b, "</mechanisms>"...)
		}
	default:
		b = append(b, "<bind xmlns='"+nsBind+"'/>"...)
		// RFC 3921 sessions are a no-op kept for old clients; <optional/>
		// tells new ones to skip it (draft-cridland-xmpp-session-01).
		b = append(b, "<session xmlns='"+nsSession+"'><optional/></session>"...)
		b = append(b, "<ver xmlns='"+nsRosterVer+"'/>"...)
		b = append(b, "<sub xmlns='"+nsPreApproval+"'/>"...)
		for _, f := range s.extraFeatures {
			b = append(b, f...)
		}
	}
	return append(b, "</stream:features>"...)
}

// handleElement dispatches one top-level element according to the stream
// state. It returns false when the connection must end.
func (c *conn) handleElement(el *wire.Element) bool {
	if c.state == stBound {
		return c.handleStanza(el)
	}
	switch {
	case el.Space == nsTLS && el.Local == "starttls":
		return c.handleStartTLS()
	case el.Space == nsSASL:
		return c.handleSASL(el)
	case c.authed && el.Space == nsClient && el.Local == "iq":
		return c.handleBindIQ(el)
	case c.authed && el.Space == nsSM:
		return c.handleSMUnbound(el) // XEP-0198 §5: resumption instead of binding
	case !c.authed && el.Space == nsClient && el.Local == "iq" && el.Child(nsRegister, "query") != nil && c.preAuthIQs < 3:
		// A client's "create account" (XEP-0077 §3.1, before login): the
		// server has no in-band registration, and the user should learn
		// where accounts come from rather than see the stream close. A
		// few answers, then the rule below: nothing else before auth.
		c.preAuthIQs++
		r := errorReply(el, "", errServiceUnavailable.withText("accounts and passwords are managed in the company directory; ask your IT department"))
		c.sendElement(r)
		return true
	}
	// RFC 6120 §6.4.8 / §7.2: nothing else is processed before auth and bind.
	c.streamError(errNotAuthorized, "authenticate and bind a resource first")
	return false
}

// handleStartTLS implements RFC 6120 §5.4.
func (c *conn) handleStartTLS() bool {
	if c.secure || c.authed || c.srv.TLSConfig == nil {
		c.send([]byte("<failure xmlns='" + nsTLS + "'/></stream:stream>"))
		c.closeStream()
		return false
	}
	c.send([]byte("<proceed xmlns='" + nsTLS + "'/>"))
	c.waitFlushed()
	cfg := c.srv.TLSConfig
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg = cfg.Clone()
		cfg.MinVersion = tls.VersionTLS12
	}
	tc := tls.Server(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		c.srv.Logger.Debug("STARTTLS handshake failed", "remote", c.ip, "err", err)
		return false
	}
	c.swapConn(tc)
	c.secure = true
	c.restartStream()
	c.state = stWaitHeader
	c.p.Reset(&connReader{c: c})
	return true
}

// handleBindIQ implements resource binding (RFC 6120 §7) and the legacy
// session establishment no-op.
func (c *conn) handleBindIQ(el *wire.Element) bool {
	id := el.Attr("id")
	if el.Attr("type") != "set" {
		c.sendElement(errorReply(el, "", errNotAllowed.withText("bind a resource first")))
		return true
	}
	b := el.Child(nsBind, "bind")
	if b == nil {
		if el.Child(nsSession, "session") != nil {
			c.sendElement(elem(nsClient, "iq", "type", "result", "id", id))
			return true
		}
		c.sendElement(errorReply(el, "", errNotAllowed.withText("bind a resource first")))
		return true
	}
	res := ""
	if r := b.Child(nsBind, "resource"); r != nil {
		res = strings.TrimSpace(r.Text())
	}
	if res == "" {
		res = randomID(8)
	}
	j, err := jid.New(c.user, c.srv.Domain, res)
	if err != nil || j.Resourcepart() == "" {
		c.sendElement(errorReply(el, "", errBadRequest.withText("invalid resource")))
		return true
	}
	c.resource = j.Resourcepart()
	c.fullJID = j.String()
	c.bareJID = j.Bare().String()
	c.toAttr = appendAttr(nil, "to", c.fullJID)
	replaced, ok := c.srv.router.bind(c, c.srv.MaxSessionsPerUser)
	if !ok {
		c.fullJID, c.bareJID, c.resource = "", "", ""
		text := "too many sessions for this account"
		if c.srv.router.isFrozen(c.user) {
			text = "this account's data is being erased"
		}
		c.sendElement(errorReply(el, "", errResConstraint.withText(text)))
		return true
	}
	if _, exists := c.srv.Directory.Person(c.user); !exists {
		// The directory removed or disabled the account between this
		// stream's authentication and its bind. The sync that did so
		// either closed this session (bound before it looked) or left the
		// person out of the snapshot this checks (bound after).
		const gone = "the account is no longer in the company directory"
		if replaced != nil {
			replaced.streamError(errNotAuthorized, gone)
			replaced.goUnavailable(nil)
		}
		c.srv.router.unbind(c)
		c.fullJID, c.bareJID, c.resource = "", "", ""
		c.streamError(errNotAuthorized, gone)
		return false
	}
	if replaced != nil {
		// RFC 6120 §7.7.2.2: the new session wins; the old one gets <conflict/>.
		replaced.streamError(errConflict, "replaced by a new connection")
		// Its unavailable presence goes out now: sent later by its own
		// cleanup it would arrive after the new session's presence under the
		// same full JID and make the live session look offline.
		replaced.goUnavailable(nil)
	}
	c.state = stBound
	c.nc.SetDeadline(time.Time{})
	c.srv.metrics.sessions.Add(1)
	c.srv.metrics.logins.Add(1)
	c.srv.Logger.Info("session bound", "jid", c.fullJID, "remote", c.ip, "tls", c.secure, "mech", c.mech)

	r := elem(nsClient, "iq", "type", "result", "id", id)
	jb := elem(nsBind, "bind")
	jb.Add((&wire.Element{Space: nsBind, Local: "jid"}).AddText(c.fullJID))
	r.Add(jb)
	c.sendElement(r)
	return true
}

// unbindSession removes a bound session: unavailable presence goes to
// everyone who saw it available (RFC 6121 §4.5.2 on connection loss).
func (c *conn) unbindSession() {
	c.goUnavailable(nil)
	c.srv.router.unbind(c)
	c.srv.metrics.sessions.Add(-1)
	c.srv.Logger.Info("session ended", "jid", c.fullJID, "remote", c.ip)
}

// sendElement serializes el for this client.
func (c *conn) sendElement(el *wire.Element) bool {
	return c.send(el.AppendXML(make([]byte, 0, 256), nsClient))
}

// appendAttr appends ` name="value"` with escaping.
func appendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = wire.AppendAttrEscaped(b, value)
	return append(b, '"')
}
