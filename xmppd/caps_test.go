package xmppd

import (
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

func TestCapsVer(t *testing.T) {
	// The examples of XEP-0115 §5.2 and §5.3 (without its extended form,
	// which we never publish).
	tests := []struct {
		ids   []discoIdentity
		feats []string
		want  string
	}{
		{
			[]discoIdentity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
			[]string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
				"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"},
			"QgayPKawpkPSDYmwT/WM94uAlu0=",
		},
	}
	for _, tt := range tests {
		if got := capsVer(tt.ids, tt.feats); got != tt.want {
			t.Errorf("capsVer(%v, %v) = %s, want %s", tt.ids, tt.feats, got, tt.want)
		}
	}
}

// verFromDisco computes the XEP-0115 §5.1 hash of a disco#info result as a
// client would, independently of capsVer.
func verFromDisco(t *testing.T, q *wire.Element) string {
	t.Helper()
	var ids, feats []string
	for _, n := range q.Nodes {
		if n.El == nil {
			continue
		}
		switch n.El.Local {
		case "identity":
			e := n.El
			ids = append(ids, e.Attr("category")+"/"+e.Attr("type")+"/"+e.Attr("xml:lang")+"/"+e.Attr("name"))
		case "feature":
			feats = append(feats, n.El.Attr("var"))
		}
	}
	sort.Strings(ids)
	sort.Strings(feats)
	s := ""
	for _, x := range append(ids, feats...) {
		s += x + "<"
	}
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestCapsMatchesDisco: the caps element in the stream features after
// authentication (XEP-0115 §6.3) carries the hash of what disco#info of
// the domain really answers, and the node#ver query answers the same (§6.2).
func TestCapsMatchesDisco(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t, "alice/caps")
	feats := c.header()
	if feats.Child(nsCaps, "c") != nil {
		t.Errorf("caps before authentication: %s", feats)
	}
	c.send(plainAuth("", "alice", "alice-pw"))
	c.expectSuccess()
	feats = c.restart()
	caps := feats.Child(nsCaps, "c")
	if caps == nil || caps.Attr("hash") != "sha-1" || caps.Attr("node") != capsNode || caps.Attr("ver") == "" {
		t.Fatalf("no caps in the features after auth: %s", feats)
	}
	c.bind("caps")

	info := requireResult(t, "disco#info", c.iq("get", testDomain, `<query xmlns='`+nsDiscoInfo+`'/>`))
	if got, want := caps.Attr("ver"), verFromDisco(t, info.Child(nsDiscoInfo, "query")); got != want {
		t.Fatalf("caps ver %s, but disco#info hashes to %s: %s", got, want, info)
	}
	node := capsNode + "#" + caps.Attr("ver")
	byNode := requireResult(t, "disco#info node", c.iq("get", testDomain, `<query xmlns='`+nsDiscoInfo+`' node='`+node+`'/>`))
	q := byNode.Child(nsDiscoInfo, "query")
	if q.Attr("node") != node || verFromDisco(t, q) != caps.Attr("ver") {
		t.Fatalf("node query answered %s", byNode)
	}
	requireError(t, "wrong ver", c.iq("get", testDomain, `<query xmlns='`+nsDiscoInfo+`' node='`+capsNode+`#AAAA'/>`), "item-not-found")
}
