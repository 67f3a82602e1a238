package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// TestMUCFanoutLoad measures room fan-out through real sessions: the
// issue's reference scenario, 100 occupants and 10 senders, with xmppd on
// one core (GOMAXPROCS=1). It logs deliveries/s and delivery latency
// percentiles. It runs only with OWNCHAT_MUC_LOAD=1 (it is a measurement,
// not a check) and without -race for meaningful figures:
//
//	OWNCHAT_MUC_LOAD=1 go test -run TestMUCFanoutLoad -v ./e2e/
func TestMUCFanoutLoad(t *testing.T) {
	if os.Getenv("OWNCHAT_MUC_LOAD") != "1" {
		t.Skip("set OWNCHAT_MUC_LOAD=1 to measure")
	}
	occupants, _ := strconv.Atoi(os.Getenv("OWNCHAT_MUC_OCCUPANTS"))
	if occupants <= 0 {
		occupants = 100
	}
	const senders, perSender = 10, 300
	// OWNCHAT_MUC_RATE paces each sender (messages/s); unset: as fast as
	// the server takes them (1 ms apart).
	pace := time.Millisecond
	if r, _ := strconv.Atoi(os.Getenv("OWNCHAT_MUC_RATE")); r > 0 {
		pace = time.Second / time.Duration(r)
	}
	var users strings.Builder
	for i := 0; i < occupants; i++ {
		fmt.Fprintf(&users, "[[directory.user]]\nname = \"u%d\"\npassword = \"pw\"\n", i)
	}
	dir := t.TempDir()
	c2s := FreePort()
	cfg := fmt.Sprintf(`
domain = %q
data_dir = %q
log_level = "warn"
[listen]
c2s = "127.0.0.1:%d"
http = "127.0.0.1:%d"
[tls]
require_encryption = false
[limits]
max_connections_per_ip = 100000
connections_per_ip_per_second = 100000
stanzas_per_second = 1000000
bytes_per_second = 1000000000
[directory]
backend = "static"
%s`, domain, filepath.Join(dir, "data"), c2s, FreePort(), users.String())
	t.Setenv("GOMAXPROCS", "1")
	StartXmppd(t, WriteConfig(t, cfg))
	addr := fmt.Sprintf("127.0.0.1:%d", c2s)

	const room = "load@" + mucService
	clients := make([]*rawClient, occupants)
	for i := range clients {
		c, err := dialRaw(addr, fmt.Sprintf("u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		clients[i] = c
	}
	// u0 creates an instant room; the others join it.
	clients[0].send(fmt.Sprintf("<presence to='%s/u0'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room))
	clients[0].until(t, func(el *wire.Element) bool { return el.Child("", "subject") != nil })
	clients[0].send("<iq to='" + room + "' type='set' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	clients[0].until(t, func(el *wire.Element) bool { return el.Local == "iq" && el.Attr("id") == "cfg" })
	var joinMax time.Duration
	for i := 1; i < occupants; i++ {
		t0 := time.Now()
		clients[i].send(fmt.Sprintf("<presence to='%s/u%d'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>", room, i))
		clients[i].until(t, func(el *wire.Element) bool { return el.Child("", "subject") != nil })
		joinMax = max(joinMax, time.Since(t0))
	}

	total := int64(senders * perSender * occupants)
	var got atomic.Int64
	lat := make([][]time.Duration, occupants)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.read(func(el *wire.Element) bool {
				if el.Local != "message" {
					return true
				}
				if b := el.Child("", "body"); b != nil {
					if ns, err := strconv.ParseInt(b.Text(), 10, 64); err == nil {
						lat[i] = append(lat[i], time.Duration(time.Now().UnixNano()-ns))
						if got.Add(1) == total {
							close(done)
						}
					}
				}
				return true
			})
		}()
	}
	start := time.Now()
	for s := 0; s < senders; s++ {
		go func(c *rawClient) {
			for m := 0; m < perSender; m++ {
				c.send(fmt.Sprintf("<message to='%s' type='groupchat'><body>%d</body></message>", room, time.Now().UnixNano()))
				time.Sleep(pace)
			}
		}(clients[s])
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d of %d deliveries", got.Load(), total)
	}
	elapsed := time.Since(start)
	for _, c := range clients {
		c.conn.Close()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
	t.Logf("%d occupants, %d senders x %d messages every %v: %d deliveries in %v = %.0f deliveries/s; latency p50 %v p99 %v max %v; slowest join %v",
		occupants, senders, perSender, pace, len(all), elapsed.Round(time.Millisecond), float64(len(all))/elapsed.Seconds(),
		pct(0.5), pct(0.99), all[len(all)-1], joinMax)
}

// rawClient is a minimal plaintext XMPP client (SASL PLAIN, bind) over
// the server's own parser, enough to load the server without a library.
type rawClient struct {
	conn net.Conn
	p    *wire.Parser
	wmu  sync.Mutex
}

const rawHeader = "<?xml version='1.0'?><stream:stream to='" + domain + "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

func dialRaw(addr, user string) (*rawClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawClient{conn: conn, p: wire.NewParser(conn, wire.Limits{MaxStanzaBytes: 1 << 20})}
	fail := func(step string, err error) (*rawClient, error) {
		conn.Close()
		return nil, fmt.Errorf("e2e: raw login %s: %s: %v", user, step, err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c.send(rawHeader)
	if err := c.skipTo("features"); err != nil {
		return fail("features", err)
	}
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00pw")) + "</auth>")
	if err := c.skipTo("success"); err != nil {
		return fail("auth", err)
	}
	c.p.Reset(conn)
	c.send(rawHeader)
	if err := c.skipTo("features"); err != nil {
		return fail("features after auth", err)
	}
	c.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	if err := c.skipTo("iq"); err != nil {
		return fail("bind", err)
	}
	c.send("<presence/>")
	conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *rawClient) send(s string) {
	c.wmu.Lock()
	c.conn.Write([]byte(s))
	c.wmu.Unlock()
}

func (c *rawClient) skipTo(local string) error {
	for {
		k, el, err := c.p.Next()
		if err != nil {
			return err
		}
		if k == wire.Stanza && el.Local == local {
			if el.Local == "iq" && el.Attr("type") == "error" {
				return fmt.Errorf("%s", el)
			}
			return nil
		}
		if k == wire.Stanza && el.Local == "failure" {
			return fmt.Errorf("%s", el)
		}
	}
}

// until reads stanzas until pred matches one.
func (c *rawClient) until(t *testing.T, pred func(*wire.Element) bool) {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		k, el, err := c.p.Next()
		if err != nil {
			t.Fatalf("e2e: raw client: %v", err)
		}
		if k == wire.Stanza && pred(el) {
			return
		}
	}
}

// read calls fn for every stanza until fn returns false or the stream ends.
func (c *rawClient) read(fn func(*wire.Element) bool) {
	for {
		k, el, err := c.p.Next()
		if err != nil || k == wire.StreamEnd {
			return
		}
		if k == wire.Stanza && !fn(el) {
			return
		}
	}
}

func (c *rawClient) close() { c.conn.Close() }
