package xmppd

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/xmppd/wire"
)

func discoFeatures(q *wire.Element) map[string]bool {
	out := map[string]bool{}
	for _, n := range q.Nodes {
		if n.El != nil && n.El.Local == "feature" {
			out[n.El.Attr("var")] = true
		}
	}
	return out
}

// TestServerIQs covers the IQs the domain answers itself.
func TestServerIQs(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.Version = "1.2.3" })
	alice := ts.login(t, "alice", "a")

	t.Run("disco#info", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		q := el.Child(nsDiscoInfo, "query")
		if el.Attr("type") != "result" || el.Attr("from") != testDomain || q == nil {
			t.Fatalf("got %s", el)
		}
		id := q.Child(nsDiscoInfo, "identity")
		if id == nil || id.Attr("category") != "server" || id.Attr("type") != "im" {
			t.Errorf("identity: %s", el)
		}
		f := discoFeatures(q)
		for _, want := range []string{nsDiscoInfo, nsDiscoItems, nsPing, nsTime, nsVersion, "msgoffline"} {
			if !f[want] {
				t.Errorf("feature %s missing: %s", want, el)
			}
		}
	})
	t.Run("disco#info unknown node", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/>`)
		if !isStanzaError("iq", "item-not-found")(el) {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("disco#info set", func(t *testing.T) {
		el := alice.iq("set", testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if stanzaErrorCondition(el) == "" {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("disco#items", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
		if el.Attr("type") != "result" || el.Child(nsDiscoItems, "query") == nil {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("ping", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`)
		if el.Attr("type") != "result" || el.Attr("from") != testDomain || el.Attr("to") != "alice@example.com/a" {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("version", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<query xmlns='jabber:iq:version'/>`)
		q := el.Child(nsVersion, "query")
		if q == nil || q.Child(nsVersion, "name").Text() != "ownChat" || q.Child(nsVersion, "version").Text() != "1.2.3" {
			t.Fatalf("got %s", el)
		}
	})
	t.Run("time", func(t *testing.T) {
		el := alice.iq("get", testDomain, `<time xmlns='urn:xmpp:time'/>`)
		tm := el.Child(nsTime, "time")
		if tm == nil || tm.Child(nsTime, "tzo") == nil || tm.Child(nsTime, "utc") == nil {
			t.Fatalf("got %s", el)
		}
		utc, err := time.Parse(time.RFC3339, tm.Child(nsTime, "utc").Text())
		if err != nil || time.Since(utc).Abs() > time.Minute {
			t.Fatalf("utc %q: %v", tm.Child(nsTime, "utc").Text(), err)
		}
	})
	t.Run("account disco#info", func(t *testing.T) {
		for _, to := range []string{"bob@example.com", "alice@example.com", "dave@example.com"} {
			el := alice.iq("get", to, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
			q := el.Child(nsDiscoInfo, "query")
			if el.Attr("type") != "result" || el.Attr("from") != to || q == nil {
				t.Fatalf("%s: got %s", to, el)
			}
			id := q.Child(nsDiscoInfo, "identity")
			if id == nil || id.Attr("category") != "account" || id.Attr("type") != "registered" {
				t.Fatalf("%s: identity: %s", to, el)
			}
		}
	})
}

func TestHideVersion(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.HideVersion = true })
	alice := ts.login(t, "alice", "a")
	el := alice.iq("get", testDomain, `<query xmlns='jabber:iq:version'/>`)
	if !isStanzaError("iq", "service-unavailable")(el) {
		t.Fatalf("version query: %s", el)
	}
	el = alice.iq("get", testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	if f := discoFeatures(el.Child(nsDiscoInfo, "query")); f[nsVersion] || !f[nsPing] {
		t.Fatalf("features with HideVersion: %v", f)
	}
}

// adminCall sends one request to the admin socket.
func adminCall(t *testing.T, path string, req string) AdminResponse {
	t.Helper()
	nc, err := net.DialTimeout("unix", path, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(nc).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var resp AdminResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("admin answer %q: %v", line, err)
	}
	return resp
}

func TestAdmin(t *testing.T) {
	ts := newTestServer(t)
	ts.HandleAdmin("echo", func(args []string) (string, error) { return strings.Join(args, " "), nil })
	ts.HandleAdmin("fail", func(args []string) (string, error) { return "", errors.New("it failed") })
	path := serveAdminTest(t, ts)
	ts.online(t, "alice", "a", 3)
	ts.login(t, "bob", "b")

	resp := adminCall(t, path, `{"command":"sessions"}`)
	if !resp.OK || !strings.Contains(resp.Output, "alice@example.com/a") || !strings.Contains(resp.Output, "bob@example.com/b") ||
		!strings.Contains(resp.Output, "2 session(s)") {
		t.Fatalf("sessions: %+v", resp)
	}
	if s := ts.Sessions(); len(s) != 2 || s[0].JID != "alice@example.com/a" || !s[0].Available || s[0].Priority != 3 || s[1].Available {
		t.Errorf("Sessions() = %+v", s)
	}
	for _, tt := range []struct {
		req    string
		ok     bool
		output string
	}{
		{`{"command":"nope"}`, false, ""},
		{`not json`, false, ""},
		{`{"command":"echo","args":["a","b"]}`, true, "a b"},
		{`{"command":"fail"}`, false, ""},
		{`{"command":"help"}`, true, "commands: echo, fail, help, sessions\n"},
	} {
		resp := adminCall(t, path, tt.req)
		if resp.OK != tt.ok || resp.Output != tt.output || !tt.ok && resp.Error == "" {
			t.Errorf("%s: %+v", tt.req, resp)
		}
	}
}

func TestCloseUserSessions(t *testing.T) {
	ts := newTestServer(t)
	a1 := ts.online(t, "alice", "1", 0)
	a2 := ts.login(t, "alice", "2")
	bob := ts.online(t, "bob", "b", 0)
	if n := ts.CloseUserSessions("alice", "not-authorized", "account disabled"); n != 2 {
		t.Fatalf("closed %d sessions, want 2", n)
	}
	a1.expectStreamError("not-authorized")
	a2.expectStreamError("not-authorized")
	bob.waitFor("alice unavailable", isUnavailableFrom("alice@example.com/1"))
	bob.iq("get", testDomain, `<ping xmlns='urn:xmpp:ping'/>`)
}

func TestHTTPHandler(t *testing.T) {
	ts := newTestServer(t, func(s *Server) { s.ReadyAfterStart = false })
	h := ts.HTTPHandler(Gauge{Name: "xmppd_test_extra", Help: "Extra.", Type: "gauge", Value: func() float64 { return 42 }})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != 503 {
		t.Errorf("healthz before ready: %d", code)
	}
	ts.SetReady(true)
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz when ready: %d", code)
	}
	ts.online(t, "alice", "a", 0)
	_, body := get("/metrics")
	for _, want := range []string{"\nxmppd_sessions 1\n", "\nxmppd_logins_total 1\n", "\nxmppd_test_extra 42\n", "# TYPE xmppd_stanzas_in_total counter\n"} {
		if !strings.Contains("\n"+body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestRegisterRefused: no in-band registration or password change; the
// client is told why (XEP-0077, issue: the directory owns passwords).
func TestRegisterRefused(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	for _, to := range []string{testDomain, ""} {
		el := alice.iq("set", to, `<query xmlns='jabber:iq:register'><username>alice</username><password>new</password></query>`)
		e := el.Child(nsClient, "error")
		if el.Attr("type") != "error" || e == nil || e.Child(nsStanzas, "not-allowed") == nil ||
			e.Child(nsStanzas, "text") == nil {
			t.Errorf("password change to %q: %s, want not-allowed with a text", to, el)
		}
	}
}
