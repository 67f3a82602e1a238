package xmppd

// The black-box harness, in the manner of nats-server's test/test.go: a real
// Server on 127.0.0.1:0 with a temporary store and a hand-written directory,
// driven by raw sockets. Server output is parsed with wire.Parser so that
// assertions look at elements and attributes, never at substrings.

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

const (
	testDomain = "example.com"
	// testTimeout bounds every wait for something that must happen. What
	// must not happen is checked with barriers (see drain), not by waiting.
	testTimeout = 5 * time.Second
)

// ---- the directory ----------------------------------------------------------

type fakeUser struct {
	password string
	display  string
	groups   []string
}

// fakeDir is the hand-written Directory: alice and bob share the group
// "Engineering", carol is alone in "Sales", dave is in no group.
type fakeDir struct {
	mu      sync.Mutex
	users   map[string]fakeUser
	photos  map[string]string // username -> photo hash (XEP-0153)
	tempErr atomic.Bool       // Authenticate answers with a Temporary() error
}

func newFakeDir() *fakeDir {
	return &fakeDir{users: map[string]fakeUser{
		"alice": {"alice-pw", "Alice Anderson", []string{"Engineering"}},
		"bob":   {"bob-pw", "Bob Brown", []string{"Engineering"}},
		"carol": {"carol-pw", "Carol Clark", []string{"Sales"}},
		"dave":  {"dave-pw", "Dave Davis", nil},
	}}
}

type tempError struct{}

func (tempError) Error() string   { return "directory: ldap server unreachable" }
func (tempError) Temporary() bool { return true }

var errBadPassword = errors.New("directory: invalid credentials")

func (d *fakeDir) Authenticate(ctx context.Context, username, password string) error {
	if d.tempErr.Load() {
		return fmt.Errorf("fake: bind: %w", tempError{})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[username]
	if !ok || u.password != password {
		return errBadPassword
	}
	return nil
}

func (d *fakeDir) Person(username string) (Person, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[username]
	if !ok {
		return Person{}, false
	}
	return Person{Username: username, DisplayName: u.display, Groups: u.groups, PhotoHash: d.photos[username]}, true
}

func (d *fakeDir) Colleagues(username string) []Person {
	d.mu.Lock()
	defer d.mu.Unlock()
	me, ok := d.users[username]
	if !ok {
		return nil
	}
	var out []Person
	for name, u := range d.users {
		if name == username {
			continue
		}
		var shared []string
		for _, g := range u.groups {
			for _, mg := range me.groups {
				if g == mg {
					shared = append(shared, g)
				}
			}
		}
		if len(shared) > 0 {
			out = append(out, Person{Username: name, DisplayName: u.display, Groups: shared})
		}
	}
	return out
}

func (d *fakeDir) password(username string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[username]
	return u.password, ok
}

// fakeSCRAM derives SCRAM material from the directory's passwords.
type fakeSCRAM struct {
	dir   *fakeDir
	ready atomic.Bool
}

func (f *fakeSCRAM) SCRAMReady() bool { return f.ready.Load() }

func (f *fakeSCRAM) SaltedPassword(username, mech string) (salt, salted []byte, iter int, ok bool) {
	pw, ok := f.dir.password(username)
	if !ok {
		return nil, nil, 0, false
	}
	var h func() hash.Hash
	switch mech {
	case "SCRAM-SHA-1":
		h = sha1.New
	case "SCRAM-SHA-256":
		h = sha256.New
	default:
		return nil, nil, 0, false
	}
	salt = []byte("salt-of-" + username)
	return salt, sasl.SCRAMSaltPassword(h, []byte(pw), salt, 4096), 4096, true
}

// ---- the server --------------------------------------------------------------

type testServer struct {
	*Server
	tb   testing.TB
	addr string
	dir  *fakeDir
	done chan error
	// certPool verifies the self-signed certificate (TLS servers only).
	certPool *x509.CertPool
}

// logWriter sends server logs to t.Log until the test ends.
type logWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// withTLS asks newTestServer for a self-signed certificate made by
// LoadCertificate in a temporary data directory: the placeholder config is
// replaced once the directory is known.
func withTLS(s *Server) { s.TLSConfig = &tls.Config{} }

// newTestServer starts a Server with test-friendly limits; opts run before
// Serve and may change any field.
func newTestServer(tb testing.TB, opts ...func(*Server)) *testServer {
	tb.Helper()
	lw := &logWriter{tb: tb}
	tb.Cleanup(func() { lw.mu.Lock(); lw.done = true; lw.mu.Unlock() })
	st, err := store.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	dir := newFakeDir()
	var logger *slog.Logger
	if _, isBench := tb.(*testing.B); isBench {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	} else {
		logger = slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := &Server{
		Domain:             testDomain,
		Directory:          dir,
		Store:              st,
		Logger:             logger,
		AllowPlaintext:     true,
		AuthFailureDelay:   time.Millisecond,
		ShutdownGrace:      500 * time.Millisecond,
		DisableServerPings: true,
		ConnRatePerIP:      1e6,
		MaxConnsPerIP:      1000,
		StanzasPerSecond:   1e6,
		BytesPerSecond:     1 << 30,
		ReadyAfterStart:    true,
	}
	for _, o := range opts {
		o(s)
	}
	ts := &testServer{Server: s, tb: tb, dir: dir, done: make(chan error, 1)}
	if s.TLSConfig != nil {
		dataDir := tb.TempDir()
		cert, err := LoadCertificate("", "", dataDir, testDomain)
		if err != nil {
			tb.Fatal(err)
		}
		s.TLSConfig = cert.TLSConfig()
		pem, err := os.ReadFile(filepath.Join(dataDir, "selfsigned-cert.pem"))
		if err != nil {
			tb.Fatal(err)
		}
		ts.certPool = x509.NewCertPool()
		if !ts.certPool.AppendCertsFromPEM(pem) {
			tb.Fatal("self-signed certificate does not parse")
		}
	}
	if s.SCRAM == nil {
		// Not ready unless a test says so: mechanisms are then PLAIN only.
		s.SCRAM = &fakeSCRAM{dir: dir}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go func() { ts.done <- s.Serve(l) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-ts.done:
			if !errors.Is(err, ErrServerClosed) {
				tb.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(testTimeout):
			tb.Error("Serve did not return after Shutdown")
		}
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	return ts
}

func (ts *testServer) scram() *fakeSCRAM { return ts.SCRAM.(*fakeSCRAM) }

// waitUntil polls cond; server state changes after a socket closes are
// asynchronous.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- the raw client --------------------------------------------------------

type client struct {
	tb      testing.TB
	ts      *testServer
	name    string
	nc      net.Conn
	p       *wire.Parser
	jid     string          // full JID after bind
	pending []*wire.Element // read but not yet consumed, in order
	seen    []string        // everything received, for failure messages
	ids     atomic.Int64
}

// dial opens a raw connection; the test's cleanup closes it.
func (ts *testServer) dial(tb testing.TB, name string) *client {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", ts.addr, testTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	c := &client{tb: tb, ts: ts, name: name, nc: nc}
	c.p = wire.NewParser(c, wire.Limits{MaxStanzaBytes: 16 << 20})
	tb.Cleanup(func() { c.nc.Close() })
	return c
}

// Read makes the client the parser's reader, so that STARTTLS can swap the
// transport underneath.
func (c *client) Read(b []byte) (int, error) { return c.nc.Read(b) }

func (c *client) send(s string) {
	c.tb.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.tb.Fatalf("%s: send: %v", c.name, err)
	}
}

func (c *client) id() string { return fmt.Sprintf("%s-%d", c.name, c.ids.Add(1)) }

// next reads one event from the wire (not from pending) within d.
func (c *client) next(d time.Duration) (wire.Kind, *wire.Element, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	k, el, err := c.p.Next()
	if err == nil && k == wire.Stanza {
		c.seen = append(c.seen, el.String())
	}
	return k, el, err
}

func (c *client) history() string {
	s := c.seen
	if len(s) > 20 {
		s = s[len(s)-20:]
	}
	return "\n\t" + strings.Join(s, "\n\t")
}

// stanza returns the next stanza, pending ones first.
func (c *client) stanza() *wire.Element {
	c.tb.Helper()
	if len(c.pending) > 0 {
		el := c.pending[0]
		c.pending = c.pending[1:]
		return el
	}
	k, el, err := c.next(testTimeout)
	if err != nil {
		c.tb.Fatalf("%s: waiting for a stanza: %v; received:%s", c.name, err, c.history())
	}
	if k != wire.Stanza {
		c.tb.Fatalf("%s: got %v, want a stanza; received:%s", c.name, k, c.history())
	}
	return el
}

// expect requires the next stanza to match.
func (c *client) expect(what string, m pred) *wire.Element {
	c.tb.Helper()
	el := c.stanza()
	if !m(el) {
		c.tb.Fatalf("%s: want %s, got %s", c.name, what, el)
	}
	return el
}

// waitFor returns the first stanza that matches, pending ones first; the
// others stay pending in order.
func (c *client) waitFor(what string, m pred) *wire.Element {
	c.tb.Helper()
	for i, el := range c.pending {
		if m(el) {
			c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
			return el
		}
	}
	deadline := time.Now().Add(testTimeout)
	for {
		d := time.Until(deadline)
		if d <= 0 {
			c.tb.Fatalf("%s: timed out waiting for %s; received:%s", c.name, what, c.history())
		}
		k, el, err := c.next(d)
		if err != nil {
			c.tb.Fatalf("%s: waiting for %s: %v; received:%s", c.name, what, err, c.history())
		}
		if k != wire.Stanza {
			c.tb.Fatalf("%s: waiting for %s: got %v; received:%s", c.name, what, k, c.history())
		}
		if m(el) {
			return el
		}
		c.pending = append(c.pending, el)
	}
}

// drain is a barrier: it pings the server and returns (and forgets)
// everything that arrived before the answer. Because the server handles a
// connection's stanzas in order and each session's output queue is FIFO,
// anything another session's earlier stanza produced for us is in the
// result once the other session's own barrier has returned.
func (c *client) drain() []*wire.Element {
	c.tb.Helper()
	id := c.id()
	c.send(`<iq type='get' id='` + id + `' to='` + testDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.waitFor("ping result "+id, is("iq", "type", "result", "id", id))
	out := c.pending
	c.pending = nil
	return out
}

// quiet asserts that nothing matching m arrived before a barrier.
func (c *client) quiet(what string, m pred) {
	c.tb.Helper()
	for _, el := range c.drain() {
		if m(el) {
			c.tb.Fatalf("%s: unexpected %s: %s", c.name, what, el)
		}
	}
}

// silent asserts that nothing at all arrives before a barrier.
func (c *client) silent() {
	c.tb.Helper()
	if got := c.drain(); len(got) > 0 {
		var s []string
		for _, el := range got {
			s = append(s, el.String())
		}
		c.tb.Fatalf("%s: unexpected stanzas:\n\t%s", c.name, strings.Join(s, "\n\t"))
	}
}

// expectStreamError requires a stream error with cond (other stanzas before
// it are skipped), then the end of the stream, then the end of the
// connection (RFC 6120 §4.9.1.1).
func (c *client) expectStreamError(cond string) {
	c.tb.Helper()
	for _, el := range c.pending {
		if isStreamError(el) {
			c.checkStreamError(el, cond)
			c.pending = nil
			c.expectClosed()
			return
		}
	}
	for {
		k, el, err := c.next(testTimeout)
		if err != nil {
			c.tb.Fatalf("%s: waiting for stream error %s: %v; received:%s", c.name, cond, err, c.history())
		}
		switch k {
		case wire.StreamStart:
			continue
		case wire.StreamEnd:
			c.tb.Fatalf("%s: stream closed without stream error %s; received:%s", c.name, cond, c.history())
		}
		if isStreamError(el) {
			c.checkStreamError(el, cond)
			break
		}
	}
	c.expectClosed()
}

func (c *client) checkStreamError(el *wire.Element, cond string) {
	c.tb.Helper()
	if got := streamErrorCondition(el); got != cond {
		c.tb.Fatalf("%s: stream error %q, want %q: %s", c.name, got, cond, el)
	}
}

// expectClosed requires </stream:stream> and then EOF (or a reset) from the
// socket.
func (c *client) expectClosed() {
	c.tb.Helper()
	k, el, err := c.next(testTimeout)
	if err != nil || k != wire.StreamEnd {
		c.tb.Fatalf("%s: want </stream:stream>, got %v %v %v", c.name, k, el, err)
	}
	c.nc.SetReadDeadline(time.Now().Add(testTimeout))
	var buf [64]byte
	n, err := c.nc.Read(buf[:])
	if n > 0 {
		c.tb.Fatalf("%s: data after </stream:stream>: %q", c.name, buf[:n])
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		c.tb.Fatalf("%s: connection not closed after </stream:stream>: %v", c.name, err)
	}
}

func isStreamError(el *wire.Element) bool {
	return el.Space == nsStream && el.Local == "error"
}

func streamErrorCondition(el *wire.Element) string {
	for _, n := range el.Nodes {
		if n.El != nil && n.El.Space == nsStreams && n.El.Local != "text" {
			return n.El.Local
		}
	}
	return ""
}

// ---- negotiation steps -----------------------------------------------------

const clientHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`

// header opens (or restarts) the stream and returns the features.
func (c *client) header() *wire.Element {
	c.tb.Helper()
	c.send(clientHeader)
	k, el, err := c.next(testTimeout)
	if err != nil || k != wire.StreamStart {
		c.tb.Fatalf("%s: want stream header, got %v %v", c.name, k, err)
	}
	if el.Attr("from") != testDomain || el.Attr("version") != "1.0" || el.Attr("id") == "" {
		c.tb.Fatalf("%s: bad stream header %s", c.name, el.AppendStart(nil, ""))
	}
	return c.expect("stream features", func(el *wire.Element) bool {
		return el.Space == nsStream && el.Local == "features"
	})
}

// restart begins a new stream after <proceed/> or <success/> (RFC 6120
// §4.3.3): the parser forgets the old stream.
func (c *client) restart() *wire.Element {
	c.tb.Helper()
	c.p.Reset(c)
	return c.header()
}

func plainAuth(authz, user, pass string) string {
	return `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` +
		base64.StdEncoding.EncodeToString([]byte(authz+"\x00"+user+"\x00"+pass)) + `</auth>`
}

// saslFailure requires <failure><cond/></failure>.
func (c *client) expectSASLFailure(cond string) {
	c.tb.Helper()
	c.expect("SASL failure "+cond, func(el *wire.Element) bool {
		return el.Space == nsSASL && el.Local == "failure" && el.Child(nsSASL, cond) != nil
	})
}

func (c *client) expectSuccess() *wire.Element {
	c.tb.Helper()
	return c.expect("SASL success", func(el *wire.Element) bool {
		return el.Space == nsSASL && el.Local == "success"
	})
}

// bind binds res ("" lets the server choose) and returns the full JID.
func (c *client) bind(res string) string {
	c.tb.Helper()
	id := c.id()
	r := ""
	if res != "" {
		r = "<resource>" + res + "</resource>"
	}
	c.send(`<iq type='set' id='` + id + `'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` + r + `</bind></iq>`)
	el := c.expect("bind result", is("iq", "id", id, "type", "result"))
	b := el.Child(nsBind, "bind")
	if b == nil || b.Child(nsBind, "jid") == nil {
		c.tb.Fatalf("%s: bind result without jid: %s", c.name, el)
	}
	c.jid = b.Child(nsBind, "jid").Text()
	return c.jid
}

// login authenticates with PLAIN and binds resource.
func (ts *testServer) login(tb testing.TB, user, resource string) *client {
	tb.Helper()
	c := ts.dial(tb, user+"/"+resource)
	c.header()
	pw, ok := ts.dir.password(user)
	if !ok {
		pw = "nopassword"
	}
	c.send(plainAuth("", user, pw))
	c.expectSuccess()
	feats := c.restart()
	if feats.Child(nsBind, "bind") == nil {
		tb.Fatalf("no bind feature after auth: %s", feats)
	}
	if got, want := c.bind(resource), user+"@"+testDomain+"/"+resource; got != want {
		tb.Fatalf("bound %q, want %q", got, want)
	}
	return c
}

// online logs in, requests the roster (so that pushes arrive) and sends
// initial presence with priority prio; it returns once the server echoed the
// presence back (RFC 6121 §4.2.2).
func (ts *testServer) online(tb testing.TB, user, resource string, prio int) *client {
	tb.Helper()
	c := ts.login(tb, user, resource)
	c.rosterGet("")
	c.presence(prio)
	return c
}

func (c *client) presence(prio int) {
	c.tb.Helper()
	c.send(fmt.Sprintf(`<presence><priority>%d</priority></presence>`, prio))
	c.waitFor("own presence", is("presence", "from", c.jid, "type", ""))
}

// rosterGet requests the roster and returns the result.
func (c *client) rosterGet(ver string) *wire.Element {
	c.tb.Helper()
	id := c.id()
	v := ""
	if ver != "" {
		v = ` ver='` + ver + `'`
	}
	c.send(`<iq type='get' id='` + id + `'><query xmlns='jabber:iq:roster'` + v + `/></iq>`)
	return c.waitFor("roster result", is("iq", "id", id, "type", "result"))
}

// iq sends an IQ and waits for its answer (result or error).
func (c *client) iq(typ, to, payload string) *wire.Element {
	c.tb.Helper()
	id := c.id()
	t := ""
	if to != "" {
		t = ` to='` + to + `'`
	}
	c.send(`<iq type='` + typ + `' id='` + id + `'` + t + `>` + payload + `</iq>`)
	return c.waitFor("answer to iq "+id, func(el *wire.Element) bool {
		return el.Local == "iq" && el.Attr("id") == id && (el.Attr("type") == "result" || el.Attr("type") == "error")
	})
}

// ---- matchers --------------------------------------------------------------

type pred func(*wire.Element) bool

// is matches the local name and attribute values; a value of "" requires
// the attribute to be absent, "*" only requires it to be present.
func is(local string, kv ...string) pred {
	return func(el *wire.Element) bool {
		if el.Local != local {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			switch v := kv[i+1]; v {
			case "":
				if el.HasAttr(kv[i]) {
					return false
				}
			case "*":
				if !el.HasAttr(kv[i]) {
					return false
				}
			default:
				if el.Attr(kv[i]) != v {
					return false
				}
			}
		}
		return true
	}
}

func (p pred) and(q pred) pred { return func(el *wire.Element) bool { return p(el) && q(el) } }

func hasChild(space, local string) pred {
	return func(el *wire.Element) bool { return el.Child(space, local) != nil }
}

// stanzaErr matches an RFC 6120 §8.3 error with the condition cond.
func isStanzaError(local, cond string) pred {
	return func(el *wire.Element) bool {
		return el.Local == local && el.Attr("type") == "error" && stanzaErrorCondition(el) == cond
	}
}

func stanzaErrorCondition(el *wire.Element) string {
	e := el.Child(nsClient, "error")
	if e == nil {
		return ""
	}
	for _, n := range e.Nodes {
		if n.El != nil && n.El.Space == nsStanzas && n.El.Local != "text" {
			return n.El.Local
		}
	}
	return ""
}

func bodyText(el *wire.Element) string {
	if b := el.Child(nsClient, "body"); b != nil {
		return b.Text()
	}
	return ""
}

func hasBody(text string) pred {
	return func(el *wire.Element) bool { return bodyText(el) == text }
}

// rosterItems maps JID to item of a roster result or push.
func rosterItems(tb testing.TB, iq *wire.Element) map[string]*wire.Element {
	tb.Helper()
	q := iq.Child(nsRoster, "query")
	if q == nil {
		tb.Fatalf("no roster query in %s", iq)
	}
	out := map[string]*wire.Element{}
	for _, n := range q.Nodes {
		if n.El != nil && n.El.Local == "item" {
			out[n.El.Attr("jid")] = n.El
		}
	}
	return out
}

func groupsOf(item *wire.Element) []string {
	var g []string
	for _, n := range item.Nodes {
		if n.El != nil && n.El.Local == "group" {
			g = append(g, n.El.Text())
		}
	}
	return g
}

// rosterPush matches a roster push (RFC 6121 §2.1.6) for jid with the
// given subscription (and ask when not empty).
func isRosterPush(jid, sub, ask string) pred {
	return func(el *wire.Element) bool {
		if el.Local != "iq" || el.Attr("type") != "set" || el.HasAttr("from") && el.Attr("from") != strings.SplitN(el.Attr("to"), "/", 2)[0] {
			return false
		}
		q := el.Child(nsRoster, "query")
		if q == nil {
			return false
		}
		it := q.Child(nsRoster, "item")
		if it == nil || it.Attr("jid") != jid || it.Attr("subscription") != sub {
			return false
		}
		return it.Attr("ask") == ask
	}
}
