package xmppd

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// saslExchange is an authentication in progress (SCRAM takes two rounds).
type saslExchange struct {
	mech     string
	neg      *sasl.Negotiator
	username string // normalized, set by the credential lookup
	authzErr bool
}

// mechanisms lists what this stream may offer (RFC 6120 §6.3.3). PLAIN is
// only offered inside TLS unless plaintext was explicitly allowed; SCRAM only
// when every account has salted credentials; -PLUS variants never (no
// channel binding is implemented).
func (c *conn) mechanisms() []string {
	var m []string
	if c.srv.SCRAM != nil && c.srv.SCRAM.SCRAMReady() {
		m = append(m, "SCRAM-SHA-256", "SCRAM-SHA-1")
	}
	if c.secure || c.srv.AllowPlaintext {
		m = append(m, "PLAIN")
	}
	return m
}

func saslFailure(cond, text string) []byte {
	b := []byte("<failure xmlns='" + nsSASL + "'><" + cond + "/>")
	if text != "" {
		b = append(b, "<text xml:lang='en'>"...)
		b = wire.AppendEscaped(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</failure>"...)
}

// handleSASL runs RFC 6120 §6.4. Every failure of the mechanism itself is
// reported as <not-authorized/>, and its error text is never logged: mellium's
// SCRAM errors embed key material.
func (c *conn) handleSASL(el *wire.Element) bool {
	if c.authed {
		c.streamError(errPolicyViolation, "already authenticated")
		return false
	}
	if c.tlsRequired() {
		c.send(saslFailure("encryption-required", "use STARTTLS first"))
		return true
	}
	switch el.Local {
	case "auth":
		mech := el.Attr("mechanism")
		if !contains(c.mechanisms(), mech) {
			c.sasl = nil
			c.send(saslFailure("invalid-mechanism", ""))
			return true
		}
		c.sasl = &saslExchange{mech: mech}
		if mech != "PLAIN" {
			c.sasl.neg = c.newSCRAM(mech)
		}
		data, ok := decodeSASL(el.Text())
		if !ok {
			return c.authFailed("incorrect-encoding", "")
		}
		if data == nil {
			// No initial response: send an empty challenge (RFC 6120 §6.4.2).
			c.send([]byte("<challenge xmlns='" + nsSASL + "'/>"))
			return true
		}
		return c.saslStep(data)
	case "response":
		if c.sasl == nil {
			c.send(saslFailure("not-authorized", "no authentication in progress"))
			return true
		}
		data, ok := decodeSASL(el.Text())
		if !ok {
			return c.authFailed("incorrect-encoding", "")
		}
		return c.saslStep(data)
	case "abort":
		c.sasl = nil
		c.send(saslFailure("aborted", ""))
		return true
	}
	c.streamError(errUnsupportedStanza, "")
	return false
}

// decodeSASL decodes element text; "=" is the empty response and no text
// at all means no data (RFC 6120 §6.4.2).
func decodeSASL(t string) ([]byte, bool) {
	switch t {
	case "":
		return nil, true
	case "=":
		return []byte{}, true
	}
	d, err := base64.StdEncoding.DecodeString(t)
	if err != nil {
		return nil, false
	}
	return d, true
}

func (c *conn) saslStep(data []byte) bool {
	x := c.sasl
	if x.mech == "PLAIN" {
		return c.plainAuth(data)
	}
	more, resp, err := x.neg.Step(data)
	if err != nil || x.authzErr {
		if x.authzErr {
			return c.authFailed("invalid-authzid", "")
		}
		return c.authFailed("not-authorized", "")
	}
	if more {
		c.send([]byte("<challenge xmlns='" + nsSASL + "'>" + base64.StdEncoding.EncodeToString(resp) + "</challenge>"))
		return true
	}
	if _, ok := c.srv.Directory.Person(x.username); !ok {
		return c.authFailed("not-authorized", "")
	}
	return c.authSucceeded(x.username, x.mech, resp)
}

// plainAuth checks "authzid NUL authcid NUL passwd" (RFC 4616).
func (c *conn) plainAuth(data []byte) bool {
	parts := bytes.Split(data, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return c.authFailed("malformed-request", "")
	}
	user, ok := c.normalizeUser(string(parts[1]))
	if !ok {
		return c.authFailed("not-authorized", "")
	}
	if len(parts[0]) > 0 && !c.authzidOK(string(parts[0]), user) {
		return c.authFailed("invalid-authzid", "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := c.srv.Directory.Authenticate(ctx, user, string(parts[2]))
	cancel()
	if err != nil {
		var t interface{ Temporary() bool }
		if errors.As(err, &t) && t.Temporary() {
			c.srv.metrics.authTemporary.Add(1)
			c.srv.Logger.Warn("directory unavailable during login", "user", user, "remote", c.ip)
			c.send(saslFailure("temporary-auth-failure", "the directory is unavailable, try again later"))
			c.sasl = nil
			return true
		}
		return c.authFailed("not-authorized", "")
	}
	// A directory may accept other login names of the same person (AD's
	// userPrincipalName, mail): the session belongs to the canonical name.
	if r, ok := c.srv.Directory.(interface {
		Resolve(login string) (string, bool)
	}); ok {
		if canonical, ok := r.Resolve(user); ok {
			user = canonical
		}
	}
	if _, ok := c.srv.Directory.Person(user); !ok {
		return c.authFailed("not-authorized", "")
	}
	return c.authSucceeded(user, "PLAIN", nil)
}

// normalizeUser applies the localpart profile of RFC 7622 (case-folded).
func (c *conn) normalizeUser(u string) (string, bool) {
	j, err := jid.New(u, c.srv.Domain, "")
	if err != nil || j.Localpart() == "" {
		return "", false
	}
	return j.Localpart(), true
}

// authzidOK accepts an authorization identity only when it names the
// authenticated account itself (no impersonation).
func (c *conn) authzidOK(authz, user string) bool {
	j, err := jid.Parse(authz)
	if err != nil {
		return false
	}
	return j.Localpart() == user && j.Domainpart() == c.srv.Domain && j.Resourcepart() == ""
}

func (c *conn) newSCRAM(mech string) *sasl.Negotiator {
	m := sasl.ScramSha256
	if mech == "SCRAM-SHA-1" {
		m = sasl.ScramSha1
	}
	x := c.sasl
	fetch := func(username, identity []byte, _ string) ([]byte, []byte, int64, error) {
		user, ok := c.normalizeUser(string(username))
		if ok && len(identity) > 0 && !c.authzidOK(string(identity), user) {
			x.authzErr = true
			return nil, nil, 0, errors.New("authzid")
		}
		if ok {
			if _, exists := c.srv.Directory.Person(user); exists {
				if salt, salted, iter, ok := c.srv.SCRAM.SaltedPassword(user, mech); ok {
					x.username = user
					return salt, salted, int64(iter), nil
				}
			}
		}
		// Unknown user: answer with a stable fake salt so the exchange fails
		// at the proof, like for a wrong password (no user enumeration).
		x.username = ""
		salt, salted := c.srv.fakeSCRAM(string(username))
		return salt, salted, 4096, nil
	}
	return sasl.NewServer(m, nil, sasl.SaltedCredentials(fetch))
}

// fakeSCRAM derives per-name fake credentials from a process secret.
func (s *Server) fakeSCRAM(name string) (salt, salted []byte) {
	s.fakeOnce.Do(func() {
		s.fakeKey = make([]byte, 32)
		if _, err := randRead(s.fakeKey); err != nil {
			panic(err)
		}
	})
	h := hmac.New(sha256.New, s.fakeKey)
	h.Write([]byte(name))
	sum := h.Sum(nil)
	h.Write([]byte{1})
	return sum[:16], h.Sum(nil)
}

func (c *conn) authFailed(cond, text string) bool {
	c.sasl = nil
	c.authFailures++
	c.srv.metrics.authFailures.Add(1)
	c.srv.Logger.Info("authentication failed", "remote", c.ip, "condition", cond)
	// Failed-auth backoff per IP: each failure doubles the delay before the
	// answer, so guessing is slow while a single typo costs one second.
	if d := c.srv.ipLimits.authFailed(c.ip, c.srv.AuthFailureDelay); d > 0 {
		time.Sleep(d)
	}
	c.send(saslFailure(cond, text))
	if c.authFailures >= c.srv.MaxAuthFailures {
		// RFC 6120 §6.4.5: retries are bounded; then the stream ends.
		c.streamError(errPolicyViolation, "too many failed authentication attempts")
		return false
	}
	return true
}

func (c *conn) authSucceeded(user, mech string, additional []byte) bool {
	c.sasl = nil
	c.authed = true
	c.user = user
	c.mech = mech
	c.srv.ipLimits.authOK(c.ip)
	b := []byte("<success xmlns='" + nsSASL + "'")
	if len(additional) > 0 {
		b = append(b, '>')
		b = append(b, base64.StdEncoding.EncodeToString(additional)...)
		b = append(b, "</success>"...)
	} else {
		b = append(b, "/>"...)
	}
	c.send(b)
	// RFC 6120 §6.4.6: the stream restarts; discard parser state now, before
	// any byte of the new header is read.
	c.restartStream()
	c.state = stWaitHeader
	c.p = wire.NewParser(&connReader{c: c}, wire.Limits{MaxStanzaBytes: c.srv.MaxStanzaBytes})
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
