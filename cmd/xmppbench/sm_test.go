package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestClassifySM(t *testing.T) {
	tests := []struct {
		tok  string
		want smToken
	}{
		{`<message from='a@b/c' type='chat'><body>hi</body></message>`, smStanza},
		{`<message/>`, smStanza},
		{`<presence from='a@b/c'/>`, smStanza},
		{`<presence type="unavailable"></presence>`, smStanza},
		{`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`, smStanza},
		{`<iq type='error' id='x'/>`, smStanza},
		{`<r xmlns='urn:xmpp:sm:3'/>`, smRequest},
		{`<r xmlns="urn:xmpp:sm:3"></r>`, smRequest},
		{`<r  xmlns = 'urn:xmpp:sm:3' />`, smRequest},
		{`<a xmlns='urn:xmpp:sm:3' h='5'/>`, smNonza},
		{`<enabled xmlns='urn:xmpp:sm:3' id='x' resume='true'/>`, smNonza},
		{`<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`, smNonza},
		// Not XEP-0198's, not a stanza: neither counted nor answered.
		{`<r xmlns='urn:xmpp:sm:2'/>`, smOther},
		{`<r/>`, smOther},
		{`<messages xmlns='x'/>`, smOther},
		{`<iqx/>`, smOther},
		{`<stream:features><sm xmlns='urn:xmpp:sm:3'/></stream:features>`, smOther},
		{`<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, smOther},
	}
	for _, tt := range tests {
		if got := classifySM([]byte(tt.tok)); got != tt.want {
			t.Errorf("classifySM(%s) = %d, want %d", tt.tok, got, tt.want)
		}
	}
}

// TestSMCounting feeds token sequences to a counter and checks the <a/>
// written for every <r/> (XEP-0198 §4), including the wrap at 2^32.
func TestSMCounting(t *testing.T) {
	const (
		msg = `<message type='chat'><body>x</body></message>`
		pre = `<presence/>`
		iq  = `<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`
		r   = `<r xmlns='urn:xmpp:sm:3'/>`
		a   = `<a xmlns='urn:xmpp:sm:3' h='1'/>`
	)
	ack := func(h uint32) string { return fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/>", h) }
	tests := []struct {
		name  string
		start smCounter
		toks  []string
		acks  []string
		h     uint32
	}{
		{"nothing received", smCounter{on: true}, []string{r}, []string{ack(0)}, 0},
		{"each stanza kind once", smCounter{on: true}, []string{pre, msg, iq, r}, []string{ack(3)}, 3},
		{"nonzas and others not counted", smCounter{on: true},
			[]string{msg, a, `<enabled xmlns='urn:xmpp:sm:3'/>`, `<r xmlns='other'/>`, r}, []string{ack(1)}, 1},
		{"two requests", smCounter{on: true}, []string{msg, msg, r, msg, r, r}, []string{ack(2), ack(3), ack(3)}, 3},
		{"wraps at 2^32", smCounter{on: true, h: 1<<32 - 2}, []string{msg, r, msg, r, msg, r},
			[]string{ack(1<<32 - 1), ack(0), ack(1)}, 1},
		{"off: nothing counted or answered", smCounter{}, []string{msg, r, msg}, nil, 0},
	}
	for _, tt := range tests {
		c := tt.start
		var acks []string
		for _, tok := range tt.toks {
			if c.see([]byte(tok)) == smRequest {
				acks = append(acks, string(c.ack()))
			}
		}
		if strings.Join(acks, " ") != strings.Join(tt.acks, " ") || c.h != tt.h {
			t.Errorf("%s: acks %q, h %d; want %q, h %d", tt.name, acks, c.h, tt.acks, tt.h)
		}
	}
}

func TestOffersSM(t *testing.T) {
	for feats, want := range map[string]bool{
		`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>`:  true,
		`<stream:features><sm xmlns="urn:xmpp:sm:3"><optional/></sm></stream:features>`:                                   true,
		`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:2'/></stream:features>`:  false,
		`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`:                             false,
		`<stream:features><smx xmlns='urn:xmpp:sm:3'/><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`: false,
	} {
		if got := offersSM([]byte(feats)); got != want {
			t.Errorf("offersSM(%s) = %v", feats, got)
		}
	}
}

// TestSMSession logs in with stream management against the fake server:
// <enable/> comes after binding and before the initial presence, and the
// read loop answers <r/> with the count of stanzas received since
// <enabled/>, counting the ping it answers too.
func TestSMSession(t *testing.T) {
	fs := newFakeServer(t)
	fs.offerSM = true
	got := make(chan string, 8)
	fs.after = func(c *fakeConn) {
		for _, want := range []string{"<enable xmlns='urn:xmpp:sm:3' resume='true'/>", "<presence/>"} {
			tok, err := c.read()
			if err != nil || tok != want {
				t.Errorf("read %q, %v; want %s", tok, err, want)
				return
			}
			if strings.HasPrefix(tok, "<enable") {
				c.send(`<enabled xmlns='urn:xmpp:sm:3' id='c2lk' resume='true' max='300'/>`)
			}
		}
		c.send(`<presence from='user1@example.com/bench-7'/>` +
			`<message from='user2@example.com/b' type='chat'><body>x</body></message>` +
			`<iq type='get' id='p1' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>` +
			`<r xmlns='urn:xmpp:sm:3'/>`)
		for range 2 { // the pong, then the ack
			tok, _ := c.read()
			got <- tok
		}
		c.send(strings.Repeat(`<message type='chat'><body>y</body></message>`, 16) + `<r xmlns='urn:xmpp:sm:3'/>`)
		tok, _ := c.read()
		got <- tok
		c.send(`</stream:stream>`)
	}
	fs.start()
	cfg := fs.client(false)
	cfg.SM = true
	s, err := cfg.login(context.Background(), "user1", true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.sm.id != "c2lk" || s.sm.max != 300 || !s.sm.on {
		t.Errorf("sm = %+v", s.sm)
	}
	var stanzas int
	err = s.readLoop(func(tok []byte) { stanzas++ })
	var se *streamError
	if !errors.As(err, &se) {
		t.Errorf("readLoop error = %v", err)
	}
	if stanzas != 18 {
		t.Errorf("onStanza saw %d stanzas, want 18 (no iq, no <r/>)", stanzas)
	}
	for _, want := range []string{
		`<iq id='p1' to='example.com' type='result'/>`,
		`<a xmlns='urn:xmpp:sm:3' h='3'/>`,
		`<a xmlns='urn:xmpp:sm:3' h='19'/>`,
	} {
		if a := <-got; a != want {
			t.Errorf("client sent %q, want %q", a, want)
		}
	}
	if err := <-fs.done; err != nil {
		t.Errorf("server: %v", err)
	}
}

// TestSMNotOffered fails the login at the "sm" step.
func TestSMNotOffered(t *testing.T) {
	fs := newFakeServer(t)
	fs.start()
	cfg := fs.client(false)
	cfg.SM = true
	_, err := cfg.login(context.Background(), "user1", true)
	var le *loginError
	if !errors.As(err, &le) || le.Step != "sm" {
		t.Fatalf("login error = %v, want step sm", err)
	}
}

// TestDrop checks that drop ends the connection without the closing tag
// (so that the server parks the session), with and without TLS, where
// close sends </stream:stream>.
func TestDrop(t *testing.T) {
	for _, tt := range []struct {
		name     string
		starttls bool
		drop     bool
	}{
		{"plain drop", false, true},
		{"tls drop", true, true},
		{"plain close", false, false},
		{"tls close", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t)
			fs.offerTLS = tt.starttls
			seen := make(chan string, 1)
			fs.after = func(c *fakeConn) {
				tok, err := c.read()
				if err != nil {
					tok = "error"
				}
				seen <- tok
			}
			fs.start()
			s, err := fs.client(tt.starttls).login(context.Background(), "user1", false)
			if err != nil {
				t.Fatal(err)
			}
			if tt.drop {
				s.drop()
			} else {
				s.close()
			}
			want := "</stream:stream>"
			if tt.drop {
				want = "error"
			}
			if got := <-seen; got != want {
				t.Errorf("server read %q, want %s", got, want)
			}
			<-fs.done
		})
	}
}

func TestResume(t *testing.T) {
	tests := []struct {
		name     string
		answer   string
		wantStep string
	}{
		{"resumed", `<resumed xmlns='urn:xmpp:sm:3' h='7' previd='c2lk'/>`, ""},
		{"failed", `<failed xmlns='urn:xmpp:sm:3' h='7'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`, "resume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t)
			fs.offerSM = true
			fs.resume = func(c *fakeConn, tok string) error {
				if want := `<resume xmlns='urn:xmpp:sm:3' h='4294967295' previd='c2lk'/>`; tok != want {
					return fmt.Errorf("got %q, want %s", tok, want)
				}
				c.send(tt.answer)
				if tt.wantStep == "" {
					c.send(`<message type='chat'><body>again</body></message><r xmlns='urn:xmpp:sm:3'/>`)
					if _, err := c.expect(`<a xmlns='urn:xmpp:sm:3' h='0'/>`); err != nil {
						return err
					}
					c.send(`</stream:stream>`)
				}
				return nil
			}
			fs.start()
			s, err := fs.client(false).resume(context.Background(), "user1", "c2lk", 1<<32-1)
			if tt.wantStep != "" {
				var le *loginError
				if !errors.As(err, &le) || le.Step != tt.wantStep {
					t.Fatalf("resume error = %v, want step %s", err, tt.wantStep)
				}
				<-fs.done
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			s.readLoop(nil) // the retransmitted message wraps h to 0
			if err := <-fs.done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
}

// BenchmarkSMSee is the per-stanza cost of counting on the receiver.
func BenchmarkSMSee(b *testing.B) {
	tok := []byte(benchMessage)
	r := []byte(`<r xmlns='urn:xmpp:sm:3'/>`)
	var c smCounter
	c.on = true
	b.ReportAllocs()
	for b.Loop() {
		c.see(tok)
		if c.see(r) == smRequest {
			_ = c.ack()
		}
	}
}

// TestAckThenDrop: the first <r/> is answered with what was received, then
// the connection is dropped without the closing tag.
func TestAckThenDrop(t *testing.T) {
	fs := newFakeServer(t)
	fs.offerSM = true
	fs.after = func(c *fakeConn) {
		if _, err := c.expect("<enable"); err != nil {
			t.Error(err)
			return
		}
		c.send(`<enabled xmlns='urn:xmpp:sm:3' id='c2lk' resume='true' max='300'/>`)
		c.expect("<presence/>")
		c.send(`<presence from='user1@example.com/bench-7'/><iq type='get' id='p' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq><r xmlns='urn:xmpp:sm:3'/>`)
		for _, want := range []string{"<iq id='p' to='example.com' type='result'/>", "<a xmlns='urn:xmpp:sm:3' h='2'/>"} {
			if _, err := c.expect(want); err != nil {
				t.Error(err)
			}
		}
		if tok, err := c.read(); err == nil {
			t.Errorf("read %q after the ack, want the connection dropped", tok)
		}
	}
	fs.offerTLS = true
	fs.start()
	cfg := fs.client(true)
	cfg.SM = true
	s, err := cfg.login(context.Background(), "user1", true)
	if err != nil {
		t.Fatal(err)
	}
	var stanzas int
	if err := s.ackThenDrop(func([]byte) { stanzas++ }); err != nil {
		t.Errorf("ackThenDrop: %v", err)
	}
	if stanzas != 1 || s.sm.h != 2 {
		t.Errorf("stanzas %d, h %d; want 1, 2", stanzas, s.sm.h)
	}
	if err := <-fs.done; err != nil {
		t.Errorf("server: %v", err)
	}
}
