package xmppd

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// fuzzDir is a one-user directory for the fuzz targets.
type fuzzDir struct{}

func (fuzzDir) Authenticate(_ context.Context, u, p string) error {
	if u == "alice" && p == "pw" {
		return nil
	}
	return errors.New("bad credentials")
}
func (fuzzDir) Person(u string) (Person, bool) { return Person{Username: u}, u == "alice" }
func (fuzzDir) Colleagues(string) []Person     { return nil }
func (fuzzDir) SaltedPassword(u, mech string) ([]byte, []byte, int, bool) {
	if u != "alice" {
		return nil, nil, 0, false
	}
	salt := []byte("0123456789abcdef")
	h := sha256.New
	if mech == "SCRAM-SHA-1" {
		h = sha1.New
	}
	return salt, sasl.SCRAMSaltPassword(h, []byte("pw"), salt, 4096), 4096, true
}
func (fuzzDir) SCRAMReady() bool { return true }

func fuzzServer(t testing.TB) *Server {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &Server{Domain: "example.com", Directory: fuzzDir{}, SCRAM: fuzzDir{}, Store: st,
		AllowPlaintext: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AuthFailureDelay: 1}
	s.init()
	return s
}

// FuzzResolve: address normalization never panics, and whatever it accepts
// is stable (normalizing the normalized form changes nothing).
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"alice@example.com", "Alice@Example.COM/Res", "example.com", "a@b/c/d",
		"@example.com", "a@", "ᴬlice@example.com", "\u212Aelvin@example.com", "x@[::1]", "a@example.com/\u0000", ""} {
		f.Add(s)
	}
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, to string) {
		a, _, ok := srv.resolve(to)
		if !ok {
			return
		}
		norm := a.bare
		if a.kind == addrLocalFull {
			norm = a.full
		}
		if a.kind == addrRemote {
			return
		}
		b, _, ok := srv.resolve(norm)
		if !ok {
			t.Fatalf("resolve(%q) gave %q which does not resolve", to, norm)
		}
		if b.kind != a.kind || b.bare != a.bare || b.full != a.full {
			t.Fatalf("not idempotent: %q -> %+v -> %+v", to, a, b)
		}
		if _, err := jid.Parse(a.bare); err != nil {
			t.Fatalf("bare %q of %q does not parse: %v", a.bare, to, err)
		}
	})
}

// FuzzSASL feeds arbitrary initial responses and second-round responses
// to every offered mechanism: no panic, no success without the password.
func FuzzSASL(f *testing.F) {
	f.Add("PLAIN", []byte("\x00alice\x00pw"), []byte(nil))
	f.Add("PLAIN", []byte("alice@example.com\x00alice\x00wrong"), []byte(nil))
	f.Add("SCRAM-SHA-256", []byte("n,,n=alice,r=abcdef"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add("SCRAM-SHA-1", []byte("p=tls-exporter,,n=alice,r=x"), []byte("c=,r=,p="))
	f.Add("SCRAM-SHA-256", []byte("y,a=bob@example.com,n=alice,r=x"), []byte(""))
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, mech string, first, second []byte) {
		c := newConn(srv, nopConn{}, "192.0.2.1", false)
		c.secure = true
		c.p = nil
		if !contains(c.mechanisms(), mech) {
			return
		}
		c.sasl = &saslExchange{mech: mech}
		if mech != "PLAIN" {
			c.sasl.neg = c.newSCRAM(mech)
		}
		// authSucceeded resets the parser; give it one.
		c.p = newTestParser()
		c.saslStep(first)
		if c.sasl != nil && !c.authed {
			c.saslStep(second)
		}
		if !c.authed {
			return
		}
		if mech != "PLAIN" {
			t.Fatalf("%s authenticated without knowing the password: %q %q", mech, first, second)
		}
		if parts := bytes.Split(first, []byte{0}); len(parts) != 3 || string(parts[2]) != "pw" || c.user != "alice" {
			t.Fatalf("PLAIN authenticated %q with %q", c.user, first)
		}
	})
}

// nopConn is a net.Conn that discards writes and never delivers data.
type nopConn struct{ net.Conn }

func (nopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) Close() error                     { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

func newTestParser() *wire.Parser { return wire.NewParser(nopConn{}, wire.Limits{}) }
