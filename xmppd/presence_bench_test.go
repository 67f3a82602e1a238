package xmppd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/ownchat/ownchat/staticdir"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// The shared-roster scale of issue 4: one directory group of 5,000 people,
// served by the real static directory (the same group index the LDAP
// backend uses), a real store, and in-process sessions whose sockets
// discard writes, so the figures are the server's own work.

const benchGroupSize = 5000

// staticDirAdapter is cmd/xmppd's adapter, repeated here because xmppd
// must not import staticdir outside tests.
type staticDirAdapter struct{ d *staticdir.Directory }

func (a staticDirAdapter) Authenticate(ctx context.Context, username, password string) error {
	return a.d.Authenticate(ctx, username, password)
}

func (a staticDirAdapter) Person(username string) (Person, bool) {
	p, ok := a.d.Lookup(username)
	return Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}, ok
}

func (a staticDirAdapter) Colleagues(username string) []Person {
	cs := a.d.Colleagues(username)
	out := make([]Person, len(cs))
	for i, p := range cs {
		out[i] = Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}
	}
	return out
}

func benchUser(i int) string { return fmt.Sprintf("u%04d", i) }

// groupServer is a server whose directory has one group "Everyone" of
// benchGroupSize people, the first online of them bound to in-process
// sessions (not yet available).
func groupServer(tb testing.TB, online int) (*Server, []*conn) {
	users := make([]staticdir.User, benchGroupSize)
	for i := range users {
		users[i] = staticdir.User{Name: benchUser(i), DisplayName: fmt.Sprintf("User %d", i), Password: "x", Groups: []string{"Everyone"}}
	}
	d, err := staticdir.New(users)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	s := &Server{Domain: testDomain, Directory: staticDirAdapter{d}, AllowPlaintext: true, Store: st,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OutQueueBytes: 1 << 40}
	s.init()
	conns := make([]*conn, online)
	for i := range conns {
		c := newConn(s, discardConn{}, "127.0.0.1", false)
		c.user, c.resource = benchUser(i), "r"
		c.bareJID = c.user + "@" + testDomain
		c.fullJID = c.bareJID + "/r"
		c.toAttr = appendAttr(nil, "to", c.fullJID)
		c.state = stBound
		if _, ok := s.router.bind(c, 10); !ok {
			tb.Fatal("bind")
		}
		conns[i] = c
	}
	return s, conns
}

const benchPresence = `<presence><show>away</show><status>In a meeting</status><priority>5</priority></presence>`

func parsedPresence(tb testing.TB) *wire.Element {
	el, err := wire.ParseElement([]byte(benchPresence))
	if err != nil {
		tb.Fatal(err)
	}
	return el
}

// goOnline makes every session available, as logged-in clients are.
func goOnline(tb testing.TB, conns []*conn) {
	for _, c := range conns {
		c.goAvailable(parsedPresence(tb))
	}
}

// BenchmarkPresenceBroadcast is one available-presence update of a user
// whose 4,999 colleagues include online-1 available sessions.
func BenchmarkPresenceBroadcast(b *testing.B) {
	for _, online := range []int{1000, benchGroupSize} {
		b.Run(fmt.Sprint("online=", online), func(b *testing.B) {
			_, conns := groupServer(b, online)
			goOnline(b, conns)
			el := parsedPresence(b)
			c := conns[0]
			b.ReportAllocs()
			for b.Loop() {
				c.goAvailable(el)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(online), "ns/recipient")
		})
	}
}

// BenchmarkPresenceLoginStorm is online users of the group sending their
// initial presence one after another (broadcast plus the answers to their
// probes from those already online): "cold" as after a server restart,
// when nothing about the directory is remembered yet, "warm" as after a
// network outage.
func BenchmarkPresenceLoginStorm(b *testing.B) {
	for _, cold := range []bool{true, false} {
		for _, online := range []int{250, 500, 1000} {
			name := fmt.Sprintf("warm/online=%d", online)
			if cold {
				name = fmt.Sprintf("cold/online=%d", online)
			}
			b.Run(name, func(b *testing.B) { benchLoginStorm(b, online, cold) })
		}
	}
}

func benchLoginStorm(b *testing.B, online int, cold bool) {
	s, conns := groupServer(b, online)
	els := make([]*wire.Element, online)
	if !cold {
		for _, c := range conns {
			s.colleaguesOf(c.user)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i, c := range conns {
			c.pmu.Lock()
			c.available, c.presence = false, nil
			c.pmu.Unlock()
			els[i] = parsedPresence(b)
		}
		if cold {
			s.forgetColleagues()
		}
		b.StartTimer()
		for i, c := range conns {
			c.goAvailable(els[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(online), "ns/login")
}

// BenchmarkEffectiveRoster is the roster computation every presence
// broadcast starts with: a store read merged with 4,999 colleagues.
func BenchmarkEffectiveRoster(b *testing.B) {
	s, _ := groupServer(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		if e, _, err := s.roster(benchUser(0)); err != nil || len(e) != benchGroupSize-1 {
			b.Fatal(len(e), err)
		}
	}
}

// BenchmarkLastPEPItemsAtLogin is what a client with +notify caps gets
// when it becomes available (XEP-0163 §4.3.3): the last item of each of
// 500 colleagues' nick nodes, under the default access model "presence",
// which asks each owner's roster whether the client is a subscriber.
func BenchmarkLastPEPItemsAtLogin(b *testing.B) {
	const publishers = 500
	s, conns := groupServer(b, 1)
	for i := 1; i <= publishers; i++ {
		_, _, err := s.Store.PEPPublish(store.PEPPublishRequest{User: benchUser(i), Node: "http://jabber.org/protocol/nick",
			Item:   store.PEPItem{ID: "current", Publisher: benchUser(i) + "@" + testDomain, Payload: []byte(`<nick xmlns='http://jabber.org/protocol/nick'>n</nick>`)},
			Create: pepDefaultConfig})
		if err != nil {
			b.Fatal(err)
		}
	}
	c := conns[0]
	all := func(string) bool { return true }
	s.sendLastPEPItems(c, all) // the colleague lists, as after the first logins
	b.ReportAllocs()
	for b.Loop() {
		s.sendLastPEPItems(c, all)
	}
}
