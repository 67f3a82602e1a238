package ldapsync

import (
	"bytes"
	"net"
	"sync"
	"testing"

	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

// The OpenLDAP tests run Debian's slapd through package slapdtest (shared
// with the e2e tests); these are the short names the tests here use.

type (
	slapd        = slapdtest.Server
	slapdOptions = slapdtest.Options
)

const (
	suffix    = slapdtest.Suffix
	serviceDN = slapdtest.ServiceDN
	servicePW = slapdtest.ServicePassword
)

// fixture is testdata/corp.ldif.
var fixture = slapdtest.Fixture()

func startSlapd(t testing.TB, o slapdOptions) *slapd { t.Helper(); return slapdtest.Start(t, o) }
func requireSlapd(t testing.TB)                      { t.Helper(); slapdtest.Require(t) }

var (
	personAttrs = slapdtest.Person
	freePort    = slapdtest.FreePort
	writeCerts  = slapdtest.WriteCerts
)

// recorder is a TCP proxy in front of a server that keeps every byte the
// client sent, to prove what did or did not cross the wire.
type recorder struct {
	l    net.Listener
	to   string
	mu   sync.Mutex
	sent bytes.Buffer
	wg   sync.WaitGroup
}

func newRecorder(t testing.TB, to string) *recorder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{l: l, to: to}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() { l.Close(); r.wg.Wait() })
	return r
}

func (r *recorder) URL() string { return "ldap://" + r.l.Addr().String() }

func (r *recorder) serve() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		r.wg.Add(2)
		go func() { // client -> server, recorded
			defer r.wg.Done()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					r.mu.Lock()
					r.sent.Write(buf[:n])
					r.mu.Unlock()
					up.Write(buf[:n])
				}
				if err != nil {
					up.Close()
					return
				}
			}
		}()
		go func() {
			defer r.wg.Done()
			buf := make([]byte, 4096)
			for {
				n, err := up.Read(buf)
				if n > 0 {
					c.Write(buf[:n])
				}
				if err != nil {
					c.Close()
					return
				}
			}
		}()
	}
}

func (r *recorder) Sent() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.sent.Bytes())
}
