package muc

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// countRouter counts deliveries and bytes, like a server whose queues
// accept everything; it keeps nothing.
type countRouter struct{ n, bytes atomic.Int64 }

func (c *countRouter) DeliverFull(full string, parts ...[]byte) bool {
	c.n.Add(1)
	for _, p := range parts {
		c.bytes.Add(int64(len(p)))
	}
	return true
}

func (c *countRouter) RouteElement(*wire.Element) {}

// benchRoom returns a service with an unlocked room of n occupants.
func benchRoom(b *testing.B, n int) (*Service, *countRouter) {
	cr := &countRouter{}
	s, err := New(Config{Domain: svcJID}, nil, cr, nil)
	if err != nil {
		b.Fatal(err)
	}
	owner := stanza(b, fmt.Sprintf("<presence to='%s/owner' from='owner@example.com/r'><x xmlns='%s'/></presence>", room1, nsMUC))
	s.RouteStanza(owner)
	s.RouteStanza(stanza(b, "<iq to='"+room1+"' from='owner@example.com/r' type='set' id='c'><query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'/></query></iq>"))
	for i := 1; i < n; i++ {
		s.RouteStanza(stanza(b, fmt.Sprintf("<presence to='%s/user%d' from='user%d@example.com/r'><x xmlns='%s'><history maxstanzas='0'/></x></presence>", room1, i, i, nsMUC)))
	}
	return s, cr
}

func stanza(b testing.TB, x string) *wire.Element { return parse(b, []byte(x)) }

// BenchmarkFanout1000: one groupchat message into a room of 1,000
// occupants; ns/op is per message, allocs/op are per message (divide by
// 1,000 for per delivered stanza).
func BenchmarkFanout1000(b *testing.B) {
	s, cr := benchRoom(b, 1000)
	msg := stanza(b, "<message to='"+room1+"' from='user7@example.com/r' type='groupchat' id='x1'><body>Hello everyone, the build is green again.</body></message>")
	cr.n.Store(0)
	cr.bytes.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.RouteStanza(msg)
	}
	b.StopTimer()
	b.ReportMetric(float64(cr.n.Load())/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(cr.bytes.Load())/float64(cr.n.Load()), "B/delivery")
}

// BenchmarkJoin1000: a user joins (and leaves) a room of 1,000 occupants:
// 1,000 presences to the joiner, its presence to 1,000, self, subject.
func BenchmarkJoin1000(b *testing.B) {
	s, _ := benchRoom(b, 1000)
	join := stanza(b, "<presence to='"+room1+"/late' from='late@example.com/r'><x xmlns='"+nsMUC+"'/></presence>")
	leave := stanza(b, "<presence to='"+room1+"/late' from='late@example.com/r' type='unavailable'/>")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.RouteStanza(join)
		s.RouteStanza(leave)
	}
}

// TestJoin1000Budget keeps the target: joining a room of 1,000
// occupants takes under 200 ms (generous on a loaded machine: the
// benchmark shows the real figure).
func TestJoin1000Budget(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := testing.Benchmark(func(b *testing.B) {
		s, _ := benchRoom(b, 1000)
		join := stanza(b, "<presence to='"+room1+"/late' from='late@example.com/r'><x xmlns='"+nsMUC+"'/></presence>")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.RouteStanza(join)
			b.StopTimer()
			s.UserGone("late@example.com/r")
			s.waitGone()
			b.StartTimer()
		}
	})
	if per := time.Duration(r.NsPerOp()); per > 200*time.Millisecond {
		t.Errorf("join of a 1,000-occupant room took %v, target < 200ms", per)
	}
}
