package xmppd

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// TestStreamHeaderErrors covers RFC 6120 §4.9.3: every malformed opening or
// restricted XML ends the stream with the right condition, the closing tag
// and the end of the TCP connection.
func TestStreamHeaderErrors(t *testing.T) {
	const ns = `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'`
	tests := []struct {
		name, input, cond string
	}{
		{"wrong to", `<stream:stream ` + ns + ` to='other.org' version='1.0'>`, "host-unknown"},
		{"to with localpart", `<stream:stream ` + ns + ` to='alice@example.com' version='1.0'>`, "host-unknown"},
		{"server namespace", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`, "invalid-namespace"},
		{"no default namespace", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`, "invalid-namespace"},
		{"wrong stream namespace", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:example:wrong' to='example.com' version='1.0'>`, "invalid-namespace"},
		{"no version", `<stream:stream ` + ns + ` to='example.com'>`, "unsupported-version"},
		{"version 0.9", `<stream:stream ` + ns + ` to='example.com' version='0.9'>`, "unsupported-version"},
		{"version 2.0", `<stream:stream ` + ns + ` to='example.com' version='2.0'>`, "unsupported-version"},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "not-well-formed"},
		{"http", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "not-well-formed"},
		{"doctype", `<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>`, "restricted-xml"},
		{"comment", clientHeader + `<!-- hello -->`, "restricted-xml"},
		{"processing instruction", clientHeader + `<?foo bar?>`, "restricted-xml"},
		{"entity reference", clientHeader + `<message><body>&ent;</body></message>`, "restricted-xml"},
		{"stanza before auth", clientHeader + `<message to='bob@example.com'><body>hi</body></message>`, "not-authorized"},
		{"iq before auth", clientHeader + `<iq type='get' id='1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`, "not-authorized"},
		{"bind before auth", clientHeader + `<iq type='set' id='1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`, "not-authorized"},
		{"unclosed mismatched tag", clientHeader + `<message></presence>`, "not-well-formed"},
	}
	ts := newTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t, "x")
			c.send(tt.input)
			c.expectStreamError(tt.cond)
		})
	}
	if n := ts.metrics.streamErrors.Load(); n == 0 {
		t.Error("parser stream errors were not counted")
	}
}

// TestOversizedStanza: the size limit is enforced while reading
// (RFC 6120 §13.12), so the stream error arrives although the stanza never
// ends.
func TestOversizedStanza(t *testing.T) {
	const limit = 4096
	ts := newTestServer(t, func(s *Server) { s.MaxStanzaBytes = limit })
	for _, authed := range []bool{false, true} {
		var c *client
		if authed {
			c = ts.login(t, "alice", "big")
		} else {
			c = ts.dial(t, "x")
			c.header()
		}
		writeErr := make(chan error, 1)
		go func() {
			// Never finished: only the limit can end this stanza.
			big := "<message to='bob@example.com'><body>" + strings.Repeat("a", 10*limit)
			c.nc.SetWriteDeadline(time.Now().Add(testTimeout))
			_, err := c.nc.Write([]byte(big))
			writeErr <- err
		}()
		c.expectStreamError("policy-violation")
		<-writeErr // any outcome; the socket is closed
	}
	// The server is still serving.
	ts.login(t, "bob", "b").drain()
}

// TestAuthTimeout: negotiation must finish within AuthTimeout.
func TestAuthTimeout(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.AuthTimeout = 300 * time.Millisecond })
	c := ts.dial(t, "slow")
	c.header()
	c.expectStreamError("connection-timeout")
}

func mechanisms(feats *wire.Element) []string {
	var out []string
	if m := feats.Child(nsSASL, "mechanisms"); m != nil {
		for _, n := range m.Nodes {
			if n.El != nil && n.El.Local == "mechanism" {
				out = append(out, n.El.Text())
			}
		}
	}
	return out
}

// startTLS upgrades c and returns the features of the new stream.
func (c *client) startTLS() *wire.Element {
	c.tb.Helper()
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	c.expect("proceed", func(el *wire.Element) bool { return el.Space == nsTLS && el.Local == "proceed" })
	tc := tls.Client(c.nc, &tls.Config{ServerName: testDomain, RootCAs: c.ts.certPool, MinVersion: tls.VersionTLS12})
	tc.SetDeadline(time.Now().Add(testTimeout))
	if err := tc.Handshake(); err != nil {
		c.tb.Fatalf("%s: TLS handshake: %v", c.name, err)
	}
	tc.SetDeadline(time.Time{})
	c.nc = tc
	return c.restart()
}

// TestFeaturesAndStartTLS covers RFC 6120 §5 and §6.3.3: without TLS only a
// required STARTTLS is offered and SASL is refused; after the upgrade PLAIN
// is offered, SCRAM only when every account has SCRAM material, and never a
// -PLUS variant (no channel binding).
func TestFeaturesAndStartTLS(t *testing.T) {
	for _, scramReady := range []bool{false, true} {
		t.Run(map[bool]string{false: "scram not ready", true: "scram ready"}[scramReady], func(t *testing.T) {
			ts := newTestServer(t, withTLS, func(s *Server) { s.AllowPlaintext = false })
			ts.scram().ready.Store(scramReady)
			c := ts.dial(t, "alice")
			feats := c.header()
			st := feats.Child(nsTLS, "starttls")
			if st == nil || st.Child(nsTLS, "required") == nil {
				t.Fatalf("want <starttls><required/></starttls>, got %s", feats)
			}
			if m := feats.Child(nsSASL, "mechanisms"); m != nil {
				t.Fatalf("mechanisms offered before TLS: %s", feats)
			}
			if n := len(feats.Nodes); n != 1 {
				t.Fatalf("want only starttls, got %s", feats)
			}
			c.send(plainAuth("", "alice", "alice-pw"))
			c.expectSASLFailure("encryption-required")

			feats = c.startTLS()
			if feats.Child(nsTLS, "starttls") != nil {
				t.Errorf("starttls offered again inside TLS: %s", feats)
			}
			mechs := mechanisms(feats)
			want := []string{"PLAIN"}
			if scramReady {
				want = []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
			}
			if strings.Join(mechs, ",") != strings.Join(want, ",") {
				t.Errorf("mechanisms %v, want %v", mechs, want)
			}
			for _, m := range mechs {
				if strings.HasSuffix(m, "-PLUS") {
					t.Errorf("offered %s without channel binding", m)
				}
			}
			c.send(plainAuth("", "alice", "alice-pw"))
			c.expectSuccess()
			c.restart()
			c.bind("tls")
			c.drain()
			if s := ts.Sessions(); len(s) != 1 || !s[0].Secure || s[0].Mechanism != "PLAIN" {
				t.Errorf("sessions %+v, want one secure PLAIN session", s)
			}
		})
	}
}

// TestStartTLSPlaintextAllowed: with AllowPlaintext, STARTTLS is offered but
// not required and mechanisms are already there.
func TestStartTLSPlaintextAllowed(t *testing.T) {
	ts := newTestServer(t, withTLS)
	c := ts.dial(t, "a")
	feats := c.header()
	st := feats.Child(nsTLS, "starttls")
	if st == nil || st.Child(nsTLS, "required") != nil {
		t.Fatalf("want optional starttls, got %s", feats)
	}
	if len(mechanisms(feats)) == 0 {
		t.Fatalf("no mechanisms: %s", feats)
	}
	feats = c.startTLS()
	if feats.Child(nsTLS, "starttls") != nil {
		t.Fatalf("starttls inside TLS: %s", feats)
	}
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	c.expect("starttls failure", func(el *wire.Element) bool { return el.Space == nsTLS && el.Local == "failure" })
}

// TestDirectTLS covers XEP-0368: TLS from the first byte with ALPN
// xmpp-client.
func TestDirectTLS(t *testing.T) {
	ts := newTestServer(t, withTLS, func(s *Server) { s.AllowPlaintext = false })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.ServeDirectTLS(l) }()
	t.Cleanup(func() { l.Close(); <-done })
	tc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: testDomain, RootCAs: ts.certPool, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "xmpp-client" {
		t.Errorf("ALPN %q, want xmpp-client", p)
	}
	c := &client{tb: t, ts: ts, name: "direct", nc: tc}
	c.p = wire.NewParser(c, wire.Limits{})
	t.Cleanup(func() { c.nc.Close() })
	feats := c.header()
	if feats.Child(nsTLS, "starttls") != nil || !strings.Contains(strings.Join(mechanisms(feats), ","), "PLAIN") {
		t.Fatalf("features on direct TLS: %s", feats)
	}
	c.send(plainAuth("", "bob", "bob-pw"))
	c.expectSuccess()
	c.restart()
	c.bind("direct")
	c.drain()
}

// TestSASLFailures covers RFC 6120 §6.4.5 and §6.5: each failure is a
// <failure/> with the right condition and the same stream may retry.
func TestSASLFailures(t *testing.T) {
	tests := []struct {
		name, send, cond string
	}{
		{"wrong password", plainAuth("", "alice", "wrong"), "not-authorized"},
		{"unknown user", plainAuth("", "zed", "alice-pw"), "not-authorized"},
		{"invalid base64", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!notbase64</auth>`, "incorrect-encoding"},
		{"malformed PLAIN", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + base64.StdEncoding.EncodeToString([]byte("alice")) + `</auth>`, "malformed-request"},
		{"unknown mechanism", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>`, "invalid-mechanism"},
		{"PLUS mechanism", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>` + base64.StdEncoding.EncodeToString([]byte("p=tls-exporter,,n=alice,r=abc")) + `</auth>`, "invalid-mechanism"},
		{"SCRAM not offered", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>` + base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abc")) + `</auth>`, "invalid-mechanism"},
		{"abort", `<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`, "aborted"},
		{"authzid of another user", plainAuth("bob@example.com", "alice", "alice-pw"), "invalid-authzid"},
		{"response without auth", `<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AAAA</response>`, "not-authorized"},
	}
	ts := newTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t, "alice")
			c.header()
			c.send(tt.send)
			c.expectSASLFailure(tt.cond)
			// The same stream may try again and succeed.
			c.send(plainAuth("", "alice", "alice-pw"))
			c.expectSuccess()
			c.restart()
			c.bind("")
		})
	}
}

// TestSASLAuthzidSelf: an authzid naming the account itself is accepted.
func TestSASLAuthzidSelf(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t, "alice")
	c.header()
	c.send(plainAuth("alice@example.com", "alice", "alice-pw"))
	c.expectSuccess()
}

// TestSASLCaseFolding: the username is normalized (RFC 7622 localpart).
func TestSASLCaseFolding(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t, "alice")
	c.header()
	c.send(plainAuth("", "Alice", "alice-pw"))
	c.expectSuccess()
	c.restart()
	if j := c.bind("r"); j != "alice@example.com/r" {
		t.Fatalf("bound %q", j)
	}
}

// TestSASLMaxFailures: after MaxAuthFailures the stream ends with
// policy-violation.
func TestSASLMaxFailures(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.MaxAuthFailures = 3 })
	c := ts.dial(t, "mallory")
	c.header()
	for i := 0; i < 2; i++ {
		c.send(plainAuth("", "alice", "guess"))
		c.expectSASLFailure("not-authorized")
	}
	c.send(plainAuth("", "alice", "guess"))
	c.expectSASLFailure("not-authorized")
	c.expectStreamError("policy-violation")
	if n := ts.metrics.authFailures.Load(); n != 3 {
		t.Errorf("auth failures counted %d, want 3", n)
	}
}

// TestSASLBackoff: failures from one address are answered ever later, and
// a success resets the delay.
func TestSASLBackoff(t *testing.T) {
	const base = 100 * time.Millisecond
	ts := newTestServer(t, func(s *Server) { s.AuthFailureDelay = base; s.MaxAuthFailures = 10 })
	c := ts.dial(t, "mallory")
	c.header()
	var took []time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		c.send(plainAuth("", "alice", "guess"))
		c.expectSASLFailure("not-authorized")
		took = append(took, time.Since(start))
	}
	if took[0] < base || took[1] < 2*base || took[2] < 4*base {
		t.Errorf("failure delays %v, want >= %v, %v, %v", took, base, 2*base, 4*base)
	}
	c.send(plainAuth("", "alice", "alice-pw"))
	c.expectSuccess()
	c2 := ts.dial(t, "alice2")
	c2.header()
	start := time.Now()
	c2.send(plainAuth("", "alice", "guess"))
	c2.expectSASLFailure("not-authorized")
	// Without the reset this would be the 4th failure: 8*base.
	if d := time.Since(start); d > 5*base {
		t.Errorf("first failure after a success took %v", d)
	}
}

// TestSASLTemporaryFailure: a directory that cannot answer gives
// <temporary-auth-failure/> (RFC 6120 §6.5.12), not a password error.
func TestSASLTemporaryFailure(t *testing.T) {
	ts := newTestServer(t)
	ts.dir.tempErr.Store(true)
	c := ts.dial(t, "alice")
	c.header()
	c.send(plainAuth("", "alice", "alice-pw"))
	c.expectSASLFailure("temporary-auth-failure")
	if n := ts.metrics.authTemporary.Load(); n != 1 {
		t.Errorf("authTemporary = %d", n)
	}
	ts.dir.tempErr.Store(false)
	c.send(plainAuth("", "alice", "alice-pw"))
	c.expectSuccess()
}

// scramLogin runs a full SCRAM exchange with mellium's client negotiator.
// It returns whether the server accepted.
func scramLogin(t *testing.T, c *client, mech sasl.Mechanism, user, pass, authz string) bool {
	t.Helper()
	neg := sasl.NewClient(mech, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte(pass), []byte(authz)
	}))
	_, resp, err := neg.Step(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='` + mech.Name + `'>` + base64.StdEncoding.EncodeToString(resp) + `</auth>`)
	for {
		el := c.stanza()
		if el.Space != nsSASL {
			t.Fatalf("unexpected %s", el)
		}
		data, err := base64.StdEncoding.DecodeString(el.Text())
		if err != nil {
			t.Fatalf("bad base64 in %s", el)
		}
		switch el.Local {
		case "challenge":
			_, resp, err := neg.Step(data)
			if err != nil {
				t.Fatalf("client step: %v", err)
			}
			c.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` + base64.StdEncoding.EncodeToString(resp) + `</response>`)
		case "success":
			// RFC 6120 §6.3.10: the additional data proves the server knew
			// the password.
			if _, _, err := neg.Step(data); err != nil {
				t.Fatalf("server signature rejected: %v", err)
			}
			return true
		case "failure":
			if el.Child(nsSASL, "not-authorized") == nil {
				t.Fatalf("failure %s, want not-authorized", el)
			}
			return false
		default:
			t.Fatalf("unexpected %s", el)
		}
	}
}

func TestSCRAM(t *testing.T) {
	ts := newTestServer(t)
	ts.scram().ready.Store(true)
	tests := []struct {
		name       string
		mech       sasl.Mechanism
		user, pass string
		authz      string
		ok         bool
	}{
		{"sha256", sasl.ScramSha256, "alice", "alice-pw", "", true},
		{"sha1", sasl.ScramSha1, "bob", "bob-pw", "", true},
		{"sha256 wrong password", sasl.ScramSha256, "alice", "nope", "", false},
		{"sha1 wrong password", sasl.ScramSha1, "alice", "nope", "", false},
		{"unknown user", sasl.ScramSha256, "zed", "whatever", "", false},
		{"authzid self", sasl.ScramSha256, "alice", "alice-pw", "alice@example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t, tt.user)
			feats := c.header()
			if m := strings.Join(mechanisms(feats), ","); !strings.Contains(m, "SCRAM-SHA-256") {
				t.Fatalf("SCRAM not offered: %v", m)
			}
			if got := scramLogin(t, c, tt.mech, tt.user, tt.pass, tt.authz); got != tt.ok {
				t.Fatalf("login ok=%v, want %v", got, tt.ok)
			}
			if !tt.ok {
				// The stream survives the failure: PLAIN still works.
				c.send(plainAuth("", "carol", "carol-pw"))
				c.expectSuccess()
				c.restart()
				c.bind("x")
				return
			}
			c.restart()
			want := tt.user + "@example.com/s"
			if j := c.bind("s"); j != want {
				t.Fatalf("bound %q, want %q", j, want)
			}
			c.drain()
		})
	}
	t.Run("authzid of another user", func(t *testing.T) {
		c := ts.dial(t, "alice")
		c.header()
		neg := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
			return []byte("alice"), []byte("alice-pw"), []byte("bob@example.com")
		}))
		_, resp, _ := neg.Step(nil)
		c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>` + base64.StdEncoding.EncodeToString(resp) + `</auth>`)
		c.expectSASLFailure("invalid-authzid")
	})
}

// TestBind covers RFC 6120 §7.
func TestBind(t *testing.T) {
	t.Run("server generated resource", func(t *testing.T) {
		ts := newTestServer(t)
		c := ts.dial(t, "alice")
		c.header()
		c.send(plainAuth("", "alice", "alice-pw"))
		c.expectSuccess()
		feats := c.restart()
		for _, f := range []string{"bind", "session", "ver", "sub"} {
			found := false
			for _, n := range feats.Nodes {
				found = found || n.El != nil && n.El.Local == f
			}
			if !found {
				t.Errorf("feature %s missing: %s", f, feats)
			}
		}
		if len(mechanisms(feats)) != 0 {
			t.Errorf("mechanisms after auth: %s", feats)
		}
		j := c.bind("")
		if !strings.HasPrefix(j, "alice@example.com/") || len(j) <= len("alice@example.com/") {
			t.Fatalf("generated JID %q", j)
		}
		c.drain()
	})
	t.Run("conflict", func(t *testing.T) {
		// Server pings on, as in production: the replaced connection must
		// still end promptly although its client never closes the socket.
		ts := newTestServer(t, func(s *Server) { s.DisableServerPings = false; s.IdleTimeout = time.Minute })
		old := ts.online(t, "alice", "a", 0)
		bob := ts.online(t, "bob", "b", 0)
		bob.waitFor("alice's presence", is("presence", "from", "alice@example.com/a", "type", ""))
		nw := ts.login(t, "alice", "a")
		// RFC 6120 §7.7.2.2: the old session is replaced.
		nw.presence(0)
		old.expectStreamError("conflict")
		// Contacts learn that the old session is gone before the new one
		// announces itself under the same full JID.
		fromA := is("presence", "from", "alice@example.com/a")
		if p := bob.waitFor("presence of alice/a", fromA); p.Attr("type") != "unavailable" {
			t.Fatalf("first presence after the replacement is %s, want unavailable", p)
		}
		if p := bob.waitFor("presence of alice/a", fromA); p.Attr("type") != "" {
			t.Fatalf("second presence after the replacement is %s, want available", p)
		}
		// The replaced session's departure must not make the new one look
		// offline to contacts.
		waitUntil(t, "the old connection to end", func() bool { return ts.metrics.connections.Load() == 2 })
		bob.quiet("unavailable from the live resource", is("presence", "from", "alice@example.com/a", "type", "unavailable"))
		nw.quiet("unavailable from itself", is("presence", "from", "alice@example.com/a", "type", "unavailable"))
		bob.send(`<message to='alice@example.com/a' type='chat'><body>still there?</body></message>`)
		nw.waitFor("message", hasBody("still there?"))
	})
	t.Run("max sessions", func(t *testing.T) {
		ts := newTestServer(t, func(s *Server) { s.MaxSessionsPerUser = 2 })
		ts.login(t, "alice", "1")
		ts.login(t, "alice", "2")
		c := ts.dial(t, "alice3")
		c.header()
		c.send(plainAuth("", "alice", "alice-pw"))
		c.expectSuccess()
		c.restart()
		c.send(`<iq type='set' id='b3'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>3</resource></bind></iq>`)
		el := c.expect("resource-constraint", isStanzaError("iq", "resource-constraint"))
		if el.Attr("id") != "b3" {
			t.Errorf("error id %q", el.Attr("id"))
		}
		// Replacing an existing resource is still allowed at the limit.
		c.bind("2")
		if n := len(ts.Sessions()); n != 2 {
			t.Errorf("%d sessions, want 2", n)
		}
	})
	t.Run("legacy session", func(t *testing.T) {
		ts := newTestServer(t)
		c := ts.dial(t, "alice")
		c.header()
		c.send(plainAuth("", "alice", "alice-pw"))
		c.expectSuccess()
		c.restart()
		c.bind("old")
		// Old clients (RFC 3921 §3) establish a session right after binding,
		// without a to attribute.
		el := c.iq("set", "", `<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>`)
		if el.Attr("type") != "result" {
			t.Fatalf("session: %s", el)
		}
		el = c.iq("set", testDomain, `<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>`)
		if el.Attr("type") != "result" {
			t.Fatalf("session to the domain: %s", el)
		}
	})
	t.Run("invalid resource", func(t *testing.T) {
		ts := newTestServer(t)
		c := ts.dial(t, "alice")
		c.header()
		c.send(plainAuth("", "alice", "alice-pw"))
		c.expectSuccess()
		c.restart()
		// RFC 7622 §3.4: a resourcepart has at most 1023 bytes.
		c.send(`<iq type='set' id='bad'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + strings.Repeat("r", 1100) + `</resource></bind></iq>`)
		c.expect("bad-request", isStanzaError("iq", "bad-request"))
		c.bind("good")
	})
	t.Run("stanza before bind", func(t *testing.T) {
		ts := newTestServer(t)
		c := ts.dial(t, "alice")
		c.header()
		c.send(plainAuth("", "alice", "alice-pw"))
		c.expectSuccess()
		c.restart()
		c.send(`<message to='bob@example.com'><body>x</body></message>`)
		c.expectStreamError("not-authorized")
	})
}

// TestStartTLSInjection: plaintext pipelined after <starttls/> must not be
// processed inside TLS (RFC 6120 §5.4.3.3; the CVE-2011-0411 class).
func TestStartTLSInjection(t *testing.T) {
	ts := newTestServer(t, withTLS, func(s *Server) { s.AllowPlaintext = false })
	c := ts.dial(t, "mallory")
	c.header()
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` + plainAuth("", "alice", "alice-pw"))
	c.expect("proceed", func(el *wire.Element) bool { return el.Space == nsTLS && el.Local == "proceed" })
	tc := tls.Client(c.nc, &tls.Config{ServerName: testDomain, RootCAs: ts.certPool})
	tc.SetDeadline(time.Now().Add(testTimeout))
	if err := tc.Handshake(); err != nil {
		return // the injected bytes broke the handshake: safe too
	}
	tc.SetDeadline(time.Time{})
	c.nc = tc
	feats := c.restart()
	if feats.Child(nsBind, "bind") != nil || len(mechanisms(feats)) == 0 {
		t.Fatalf("plaintext <auth/> took effect inside TLS: %s", feats)
	}
}

// TestBindTwice: a second bind on a bound stream is refused.
func TestBindTwice(t *testing.T) {
	ts := newTestServer(t)
	c := ts.login(t, "alice", "a")
	el := c.iq("set", "", `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>b</resource></bind>`)
	if el.Attr("type") != "error" {
		t.Fatalf("second bind: %s", el)
	}
	if s := ts.Sessions(); len(s) != 1 || s[0].JID != "alice@example.com/a" {
		t.Fatalf("sessions %+v", s)
	}
}

// TestRegisterBeforeLogin: a client's "create account" before login learns
// that accounts come from the directory (XEP-0077 §3.1, service-unavailable
// with a text) instead of seeing the stream close; a few times, then the
// stream ends as for any other stanza before authentication.
func TestRegisterBeforeLogin(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t, "x")
	if f := c.header(); f.Child("http://jabber.org/features/iq-register", "register") != nil {
		t.Fatalf("registration offered: %s", f)
	}
	for i := range 3 {
		id := fmt.Sprint("r", i)
		c.send(`<iq type='get' id='` + id + `'><query xmlns='jabber:iq:register'/></iq>`)
		r := c.expect("register answer", is("iq", "id", id, "type", "error"))
		e := r.Child(nsClient, "error")
		if e == nil || e.Child(nsStanzas, "service-unavailable") == nil || !strings.Contains(e.Child(nsStanzas, "text").Text(), "company directory") {
			t.Fatalf("answer %s", r)
		}
	}
	c.send(`<iq type='set' id='r4'><query xmlns='jabber:iq:register'><username>x</username><password>y</password></query></iq>`)
	c.expectStreamError("not-authorized")
}

// TestBindAfterDirectoryRemoval: an account the directory removed between
// a stream's authentication and its bind gets no session, and an older
// session the bind would have replaced ends too.
func TestBindAfterDirectoryRemoval(t *testing.T) {
	ts := newTestServer(t)
	old := ts.online(t, "dave", "d", 0)
	c := ts.dial(t, "dave/d")
	c.header()
	c.send(plainAuth("", "dave", "dave-pw"))
	c.expectSuccess()
	c.restart()
	ts.dir.mu.Lock()
	delete(ts.dir.users, "dave")
	ts.dir.mu.Unlock()
	c.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>d</resource></bind></iq>`)
	c.expectStreamError("not-authorized")
	old.expectStreamError("not-authorized")
	if n := len(ts.router.sessionsOf("dave")); n != 0 {
		t.Errorf("%d sessions of a removed account", n)
	}
}
