package xmppd

import (
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
)

// XEP-0115 Entity Capabilities for the server itself: the caps element in
// the stream features after authentication (§6.3) lets a client skip the
// disco#info query of the domain when it has seen the hash before.

const (
	nsCaps = "http://jabber.org/protocol/caps"
	// capsNode names the software that generated the hash (§4).
	capsNode = "https://ownchat.example/caps"
)

// discoIdentity is one XEP-0030 identity.
type discoIdentity struct{ Category, Type, Lang, Name string }

// serverIdentity is the domain's identity in disco#info and in the hash.
var serverIdentity = discoIdentity{Category: "server", Type: "im", Name: "ownChat"}

// capsVer is the verification string of XEP-0115 §5.1 with SHA-1 (the
// hash every client implements): sorted identities as
// category/type/lang/name, then sorted features, each followed by '<'.
// We publish no XEP-0128 extended forms.
func capsVer(ids []discoIdentity, features []string) string {
	idStrings := make([]string, len(ids))
	for i, id := range ids {
		idStrings[i] = id.Category + "/" + id.Type + "/" + id.Lang + "/" + id.Name
	}
	sort.Strings(idStrings)
	feats := append([]string(nil), features...)
	sort.Strings(feats)
	var b strings.Builder
	for _, s := range idStrings {
		b.WriteString(s)
		b.WriteByte('<')
	}
	for _, f := range feats {
		b.WriteString(f)
		b.WriteByte('<')
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// registerCaps computes the hash once from the domain's disco#info and adds
// the stream feature. Call it after every registration that adds domain
// features; TestCapsMatchesDisco fails otherwise.
func (s *Server) registerCaps() {
	ver := capsVer([]discoIdentity{serverIdentity}, s.serverFeatures)
	s.feat.capsNode = capsNode + "#" + ver
	s.extraFeatures = append(s.extraFeatures,
		[]byte("<c xmlns='"+nsCaps+"' hash='sha-1' node='"+capsNode+"' ver='"+ver+"'/>"))
}
