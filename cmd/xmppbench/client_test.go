package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSASLPlain(t *testing.T) {
	tests := []struct {
		user, pass, want string
	}{
		// RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd.
		{"user1", "secret", "AHVzZXIxAHNlY3JldA=="},
		{"tim", "tanstaaftanstaaf", "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"},
		{"", "", "AAA="},
		{"jürgen", "pä ss", base64.StdEncoding.EncodeToString([]byte("\x00jürgen\x00pä ss"))},
	}
	for _, tt := range tests {
		got := saslPlain(tt.user, tt.pass)
		if got != tt.want {
			t.Errorf("saslPlain(%q, %q) = %q, want %q", tt.user, tt.pass, got, tt.want)
		}
		raw, err := base64.StdEncoding.DecodeString(got)
		if err != nil || string(raw) != "\x00"+tt.user+"\x00"+tt.pass {
			t.Errorf("saslPlain(%q, %q) decodes to %q, %v", tt.user, tt.pass, raw, err)
		}
	}
}

func TestFeatures(t *testing.T) {
	const (
		ejabberdTLS = `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` +
			`<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>`
		required  = `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`
		bindOpt   = `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>`
		bindReq   = `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>`
		scramOnly = `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>`
	)
	tests := []struct {
		name                      string
		feats                     string
		plain, tlsReq, sessionReq bool
	}{
		{"ejabberd optional starttls", ejabberdTLS, true, false, false},
		{"starttls required", required, false, true, false},
		{"session optional", bindOpt, false, false, false},
		{"session required", bindReq, false, false, true},
		{"no PLAIN", scramOnly, false, false, false},
	}
	for _, tt := range tests {
		f := []byte(tt.feats)
		if got := offersMechanism(f, "PLAIN"); got != tt.plain {
			t.Errorf("%s: offersMechanism = %v", tt.name, got)
		}
		if got := starttlsRequired(f); got != tt.tlsReq {
			t.Errorf("%s: starttlsRequired = %v", tt.name, got)
		}
		if got := sessionRequired(f); got != tt.sessionReq {
			t.Errorf("%s: sessionRequired = %v", tt.name, got)
		}
	}
}

// fakeServer is a scripted XMPP server for one connection at a time. It
// reads with the same splitter as the client, which TestSplit covers on
// its own.
type fakeServer struct {
	t        *testing.T
	ln       net.Listener
	tls      *tls.Config
	offerTLS bool
	needTLS  bool
	session  string // "", "optional" or "required"
	offerSM  bool   // offer XEP-0198 with resource binding
	password string
	// resume, when set, handles the first element after the post-SASL
	// features instead of resource binding.
	resume func(c *fakeConn, tok string) error
	// after runs once the client is bound, with the server side of the
	// stream; it may send stanzas and read answers.
	after func(fs *fakeConn)
	done  chan error
}

type fakeConn struct {
	conn  net.Conn
	split streamSplitter
	sc    *bufio.Scanner
}

func (c *fakeConn) reset(conn net.Conn) {
	c.conn = conn
	c.split.reset()
	c.sc = bufio.NewScanner(conn)
	c.sc.Split(c.split.split)
}

func (c *fakeConn) read() (string, error) {
	if !c.sc.Scan() {
		if c.sc.Err() != nil {
			return "", c.sc.Err()
		}
		return "", errors.New("client closed")
	}
	return c.sc.Text(), nil
}

func (c *fakeConn) send(s string) error {
	_, err := c.conn.Write([]byte(s))
	return err
}

// expect reads one token and checks that it starts with prefix.
func (c *fakeConn) expect(prefix string) (string, error) {
	tok, err := c.read()
	if err != nil {
		return "", fmt.Errorf("waiting for %s: %w", prefix, err)
	}
	if !strings.HasPrefix(tok, prefix) {
		return tok, fmt.Errorf("got %q, want %s...", tok, prefix)
	}
	return tok, nil
}

const fakeHeader = `<?xml version='1.0'?><stream:stream from='example.com' id='s1' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{t: t, ln: ln, tls: testTLSConfig(t), password: "secret", done: make(chan error, 1)}
	t.Cleanup(func() { ln.Close() })
	return fs
}

func (fs *fakeServer) start() {
	go func() {
		conn, err := fs.ln.Accept()
		if err != nil {
			fs.done <- err
			return
		}
		defer conn.Close()
		fs.done <- fs.serve(conn)
	}()
}

func (fs *fakeServer) serve(conn net.Conn) error {
	c := &fakeConn{}
	c.reset(conn)
	if _, err := c.expect("<stream:stream"); err != nil {
		return err
	}
	switch {
	case fs.needTLS:
		c.send(fakeHeader + `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`)
	case fs.offerTLS:
		c.send(fakeHeader + `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` +
			`<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`)
	default:
		c.send(fakeHeader + `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`)
	}
	tok, err := c.read()
	if err != nil {
		return err
	}
	if strings.HasPrefix(tok, "<starttls") {
		c.send(`<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
		tc := tls.Server(conn, fs.tls)
		if err := tc.Handshake(); err != nil {
			return err
		}
		c.reset(tc)
		if _, err := c.expect("<stream:stream"); err != nil {
			return err
		}
		c.send(fakeHeader + `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`)
		if tok, err = c.read(); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(tok, "<auth") || !strings.Contains(tok, "mechanism='PLAIN'") {
		return fmt.Errorf("got %q, want auth", tok)
	}
	if !strings.Contains(tok, ">"+saslPlain("user1", fs.password)+"<") {
		c.send(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
		return nil
	}
	c.send(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
	c.split.reset()
	if _, err := c.expect("<stream:stream"); err != nil {
		return err
	}
	sess := ""
	switch fs.session {
	case "optional":
		sess = `<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>`
	case "required":
		sess = `<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>`
	}
	sm := ""
	if fs.offerSM {
		sm = `<sm xmlns='urn:xmpp:sm:3'/>`
	}
	c.send(fakeHeader + `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>` + sess + sm + `</stream:features>`)
	if fs.resume != nil {
		tok, err := c.read()
		if err != nil {
			return err
		}
		return fs.resume(c, tok)
	}
	tok, err = c.expect("<iq")
	if err != nil {
		return err
	}
	if !strings.Contains(tok, "<resource>bench</resource>") {
		return fmt.Errorf("bind without resource: %q", tok)
	}
	id, _, _ := attr([]byte(tok), "id")
	c.send(`<iq type="result" id="` + string(id) + `"><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user1@example.com/bench-7</jid></bind></iq>`)
	if fs.session == "required" {
		tok, err = c.expect("<iq")
		if err != nil {
			return err
		}
		id, _, _ := attr([]byte(tok), "id")
		c.send(`<iq type='result' id='` + string(id) + `'/>`)
	}
	if fs.after != nil {
		fs.after(c)
	}
	return nil
}

func (fs *fakeServer) client(starttls bool) *clientConfig {
	return &clientConfig{
		Addr:     fs.ln.Addr().String(),
		Domain:   "example.com",
		Password: "secret",
		Resource: "bench",
		STARTTLS: starttls,
		TLS:      &tls.Config{ServerName: "example.com", InsecureSkipVerify: true},
		Timeout:  5 * time.Second,
	}
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name     string
		starttls bool
		offerTLS bool
		needTLS  bool
		session  string
		password string
		presence bool
		wantStep string // "" for success
	}{
		{name: "plaintext", presence: true},
		{name: "starttls", starttls: true, offerTLS: true},
		{name: "starttls session required", starttls: true, offerTLS: true, session: "required", presence: true},
		{name: "session optional", session: "optional"},
		{name: "server requires tls", needTLS: true, wantStep: "starttls"},
		{name: "tls not offered", starttls: true, wantStep: "starttls"},
		{name: "bad password", password: "other", wantStep: "sasl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t)
			fs.offerTLS, fs.needTLS, fs.session = tt.offerTLS, tt.needTLS, tt.session
			if tt.password != "" {
				fs.password = tt.password
			}
			if tt.presence {
				fs.after = func(c *fakeConn) {
					if _, err := c.expect("<presence/>"); err != nil {
						t.Error(err)
					}
				}
			}
			fs.start()
			s, err := fs.client(tt.starttls).login(context.Background(), "user1", tt.presence)
			if tt.wantStep != "" {
				var le *loginError
				if !errors.As(err, &le) || le.Step != tt.wantStep {
					t.Fatalf("login error = %v, want step %s", err, tt.wantStep)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.jid != "user1@example.com/bench-7" {
				t.Errorf("jid = %q", s.jid)
			}
			if _, ok := s.conn.(*tls.Conn); ok != tt.starttls {
				t.Errorf("TLS = %v, want %v", ok, tt.starttls)
			}
			if err := <-fs.done; err != nil {
				t.Errorf("server: %v", err)
			}
			s.close()
		})
	}
}

// TestReadLoop checks that stanzas reach the callback, pings are answered
// and a stream error ends the loop with a streamError.
func TestReadLoop(t *testing.T) {
	fs := newFakeServer(t)
	answers := make(chan string, 2)
	fs.after = func(c *fakeConn) {
		c.send(`<iq type='get' id='p1' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`)
		tok, _ := c.read()
		answers <- tok
		c.send(`<iq type="set" id="q'2"><query xmlns='x'/></iq>`)
		tok, _ = c.read()
		answers <- tok
		c.send(`<message from='user2@example.com/b' type='chat'><body>xbts=10:0:xx</body></message>`)
		c.send(`<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
	}
	fs.start()
	s, err := fs.client(false).login(context.Background(), "user1", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var got []string
	err = s.readLoop(func(tok []byte) { got = append(got, string(tok)) })
	var se *streamError
	if !errors.As(err, &se) || !strings.Contains(se.raw, "system-shutdown") {
		t.Errorf("readLoop error = %v", err)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "<message") {
		t.Errorf("stanzas = %q", got)
	}
	if a := <-answers; a != `<iq id='p1' to='example.com' type='result'/>` {
		t.Errorf("ping answer = %q", a)
	}
	if a := <-answers; !strings.HasPrefix(a, `<iq id="q'2" type='error'>`) || !strings.Contains(a, "service-unavailable") {
		t.Errorf("iq set answer = %q", a)
	}
}

// testTLSConfig returns a server config with a fresh self-signed
// certificate for example.com.
func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{"example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestStampRoundTrip(t *testing.T) {
	p := &pair{prefix: []byte("<message to='user2@example.com/bench' type='chat'><body>" + bodyMarker)}
	for _, size := range []int{29, 100, 1000} {
		b := p.appendMessage(nil, 123456789012, 77, size)
		body, ok := childText(b, "body")
		if !ok || len(body) != size {
			t.Errorf("size %d: body %q (%d bytes)", size, body, len(body))
		}
		ts, seq, ok := parseStamp(b)
		if !ok || ts != 123456789012 || seq != 77 {
			t.Errorf("size %d: parseStamp = %d, %d, %v", size, ts, seq, ok)
		}
	}
	bad := []string{
		"<message><body>hello</body></message>",
		"<message><body>xbts=12</body></message>",
		"<message><body>xbts=:1:</body></message>",
		"<message><body>xbts=12:x</body></message>",
	}
	for _, b := range bad {
		if _, _, ok := parseStamp([]byte(b)); ok {
			t.Errorf("parseStamp(%q) succeeded", b)
		}
	}
}

// TestReceive checks counting, ordering and credits on the receiver side.
func TestReceive(t *testing.T) {
	p := &pair{credits: make(chan struct{}, 2)}
	win := window{epoch: time.Now().Add(-time.Second), start: 100, end: 1000}
	errs := newErrorLog()
	for _, m := range []string{
		"<message><body>xbts=50:0:x</body></message>",  // warm-up: counted, not measured
		"<message><body>xbts=150:1:x</body></message>", // measured
		"<message><body>xbts=160:3:x</body></message>", // gap: out of order
		"<presence/>",
		"<message type='error'><body>nope</body></message>",
	} {
		p.receive([]byte(m), win, errs)
	}
	if p.recv.Load() != 3 || p.measured != 2 || p.ooo != 1 || p.hist.Count() != 2 {
		t.Errorf("recv %d measured %d ooo %d hist %d", p.recv.Load(), p.measured, p.ooo, p.hist.Count())
	}
	if len(p.credits) != 2 {
		t.Errorf("credits = %d, want 2 (capped)", len(p.credits))
	}
	if n, kinds, _ := errs.snapshot(); n != 1 || kinds["message-error"] != 1 {
		t.Errorf("errors = %d %v", n, kinds)
	}
}

func TestProcParse(t *testing.T) {
	status := "Name:\tbeam.smp\nVmPeak:\t  100 kB\nVmRSS:\t   87816 kB\nRssAnon:\t 1 kB\n"
	if v, err := parseVmRSS([]byte(status)); err != nil || v != 87816 {
		t.Errorf("parseVmRSS = %d, %v", v, err)
	}
	if _, err := parseVmRSS([]byte("Name: x\n")); err == nil {
		t.Errorf("parseVmRSS without VmRSS succeeded")
	}
	// Field 2 may contain spaces and parentheses.
	stat := "1234 (weird ) name) S 1 1 1 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 20 0 100 1000 200"
	if d, err := parseStatCPU([]byte(stat)); err != nil || d != 3800*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v", d, err)
	}
	if _, err := parseStatCPU([]byte("1 (x) S 1")); err == nil {
		t.Errorf("short stat accepted")
	}
	for in, want := range map[string]int{
		"Name:\tx\nCpus_allowed:\t2\nCpus_allowed_list:\t1\n":  1,
		"Name:\tx\nCpus_allowed_list:\t0-1\n":                  -1,
		"Name:\tx\nCpus_allowed_list:\t0,3\n":                  -1,
		"Name:\tx\n":                                           -1,
		"Name:\tx\nCpus_allowed_list:\t12\nMems_allowed:\t1\n": 12,
	} {
		if got := parsePinned([]byte(in)); got != want {
			t.Errorf("parsePinned(%q) = %d, want %d", in, got, want)
		}
	}
	procStat := "cpu  900 0 300 5000 10 0 5 0 0 0\n" +
		"cpu0 400 0 100 2500 5 0 2 0 0 0\n" +
		"cpu1 500 0 200 2500 5 0 3 1 0 0\n" +
		"intr 12345\n"
	// cpu1: user 500 + system 200 + softirq 3 + steal 1, idle and iowait left out.
	if d, err := parseCoreBusy([]byte(procStat), 1); err != nil || d != 7040*time.Millisecond {
		t.Errorf("parseCoreBusy(cpu1) = %v, %v", d, err)
	}
	if _, err := parseCoreBusy([]byte(procStat), 2); err == nil {
		t.Errorf("parseCoreBusy(cpu2) succeeded")
	}
}

func TestCoreWatch(t *testing.T) {
	w := coreWatch{core: 1}
	t0 := time.Now()
	a := coreSample{at: t0, busy: 10 * time.Second, self: 4 * time.Second}
	b := coreSample{at: t0.Add(2 * time.Second), busy: 12 * time.Second, self: 5500 * time.Millisecond}
	// The core was busy 2 s in 2 s, of which the process used 1.5 s.
	if p := w.othersPct(a, b); p == nil || *p != 25 {
		t.Errorf("othersPct = %v, want 25", p)
	}
	if p := (coreWatch{core: -1}).othersPct(a, b); p != nil {
		t.Errorf("unpinned othersPct = %v, want nil", *p)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(o *options) bool
	}{
		{[]string{"-mode", "login"}, "", func(o *options) bool { return o.N == 2000 && o.TLS && !o.presence() }},
		{[]string{"-mode", "msg", "-size", "1"}, "", func(o *options) bool { return o.Size == len(bodyMarker)+24 && o.presence() }},
		{[]string{"-mode", "idle", "-pid", "1", "-ramp", "500/s"}, "", func(o *options) bool { return o.Ramp == 500 }},
		{[]string{"-mode", "idle"}, "needs -pid", nil},
		{[]string{"-mode", "x"}, "unknown -mode", nil},
		{[]string{"-user", "u%s%d"}, "exactly one", nil},
		{[]string{"-ramp", "fast"}, "bad rate", nil},
		{[]string{"-presence", "maybe"}, "-presence", nil},
		{[]string{"-mode", "msg", "-sm"}, "", func(o *options) bool { return o.SM && !o.Park }},
		{[]string{"-mode", "idle", "-pid", "1", "-sm", "-park"}, "", func(o *options) bool { return o.SM && o.Park }},
		{[]string{"-mode", "idle", "-pid", "1", "-sm", "-park-each"}, "", func(o *options) bool { return o.Park && o.ParkEach }},
		{[]string{"-mode", "idle", "-pid", "1", "-park"}, "-park and -park-each need", nil},
		{[]string{"-mode", "idle", "-pid", "1", "-park-each"}, "-park and -park-each need", nil},
		{[]string{"-mode", "msg", "-sm", "-park"}, "-park and -park-each need", nil},
		{[]string{"-mode", "login", "-sm"}, "-sm is for", nil},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		o, err := parseFlags(tt.args, &out)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !tt.check(o) {
			t.Errorf("%q: %+v, %v", tt.args, o, err)
		}
	}
	o := &options{UserFmt: "load-%d"}
	if got := o.userName(42); got != "load-42" {
		t.Errorf("userName = %q", got)
	}
}

// BenchmarkReceive is the receiver's per-message work after scanning:
// find the stamp, record the latency, return the credit.
func BenchmarkReceive(b *testing.B) {
	p := &pair{credits: make(chan struct{}, 10)}
	win := window{epoch: time.Now(), end: 1 << 62}
	errs := newErrorLog()
	tok := []byte(benchMessage)
	b.ReportAllocs()
	for b.Loop() {
		p.receive(tok, win, errs)
	}
}

// BenchmarkAppendMessage is the sender's per-message work.
func BenchmarkAppendMessage(b *testing.B) {
	p := &pair{prefix: []byte("<message to='user2@example.com/bench' type='chat'><body>" + bodyMarker)}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		buf = p.appendMessage(buf[:0], time.Duration(seq)*1000, seq, 100)
		seq++
	}
}
