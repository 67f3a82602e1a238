package e2e

// Acceptance tests for issue 2 (the core server): what an operator and a
// real client see from the xmppd binary, for the requirements the core
// suite (core_test.go) does not prove end to end.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// a2Config is coreConfig with more [limits] keys of the test's choosing
// (a TOML table cannot be reopened after it, so they go into coreConfig's).
func a2Config(dataDir string, c2s, direct, http int, limits string) string {
	const at = "auth_failure_delay = \"10ms\"\n"
	return strings.Replace(coreConfig(dataDir, c2s, direct, http, ""), at, at+limits+"\n", 1)
}

func a2Start(t *testing.T, limits string) *coreServer {
	t.Helper()
	dir := t.TempDir()
	cs := &coreServer{C2S: FreePort(), DirectTLS: FreePort(), DataDir: filepath.Join(dir, "data")}
	cs.Config = filepath.Join(dir, "xmppd.toml")
	if err := os.WriteFile(cs.Config, []byte(a2Config(cs.DataDir, cs.C2S, cs.DirectTLS, FreePort(), limits)), 0o600); err != nil {
		t.Fatal(err)
	}
	cs.Xmppd = StartXmppd(t, cs.Config)
	return cs
}

// a2Run runs the xmppd binary in dir and returns its exit code, stdout and
// stderr.
func a2Run(t *testing.T, dir, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(xmppdBinary(t), args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run xmppd %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// a2Conn is a raw client stream: the acceptance suite must see the exact
// stream errors and IQ errors, which a client library hides.
type a2Conn struct {
	t   *testing.T
	c   net.Conn
	got string // read but not yet consumed
}

const a2Header = "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

func a2Dial(t *testing.T, port int) *a2Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatalf("dial c2s: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &a2Conn{t: t, c: nc}
}

func (c *a2Conn) send(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// until reads until end has arrived and returns everything up to and
// including it; the rest stays for the next call. On EOF or timeout it
// returns what came, so a caller can show the server's last words.
func (c *a2Conn) until(end string) (string, bool) {
	c.t.Helper()
	buf := make([]byte, 4096)
	c.c.SetReadDeadline(time.Now().Add(eventTimeout))
	for !strings.Contains(c.got, end) {
		n, err := c.c.Read(buf)
		c.got += string(buf[:n])
		if err != nil {
			s := c.got
			c.got = ""
			return s, false
		}
	}
	i := strings.Index(c.got, end) + len(end)
	s := c.got[:i]
	c.got = c.got[i:]
	return s, true
}

func (c *a2Conn) must(end string) string {
	c.t.Helper()
	s, ok := c.until(end)
	if !ok {
		c.t.Fatalf("waiting for %q, the server sent %q", end, s)
	}
	return s
}

// startTLS opens the stream and upgrades it (RFC 6120 §5.4), returning the
// features offered before TLS.
func (c *a2Conn) startTLS() string {
	c.t.Helper()
	c.send(fmt.Sprintf(a2Header, domain))
	before := c.must("</stream:features>")
	c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.must("<proceed")
	c.must(">")
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true, ServerName: domain})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	c.c = tc
	c.got = ""
	return before
}

// login runs STARTTLS and SASL PLAIN and restarts the stream; what follows
// is the post-authentication feature list.
func (c *a2Conn) login(user string) {
	c.t.Helper()
	c.startTLS()
	c.send(fmt.Sprintf(a2Header, domain))
	c.must("</stream:features>")
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+user+"-pw")) + "</auth>")
	if s := c.must(">"); !strings.Contains(s, "<success") {
		c.t.Fatalf("SASL PLAIN for %s: %q", user, s)
	}
	c.send(fmt.Sprintf(a2Header, domain))
	c.must("</stream:features>")
}

// bind asks for resource res ("" lets the server choose) and returns the
// whole IQ reply.
func (c *a2Conn) bind(res string) string {
	c.t.Helper()
	r := ""
	if res != "" {
		r = "<resource>" + res + "</resource>"
	}
	c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" + r + "</bind></iq>")
	return c.must("</iq>")
}

// streamError waits for the stream to end and returns its error element.
func (c *a2Conn) streamError() string {
	c.t.Helper()
	s, _ := c.until("</stream:stream>")
	if i := strings.Index(s, "<stream:error"); i >= 0 {
		return s[i:]
	}
	return s
}

// TestAccept2Quickstart: examples/quickstart.toml runs as is (only its
// ports moved, since other tests and servers share this machine), a real
// client logs in over XEP-0368 direct TLS with ALPN xmpp-client against the
// generated certificate, files are 0600/0700, /metrics is Prometheus text,
// the default config path is ./xmppd.toml and no password is logged.
func TestAccept2Quickstart(t *testing.T) {
	raw, err := os.ReadFile("../examples/quickstart.toml")
	if err != nil {
		t.Fatal(err)
	}
	c2s, direct, web := FreePort(), FreePort(), FreePort()
	text := strings.NewReplacer(
		"127.0.0.1:5222", fmt.Sprintf("127.0.0.1:%d", c2s),
		"127.0.0.1:5223", fmt.Sprintf("127.0.0.1:%d", direct),
		"127.0.0.1:5280", fmt.Sprintf("127.0.0.1:%d", web)).Replace(string(raw))
	if text == string(raw) {
		t.Fatal("quickstart.toml no longer listens on 127.0.0.1:5222/5223/5280; update this test")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xmppd.toml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	x := StartXmppd(t, cfg)
	dataDir := filepath.Join(dir, "data")

	s := StartSlix(t, SlixOptions{JID: "alice@localhost", Password: "alice-secret", Port: direct,
		DirectTLS: true, CAFile: filepath.Join(dataDir, "selfsigned-cert.pem"), Resource: "qs"})
	ev := s.WaitSession(t)
	if ev["tls"] != true || ev.Str("alpn") != "xmpp-client" || !strings.HasPrefix(ev.Str("tls_version"), "TLSv1.") ||
		ev.Str("tls_version") < "TLSv1.2" {
		t.Errorf("direct TLS session %v: want TLS 1.2+ with ALPN xmpp-client (XEP-0368)", ev)
	}

	t.Run("default config path", func(t *testing.T) {
		code, out, errOut := a2Run(t, dir, "", "ctl", "sessions")
		if code != 0 || !strings.Contains(out, "alice@localhost/qs") {
			t.Errorf("`xmppd ctl sessions` in the config's directory: exit %d\n%s%s", code, out, errOut)
		}
		code, out, errOut = a2Run(t, dir, "", "check")
		if code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("`xmppd check` in the config's directory: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("file modes", func(t *testing.T) {
		seen := 0
		err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			seen++
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm()&^want != 0 {
				t.Errorf("%s has mode %v, want at most %v", p, fi.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "admin.sock")); err != nil || seen < 4 {
			t.Errorf("data_dir holds %d entries, admin.sock: %v; want the store, the certificate, its key and admin.sock", seen, err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + x.HTTPAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.WriteString(string(buf[:n]))
			if err != nil {
				break
			}
		}
		body := b.String()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("/metrics Content-Type %q, want text/plain (Prometheus text format)", ct)
		}
		if !regexp.MustCompile(`(?m)^# TYPE xmppd_sessions gauge\nxmppd_sessions 1$`).MatchString(body) {
			t.Errorf("/metrics does not count the one bound session in Prometheus text format:\n%s", body)
		}
		// Every sample line is "name{labels} value".
		sample := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+|NaN|[+-]Inf$`)
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			if !strings.HasPrefix(line, "#") && !sample.MatchString(line) {
				t.Errorf("/metrics line %q is not Prometheus text format", line)
			}
		}
	})

	// SIGINT stops gracefully like SIGTERM: the client is told
	// <system-shutdown/> and the process exits 0.
	x.stopped = true
	x.cmd.Process.Signal(syscall.SIGINT)
	if ev := s.Expect(t, Is("stream_error"), eventTimeout); ev.Str("condition") != "system-shutdown" {
		t.Errorf("on SIGINT the client got %v, want <system-shutdown/>", ev)
	}
	select {
	case <-x.exited:
		if x.err != nil {
			t.Errorf("xmppd after SIGINT: %v, want exit 0", x.err)
		}
	case <-time.After(stopTimeout):
		t.Errorf("xmppd did not exit within %v of SIGINT", stopTimeout)
	}
	if out := x.Output(); strings.Contains(out, "alice-secret") {
		t.Errorf("the server log contains a password:\n%s", out)
	} else if !strings.Contains(out, "plaintext password") {
		t.Errorf("demo passwords (password = ...) are not warned about at start:\n%s", out)
	}
}

// TestAccept2CommandLine: exit codes and one-line messages of the pinned
// subcommands when something is wrong.
func TestAccept2CommandLine(t *testing.T) {
	dir := t.TempDir()
	t.Run("no config at the default path", func(t *testing.T) {
		for _, sub := range []string{"serve", "check"} {
			code, out, errOut := a2Run(t, dir, "", sub)
			if code != 1 || !strings.Contains(errOut, "xmppd.toml") {
				t.Errorf("`xmppd %s` without ./xmppd.toml: exit %d, stdout %q stderr %q; want 1 naming the file", sub, code, out, errOut)
			}
		}
	})
	t.Run("serve reports file line key", func(t *testing.T) {
		cfg := WriteConfig(t, "domain = \"x.test\"\n[tls]\nrequire_encryption = \"yes\"\n")
		code, _, errOut := a2Run(t, dir, "", "serve", "-config", cfg)
		if code != 1 || !strings.Contains(errOut, cfg+":3: tls.require_encryption") {
			t.Errorf("serve with a bad value: exit %d\n%s\nwant 1 and %s:3: tls.require_encryption", code, errOut, cfg)
		}
		cfg = WriteConfig(t, "domain = \"x.test\"\n\n[directory]\nbackend = \"static\"\n[[directory.user]]\nname = \"a\"\npasword = \"x\"\n")
		code, _, errOut = a2Run(t, dir, "", "check", "-config", cfg)
		if code != 1 || !strings.Contains(errOut, cfg+":7: directory.user.pasword") || !strings.Contains(errOut, "unknown") {
			t.Errorf("check with a misspelt user key: exit %d\n%s\nwant 1 and %s:7: directory.user.pasword: unknown key", code, errOut, cfg)
		}
	})
	t.Run("passwd", func(t *testing.T) {
		code, out, errOut := a2Run(t, dir, "", "passwd")
		if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
			t.Errorf("passwd with empty stdin: exit %d stdout %q stderr %q; want 1 and one line", code, out, errOut)
		}
		// No trailing newline: `printf secret | xmppd passwd`.
		code, out, _ = a2Run(t, dir, "secret", "passwd")
		if code != 0 || !strings.HasPrefix(out, "$argon2id$") || strings.Count(out, "\n") != 1 {
			t.Errorf("passwd: exit %d %q, want one $argon2id$ line", code, out)
		}
	})
	t.Run("unknown subcommand", func(t *testing.T) {
		if code, _, errOut := a2Run(t, dir, "", "srve"); code == 0 || !strings.Contains(errOut, "srve") {
			t.Errorf("xmppd srve: exit %d %q", code, errOut)
		}
	})
}

// TestAccept2Stream: what a client sees at the stream level from the
// binary: host-unknown, STARTTLS required before PLAIN, TLS 1.2+,
// restricted XML, whitespace keepalive, server-chosen resources, conflict
// and the per-user session limit.
func TestAccept2Stream(t *testing.T) {
	cs := a2Start(t, "max_sessions_per_user = 2")

	t.Run("host-unknown", func(t *testing.T) {
		c := a2Dial(t, cs.C2S)
		c.send(fmt.Sprintf(a2Header, "elsewhere.test"))
		if e := c.streamError(); !strings.Contains(e, "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'") &&
			!strings.Contains(e, `<host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"`) {
			t.Errorf("stream to another domain ended with %q, want <host-unknown/> (RFC 6120 §4.9.3.6)", e)
		}
	})

	t.Run("PLAIN only inside TLS", func(t *testing.T) {
		c := a2Dial(t, cs.C2S)
		before := c.startTLS()
		if !strings.Contains(before, "<required") || strings.Contains(before, ">PLAIN<") {
			t.Errorf("features before TLS %q: want STARTTLS required and no PLAIN", before)
		}
	})

	t.Run("no TLS below 1.2", func(t *testing.T) {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", cs.DirectTLS),
				&tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, NextProtos: []string{"xmpp-client"}})
			if err == nil {
				c.Close()
				t.Errorf("direct TLS accepted TLS version %#x, want TLS 1.2+", v)
			}
		}
	})

	t.Run("restricted XML", func(t *testing.T) {
		for _, bad := range []string{
			"<!-- a comment -->",
			"<?pi data?>",
			"<!DOCTYPE x [<!ENTITY a 'b'>]>",
			"<message to='bob@" + domain + "'><body>&xxe;</body></message>",
		} {
			c := a2Dial(t, cs.C2S)
			c.login("carol")
			c.bind("")
			c.send(bad)
			if e := c.streamError(); !strings.Contains(e, "<restricted-xml") {
				t.Errorf("%q ended the stream with %q, want <restricted-xml/> (issue 2: no DTDs, entities, PIs or comments)", bad, e)
			}
		}
	})

	t.Run("whitespace keepalive and generated resource", func(t *testing.T) {
		c := a2Dial(t, cs.C2S)
		c.login("carol")
		reply := c.bind("")
		m := regexp.MustCompile(`<jid>carol@` + regexp.QuoteMeta(domain) + `/([^<]+)</jid>`).FindStringSubmatch(reply)
		if m == nil || strings.TrimSpace(m[1]) == "" {
			t.Fatalf("bind without a resource: %q, want a server-generated resource (RFC 6120 §7.6.2.1)", reply)
		}
		c.send("\n \n")
		c.send("<iq type='get' id='p1' to='" + domain + "'><ping xmlns='urn:xmpp:ping'/></iq>")
		if r := c.must("id='p1'"); !strings.Contains(r, "type='result'") && !strings.Contains(r, `type="result"`) {
			t.Errorf("ping after whitespace keepalive: %q", r)
		}
	})

	t.Run("conflict replaces and the session limit holds", func(t *testing.T) {
		one := a2Dial(t, cs.C2S)
		one.login("carol")
		if r := one.bind("desk"); !strings.Contains(r, "/desk</jid>") {
			t.Fatalf("bind desk: %q", r)
		}
		two := a2Dial(t, cs.C2S)
		two.login("carol")
		if r := two.bind("phone"); !strings.Contains(r, "/phone</jid>") {
			t.Fatalf("bind phone: %q", r)
		}
		// At the limit, the same resource still replaces the old session.
		three := a2Dial(t, cs.C2S)
		three.login("carol")
		if r := three.bind("desk"); !strings.Contains(r, "/desk</jid>") {
			t.Fatalf("rebinding desk at max_sessions_per_user: %q, want the old session replaced (RFC 6120 §7.7.2.2)", r)
		}
		if e := one.streamError(); !strings.Contains(e, "<conflict") {
			t.Errorf("replaced session ended with %q, want <conflict/>", e)
		}
		four := a2Dial(t, cs.C2S)
		four.login("carol")
		if r := four.bind("laptop"); !strings.Contains(r, "type='error'") || !strings.Contains(r, "<resource-constraint") {
			t.Errorf("third resource with max_sessions_per_user = 2: %q, want resource-constraint", r)
		}
	})
}

// TestAccept2Routing: RFC 6121 §8.5 with real clients: priorities, negative
// priority, a full JID whose resource is gone, type=error without loops,
// the per-user offline bound, presence after a conflict replacement, and a
// personal roster merged with the shared one.
func TestAccept2Routing(t *testing.T) {
	cs := a2Start(t, "max_offline_messages = 2")
	online := func(user, res string, prio int) *Slix {
		s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: user + "-pw", Port: cs.C2S, NoVerify: true, Resource: res})
		s.WaitSession(t)
		s.MustDo(t, map[string]any{"cmd": "roster_get"})
		s.MustDo(t, map[string]any{"cmd": "presence", "priority": prio})
		return s
	}
	aliceBare := "alice@" + domain
	high := online("alice", "high", 5)
	low := online("alice", "low", 1)
	bob := online("bob", "b", 0)
	// Bob's view of alice settled: both resources available.
	for _, r := range []string{"high", "low"} {
		bob.Expect(t, Is("presence", "from", aliceBare+"/"+r, "type", "available"), eventTimeout)
	}

	t.Run("highest priority", func(t *testing.T) {
		bob.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "to the highest"})
		high.Expect(t, Is("message", "body", "to the highest"), eventTimeout)
		low.Never(t, Is("message", "body", "to the highest"), 500*time.Millisecond)
	})
	t.Run("full JID of a gone resource", func(t *testing.T) {
		bob.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare + "/gone", "body": "to a gone resource"})
		high.Expect(t, Is("message", "body", "to a gone resource"), eventTimeout)
	})
	t.Run("negative priority", func(t *testing.T) {
		high.MustDo(t, map[string]any{"cmd": "presence", "priority": -1})
		bob.Expect(t, a2Prio(aliceBare+"/high", -1), eventTimeout)
		bob.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "not to the negative"})
		low.Expect(t, Is("message", "body", "not to the negative"), eventTimeout)
		high.Never(t, Is("message", "body", "not to the negative"), 500*time.Millisecond)
		// Only negative priorities left: as if no resource were available
		// (RFC 6121 §8.5.2.1.1), so offline storage.
		low.MustDo(t, map[string]any{"cmd": "presence", "priority": -2})
		bob.Expect(t, a2Prio(aliceBare+"/low", -2), eventTimeout)
		bob.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "kept for later"})
		bob.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
		later := online("alice", "later", 0)
		msg := later.Expect(t, Is("message", "body", "kept for later"), eventTimeout)
		if msg.Str("delay") == "" {
			t.Errorf("stored message without XEP-0203 delay: %v", msg)
		}
		high.Never(t, Is("message", "body", "kept for later"), 200*time.Millisecond)
	})
	t.Run("type=error is not answered", func(t *testing.T) {
		bob.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<message type='error' id='e1' to='nobody@" + domain +
			"'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"})
		bob.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<message type='error' id='e2' to='" + aliceBare +
			"/gone'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"})
		bob.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
		bob.Never(t, func(e Event) bool { return e.Name() == "message" && e.Str("type") == "error" }, 500*time.Millisecond)
	})
	t.Run("offline bound", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			bob.MustDo(t, map[string]any{"cmd": "send", "to": "carol@" + domain, "body": fmt.Sprintf("offline %d", i), "stanza_id": fmt.Sprintf("off-%d", i)})
		}
		bounce := bob.Expect(t, func(e Event) bool { return e.Name() == "message" && e.Str("type") == "error" }, eventTimeout)
		if bounce.Str("id") != "off-3" || bounce.Map("error").Str("condition") != "service-unavailable" {
			t.Errorf("third message past max_offline_messages = 2: %v, want its service-unavailable bounce", bounce)
		}
		carol := online("carol", "c", 0)
		carol.Expect(t, Is("message", "body", "offline 1"), eventTimeout)
		carol.Expect(t, Is("message", "body", "offline 2"), eventTimeout)
		carol.Never(t, Is("message", "body", "offline 3"), 500*time.Millisecond)
	})
	t.Run("presence after a conflict", func(t *testing.T) {
		bobB := "bob@" + domain + "/b"
		fromBobB := func(e Event) bool { return e.Name() == "presence" && e.Str("from") == bobB }
		low.Expect(t, Is("presence", "from", bobB, "type", "available"), eventTimeout)
		again := StartSlix(t, SlixOptions{JID: "bob@" + domain, Password: "bob-pw", Port: cs.C2S, NoVerify: true, Resource: "b"})
		again.WaitSession(t)
		again.MustDo(t, map[string]any{"cmd": "roster_get"})
		again.MustDo(t, map[string]any{"cmd": "presence", "status": "second"})
		if ev := bob.Expect(t, Is("stream_error"), eventTimeout); ev.Str("condition") != "conflict" {
			t.Errorf("replaced bob/b got %v, want conflict", ev)
		}
		// In order: the replaced session's unavailable, then the new
		// session's presence, and nothing after it: the last word alice/low
		// hears about bob/b must not make the live session look offline.
		if ev := low.Expect(t, fromBobB, eventTimeout); ev.Str("type") != "unavailable" {
			t.Errorf("first presence of bob/b after the conflict: %v, want the replaced session's unavailable", ev)
		}
		if ev := low.Expect(t, fromBobB, eventTimeout); ev.Str("status") != "second" || ev.Str("type") != "available" {
			t.Errorf("second presence of bob/b after the conflict: %v, want the new session's (status second)", ev)
		}
		low.Never(t, fromBobB, time.Second)
	})
	t.Run("personal roster merges with the shared roster", func(t *testing.T) {
		low.MustDo(t, map[string]any{"cmd": "roster_set", "jid": "carol@" + domain, "name": "Caro"})
		roster := low.MustDo(t, map[string]any{"cmd": "roster_get"})
		if it := rosterItem(roster["items"], "bob@"+domain); it == nil || it.Str("subscription") != "both" || it.Str("name") != "Bob Brenner" {
			t.Errorf("roster %v: want bob from the shared group (both, Bob Brenner)", roster["items"])
		}
		if it := rosterItem(roster["items"], "carol@"+domain); it == nil || it.Str("name") != "Caro" {
			t.Errorf("roster %v: want the personal item carol (Caro)", roster["items"])
		}
	})
}

// a2Prio matches an available presence from full with the given priority
// (the driver reports priorities as numbers).
func a2Prio(full string, prio int) func(Event) bool {
	return func(e Event) bool {
		p, ok := e["priority"].(float64)
		return e.Name() == "presence" && e.Str("from") == full && ok && int(p) == prio
	}
}

// a2Cert makes a certificate for cn signed by parent (self-signed when
// parent is nil) and returns it with its key.
func a2Cert(t *testing.T, cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if !isCA {
		tmpl.DNSNames = []string{cn}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestAccept2CertChain: tls.cert_file "may hold a chain": a client that
// trusts only the root verifies the server, so the intermediate is sent,
// on direct TLS and (with a real client) on STARTTLS.
func TestAccept2CertChain(t *testing.T) {
	root, rootKey, rootPEM := a2Cert(t, "ownChat test root", true, nil, nil)
	inter, interKey, interPEM := a2Cert(t, "ownChat test intermediate", true, root, rootKey)
	_, leafKey, leafPEM := a2Cert(t, domain, false, inter, interKey)
	dir := t.TempDir()
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "root.pem")
	for name, data := range map[string][]byte{
		certFile: append(leafPEM, interPEM...),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		caFile:   rootPEM,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c2s, direct := FreePort(), FreePort()
	cfg := WriteConfig(t, a2Config(filepath.Join(dir, "data"), c2s, direct, FreePort(), "")+
		fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n", certFile, keyFile))
	StartXmppd(t, cfg)

	roots := x509.NewCertPool()
	roots.AddCert(root)
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", direct), &tls.Config{RootCAs: roots, ServerName: domain, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatalf("direct TLS trusting only the root: %v (is the intermediate from cert_file sent?)", err)
	}
	st := c.ConnectionState()
	c.Close()
	if len(st.PeerCertificates) != 2 || st.NegotiatedProtocol != "xmpp-client" {
		t.Errorf("server sent %d certificates, ALPN %q; want leaf + intermediate and xmpp-client", len(st.PeerCertificates), st.NegotiatedProtocol)
	}
	s := StartSlix(t, SlixOptions{JID: "alice@" + domain, Password: "alice-pw", Port: c2s, CAFile: caFile, Mech: "SCRAM-SHA-256"})
	if ev := s.WaitSession(t); ev["tls"] != true {
		t.Errorf("STARTTLS session %v", ev)
	}
}

// TestAccept2PlaintextWarned: tls.require_encryption = false is "only for
// benchmarks/tests on loopback; warn loudly" (issue 2; README: "logged
// loudly"), so even on loopback the start-up log must say so.
func TestAccept2PlaintextWarned(t *testing.T) {
	dir := t.TempDir()
	cfg := WriteConfig(t, a2Config(filepath.Join(dir, "data"), FreePort(), FreePort(), FreePort(), "")+"[tls]\nrequire_encryption = false\n")
	x := StartXmppd(t, cfg)
	warned := false
	for _, line := range strings.Split(x.Output(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "require_encryption") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("require_encryption = false on loopback starts without a WARN line naming tls.require_encryption:\n%s", x.Output())
	}
}
