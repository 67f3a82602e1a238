package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file proves the harness, not ownChat: it runs the slixmpp driver
// against Prosody, a known-good server, so that a failure in the real suite
// points at xmppd rather than at the driver. It runs only with
// OWNCHAT_E2E_PEER=prosody and needs Debian's prosody package.

const (
	prosodyDomain = "e2e.test"
	eventTimeout  = 10 * time.Second
)

// prosodyPeer is a private Prosody instance on loopback.
type prosodyPeer struct {
	dir       string
	C2S       int    // STARTTLS port
	DirectTLS int    // XEP-0368 port
	CAFile    string // the self-signed certificate, usable as its own CA
}

func TestProsodyPeer(t *testing.T) {
	if os.Getenv("OWNCHAT_E2E_PEER") != "prosody" {
		t.Skip("set OWNCHAT_E2E_PEER=prosody to prove the slixmpp harness against Prosody (the real suite targets xmppd)")
	}
	requireSlixmpp(t)
	p := startProsody(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"})

	login := func(t *testing.T, user, mech string) (*Slix, Event) {
		t.Helper()
		s := StartSlix(t, SlixOptions{JID: user + "@" + prosodyDomain, Password: user + "-pw",
			Port: p.C2S, Mech: mech, NoVerify: true, Resource: "e2e"})
		return s, s.WaitSession(t)
	}
	bye := func(t *testing.T, s *Slix) {
		t.Helper()
		s.MustDo(t, map[string]any{"cmd": "disconnect"})
		s.Expect(t, Is("disconnected"), eventTimeout)
	}

	t.Run("sasl mechanisms", func(t *testing.T) {
		_, ev := login(t, "alice", "")
		offered := ev.Strings("mechs_offered")
		var mechs []string
		for _, m := range offered {
			if slices.Contains([]string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"}, m) {
				mechs = append(mechs, m)
			}
		}
		// internal_plain storage lets Prosody offer all three.
		if len(mechs) != 3 {
			t.Fatalf("prosody offered %v, want PLAIN, SCRAM-SHA-1 and SCRAM-SHA-256", offered)
		}
		for _, mech := range mechs {
			for _, user := range []string{"alice", "bob"} {
				s, ev := login(t, user, mech)
				if ev.Str("mech") != mech || ev["tls"] != true {
					t.Errorf("%s with %s: session %v", user, mech, ev)
				}
				if want := user + "@" + prosodyDomain + "/e2e"; ev.Str("jid") != want {
					t.Errorf("%s with %s: bound %q, want %q", user, mech, ev.Str("jid"), want)
				}
				bye(t, s)
			}
		}
	})

	t.Run("direct tls with verified certificate", func(t *testing.T) {
		s := StartSlix(t, SlixOptions{JID: "alice@" + prosodyDomain, Password: "alice-pw",
			Port: p.DirectTLS, DirectTLS: true, CAFile: p.CAFile, Mech: "SCRAM-SHA-256"})
		ev := s.WaitSession(t)
		if ev["tls"] != true || ev.Str("mech") != "SCRAM-SHA-256" {
			t.Errorf("session %v", ev)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		s := StartSlix(t, SlixOptions{JID: "alice@" + prosodyDomain, Password: "nope",
			Port: p.C2S, Mech: "PLAIN", NoVerify: true})
		ev := s.Expect(t, Is("auth_failed"), eventTimeout)
		if ev.Str("condition") != "not-authorized" {
			t.Errorf("auth_failed %v, want not-authorized (RFC 6120 §6.5.10)", ev)
		}
		s.Expect(t, Is("disconnected"), eventTimeout)
	})

	t.Run("roster presence messages offline disco", func(t *testing.T) {
		alice, _ := login(t, "alice", "SCRAM-SHA-1")
		bob, _ := login(t, "bob", "SCRAM-SHA-256")
		aliceBare, bobBare := "alice@"+prosodyDomain, "bob@"+prosodyDomain

		// Roster get/set (RFC 6121 §2.2, §2.3). Pushes go only to
		// interested resources, those that asked for the roster (§2.1.6).
		for _, s := range []*Slix{alice, bob} {
			if r := s.MustDo(t, map[string]any{"cmd": "roster_get"}); r["unchanged"] != false {
				t.Fatalf("%s initial roster %v", s.JID, r)
			}
		}
		alice.MustDo(t, map[string]any{"cmd": "roster_set", "jid": bobBare, "name": "Bob", "groups": []string{"Friends"}})
		push := alice.Expect(t, Is("roster_push"), eventTimeout)
		if it := rosterItem(push["items"], bobBare); it == nil || it.Str("name") != "Bob" {
			t.Fatalf("roster push %v", push)
		}
		roster := alice.MustDo(t, map[string]any{"cmd": "roster_get"})
		it := rosterItem(roster["items"], bobBare)
		if it == nil || it.Str("name") != "Bob" || it.Str("subscription") != "none" ||
			!slices.Equal(it.Strings("groups"), []string{"Friends"}) {
			t.Fatalf("roster_get %v", roster)
		}

		alice.MustDo(t, map[string]any{"cmd": "presence", "status": "here"})
		bob.MustDo(t, map[string]any{"cmd": "presence", "show": "chat", "priority": 5})

		// Subscription both ways (RFC 6121 §3.1).
		subscribe := func(from, to *Slix, fromBare, toBare string) {
			t.Helper()
			from.MustDo(t, map[string]any{"cmd": "presence", "type": "subscribe", "to": toBare})
			to.Expect(t, Is("presence", "type", "subscribe", "from", fromBare), eventTimeout)
			to.MustDo(t, map[string]any{"cmd": "presence", "type": "subscribed", "to": fromBare})
			from.Expect(t, Is("presence", "type", "subscribed", "from", toBare), eventTimeout)
			// RFC 6121 §3.1.6: the contact's current presence follows.
			from.Expect(t, func(e Event) bool {
				return e.Name() == "presence" && e.Str("type") == "available" && bare(e.Str("from")) == toBare
			}, eventTimeout)
		}
		subscribe(alice, bob, aliceBare, bobBare)
		subscribe(bob, alice, bobBare, aliceBare)
		for _, c := range []struct {
			s       *Slix
			contact string
		}{{alice, bobBare}, {bob, aliceBare}} {
			roster := c.s.MustDo(t, map[string]any{"cmd": "roster_get"})
			if it := rosterItem(roster["items"], c.contact); it == nil || it.Str("subscription") != "both" {
				t.Errorf("%s roster %v, want %s subscription=both", c.s.JID, roster["items"], c.contact)
			}
		}

		// Message exchange (RFC 6121 §5).
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bob.JID, "body": "hi bob"})
		msg := bob.Expect(t, Is("message", "body", "hi bob"), eventTimeout)
		if msg.Str("from") != alice.JID || msg.Str("type") != "chat" || msg["delay"] != nil {
			t.Errorf("bob got %v", msg)
		}
		bob.MustDo(t, map[string]any{"cmd": "send", "to": aliceBare, "body": "hi alice", "stanza_id": "m-1"})
		msg = alice.Expect(t, Is("message", "body", "hi alice"), eventTimeout)
		if msg.Str("from") != bob.JID || msg.Str("id") != "m-1" {
			t.Errorf("alice got %v", msg)
		}

		// Client-to-client IQs: bob's slixmpp answers, and the driver
		// reports the request it saw.
		alice.MustDo(t, map[string]any{"cmd": "ping", "jid": bob.JID})
		bob.Expect(t, Is("iq", "type", "get", "from", alice.JID), eventTimeout)

		// Offline storage: delivered with a XEP-0203 delay on next login.
		bye(t, bob)
		alice.Expect(t, Is("presence", "type", "unavailable", "from", bob.JID), eventTimeout)
		alice.MustDo(t, map[string]any{"cmd": "send", "to": bobBare, "body": "while you were away"})
		alice.MustDo(t, map[string]any{"cmd": "wait", "seconds": 0.2})
		bob2, _ := login(t, "bob", "PLAIN")
		bob2.MustDo(t, map[string]any{"cmd": "presence"})
		msg = bob2.Expect(t, Is("message", "body", "while you were away"), eventTimeout)
		if msg.Str("delay") == "" {
			t.Errorf("offline message without delay: %v", msg)
		} else if _, err := time.Parse(time.RFC3339, msg.Str("delay")); err != nil {
			t.Errorf("delay stamp %q: %v", msg.Str("delay"), err)
		}

		// Service discovery and the other IQ commands against the domain.
		info := alice.MustDo(t, map[string]any{"cmd": "disco_info", "jid": prosodyDomain})
		ids, _ := info["identities"].([]any)
		if !slices.ContainsFunc(ids, func(v any) bool {
			id, _ := v.(map[string]any)
			return Event(id).Str("category") == "server" && Event(id).Str("type") == "im"
		}) {
			t.Errorf("disco#info identities %v, want server/im", ids)
		}
		for _, f := range []string{"http://jabber.org/protocol/disco#info", "urn:xmpp:ping", "jabber:iq:roster"} {
			if !slices.Contains(info.Strings("features"), f) {
				t.Errorf("disco#info lacks %s: %v", f, info["features"])
			}
		}
		alice.MustDo(t, map[string]any{"cmd": "disco_items", "jid": prosodyDomain})
		alice.MustDo(t, map[string]any{"cmd": "ping", "jid": prosodyDomain})
		if v := alice.MustDo(t, map[string]any{"cmd": "version", "jid": prosodyDomain}); v.Str("name") != "Prosody" {
			t.Errorf("version %v", v)
		}
		if tm := alice.MustDo(t, map[string]any{"cmd": "time", "jid": prosodyDomain}); tm.Str("utc") == "" {
			t.Errorf("time %v", tm)
		}
		ev, err := alice.Do(map[string]any{"cmd": "raw_iq",
			"xml": "<iq type='get' to='" + prosodyDomain + "'><query xmlns='urn:example:nothing'/></iq>"})
		if ce, ok := err.(*CommandError); !ok || ce.Condition != "service-unavailable" ||
			!strings.Contains(ev.Map("data").Str("xml"), "service-unavailable") {
			t.Errorf("raw_iq unknown namespace: %v %v", ev, err)
		}
		if _, err := alice.Do(map[string]any{"cmd": "no-such-command"}); err == nil {
			t.Error("unknown command succeeded")
		}

		// Roster removal cancels both subscriptions (RFC 6121 §2.5.2).
		alice.MustDo(t, map[string]any{"cmd": "roster_remove", "jid": bobBare})
		alice.Expect(t, func(e Event) bool {
			it := rosterItem(e["items"], bobBare)
			return e.Name() == "roster_push" && it != nil && it.Str("subscription") == "remove"
		}, eventTimeout)

		// A stream error ends the session (RFC 6120 §4.9.3.23).
		alice.MustDo(t, map[string]any{"cmd": "send_raw", "xml": "<bogus xmlns='jabber:client'/>"})
		if ev := alice.Expect(t, Is("stream_error"), eventTimeout); ev.Str("condition") != "unsupported-stanza-type" {
			t.Errorf("stream_error %v", ev)
		}
		alice.Expect(t, Is("disconnected"), eventTimeout)
	})
}

// rosterItem finds the item for jid in a decoded "items" list.
func rosterItem(items any, jid string) Event {
	l, _ := items.([]any)
	for _, v := range l {
		if m, ok := v.(map[string]any); ok && m["jid"] == jid {
			return m
		}
	}
	return nil
}

func bare(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return jid[:i]
	}
	return jid
}

// startProsody runs Prosody from a config in a temporary directory, on
// loopback only, with s2s and HTTP off and a fresh self-signed certificate,
// and registers users with prosodyctl. It never touches /etc/prosody.
func startProsody(t *testing.T, users map[string]string) *prosodyPeer {
	t.Helper()
	for _, bin := range []string{"prosody", "prosodyctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			// Asked for explicitly, so missing Prosody is an error, not a skip.
			t.Fatalf("OWNCHAT_E2E_PEER=prosody but %s is missing: apt-get install prosody", bin)
		}
	}
	dir := t.TempDir()
	p := &prosodyPeer{dir: dir, C2S: FreePort(), DirectTLS: FreePort(), CAFile: filepath.Join(dir, "cert.pem")}
	keyFile := filepath.Join(dir, "key.pem")
	writeSelfSigned(t, p.CAFile, keyFile, prosodyDomain)
	for _, d := range []string{"data", "certs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Prosody switches to its own user when started as root unless told
	// otherwise; the temporary directory is root's, so stay root.
	cfg := fmt.Sprintf(`-- generated by e2e/prosody_test.go
run_as_root = true
data_path = %[1]q
certificates = %[2]q
pidfile = %[3]q
log = { { levels = { min = "debug" }, to = "file", filename = %[4]q } }
interfaces = { "127.0.0.1" }
c2s_ports = { %[5]d }
c2s_direct_tls_ports = { %[6]d }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "time", "version", "offline" }
modules_disabled = { "s2s" }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = true
ssl = { certificate = %[7]q, key = %[8]q }
VirtualHost %[9]q
`, filepath.Join(dir, "data"), filepath.Join(dir, "certs"), filepath.Join(dir, "prosody.pid"),
		filepath.Join(dir, "prosody.log"), p.C2S, p.DirectTLS, p.CAFile, keyFile, prosodyDomain)
	cfgPath := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for user, pw := range users {
		out, err := exec.Command("prosodyctl", "--config", cfgPath, "register", user, prosodyDomain, pw).CombinedOutput()
		if err != nil {
			t.Fatalf("prosodyctl register %s: %v\n%s", user, err, out)
		}
	}

	out := &syncBuffer{}
	cmd := exec.Command("prosody", "--config", cfgPath, "-F")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			logTail, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			t.Logf("--- prosody output ---\n%s\n--- prosody.log ---\n%s", out.String(), tail(logTail, 64<<10))
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for _, port := range []int{p.C2S, p.DirectTLS} {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("prosody exited: %v\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("prosody not listening on %s: %v\n%s", addr, err, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return p
}

// writeSelfSigned writes a P-256 certificate for domain that is also its
// own CA, so a client can verify it with --ca.
func writeSelfSigned(t *testing.T, certFile, keyFile, domain string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: domain},
		DNSNames:              []string{domain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
