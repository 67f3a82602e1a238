package xmppd

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// anyoneDir is a Directory in which every username exists with any
// password and nobody shares a group: parking thousands of sessions needs
// thousands of accounts (one user's sessions are bounded), and an empty
// shared roster keeps the measurement on what ending a session writes.
type anyoneDir struct{}

func (anyoneDir) Authenticate(context.Context, string, string) error { return nil }
func (anyoneDir) Person(u string) (Person, bool)                     { return Person{Username: u}, true }
func (anyoneDir) Colleagues(string) []Person                         { return nil }

func withAnyoneDir(s *Server) {
	s.Directory = anyoneDir{}
	s.SCRAM = nil
	s.ResumeTimeout = time.Hour // nothing here may end by the window
}

// parkedUser is the username of the i-th session parkMany parks.
func parkedUser(i int) string { return fmt.Sprintf("p%05d", i) }

// parkMany parks n sessions over real sockets: each of parkedUser(0..n-1)
// logs in, enables resumable stream management, becomes available, sends
// itself one message it never acknowledges ("m-<user>") and drops its TCP
// connection without closing the stream.
func (ts *testServer) parkMany(tb testing.TB, n int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		u := parkedUser(i)
		c := ts.login(tb, u, "r")
		c.enableSM(true)
		c.presence(0)
		c.send(message(c.jid, "m-"+u))
		c.waitFor("own message", hasBody("m-"+u))
		c.nc.Close()
	}
	waitUntil(tb, fmt.Sprintf("%d sessions to park", n), func() bool { return ts.parkedCount() == n })
}

func (ts *testServer) parkedCount() int {
	n := 0
	for _, c := range ts.sm.all() {
		if l, _ := c.testSMLife(); l == smParked {
			n++
		}
	}
	return n
}

// checkParkedStored requires each parked user's message in offline
// storage exactly once and its last activity written.
func (ts *testServer) checkParkedStored(tb testing.TB, n int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		u := parkedUser(i)
		got := offlineBodies(tb, ts, u)
		if len(got) != 1 || got[0] != "m-"+u {
			tb.Fatalf("offline storage of %s after Shutdown: %q, want exactly [m-%s]", u, got, u)
		}
		if at, _, err := ts.Store.LastActivity(u); err != nil || at.IsZero() {
			tb.Fatalf("last activity of %s after Shutdown: %v, %v", u, at, err)
		}
	}
}

// TestParkedShutdown: Shutdown ends every parked session the way the
// resumption window would, and every unacknowledged message is in offline
// storage exactly once when Shutdown returns (the store may close right
// after). Enough sessions that the ends are written in several batches.
func TestParkedShutdown(t *testing.T) {
	const n = 300
	ts := newTestServer(t, withAnyoneDir, func(s *Server) { s.ShutdownGrace = time.Hour })
	ts.parkMany(t, n)
	live := ts.login(t, "live", "r")
	live.enableSM(true)
	live.presence(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	live.expectStreamError("system-shutdown")
	if left := ts.parkedCount(); left != 0 {
		t.Fatalf("%d sessions still parked after Shutdown", left)
	}
	if s := ts.Sessions(); len(s) != 0 {
		t.Fatalf("sessions after Shutdown: %v", s)
	}
	ts.checkParkedStored(t, n)
}

// BenchmarkShutdownParked measures Shutdown with n parked sessions, each
// with one unacknowledged message to store and its last activity to write.
// Setting up 10,000 parked sessions takes a while; run with -benchtime=1x.
func BenchmarkShutdownParked(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint("parked=", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ts := newTestServer(b, withAnyoneDir, func(s *Server) { s.ShutdownGrace = time.Hour })
				ts.parkMany(b, n)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				b.StartTimer()
				err := ts.Shutdown(ctx)
				b.StopTimer()
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				ts.checkParkedStored(b, n)
			}
		})
	}
}
