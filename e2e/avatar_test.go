package e2e

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ownchat/ownchat/ldapsync/slapdtest"
)

const avatarMetaNode = "urn:xmpp:avatar:metadata"

// fixturePhoto reads alice's jpegPhoto from the LDAP fixture.
func fixturePhoto(t *testing.T) []byte {
	t.Helper()
	ldif, err := os.ReadFile(filepath.Join("..", "ldapsync", "testdata", "corp.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ldif), "\n") {
		if b64, ok := strings.CutPrefix(line, "jpegPhoto:: "); ok {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatal("no jpegPhoto in the fixture")
	return nil
}

func sha1Hex(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

var photoHashRE = regexp.MustCompile(`<photo>([0-9a-f]{40})</photo>`)

// presenceHash is the XEP-0153 hash in a presence event ("" without).
func presenceHash(e Event) string {
	if m := photoHashRE.FindStringSubmatch(e.Str("xml")); m != nil {
		return m[1]
	}
	return ""
}

// avatarOnline logs user in with caps asking for avatar metadata
// notifications, then roster and presence.
func (ls *ldapServer) avatarOnline(t *testing.T, user string) *Slix {
	t.Helper()
	s := ls.connect(t, user, user+"-secret")
	s.WaitSession(t)
	s.MustDo(t, map[string]any{"cmd": "pep_interest", "nodes": []string{avatarMetaNode}})
	s.MustDo(t, map[string]any{"cmd": "roster_get"})
	s.MustDo(t, map[string]any{"cmd": "presence"})
	return s
}

// TestAvatarSlixmpp: the xmppd binary against slapd and slixmpp clients.
// alice's jpegPhoto is her XEP-0084 avatar: her colleague bob gets the
// metadata as last item, fetches metadata and data with xep_0084, and the
// hash matches the one in her presence; she cannot replace it through PEP;
// a new jpegPhoto reaches bob as a notification. bob, without a directory
// photo, publishes a PEP avatar with xep_0084, and alice sees it in his
// vCard and his presence hash (XEP-0398).
func TestAvatarSlixmpp(t *testing.T) {
	requireSlixmpp(t)
	dir := slapdtest.Start(t, slapdtest.Options{})
	ls := startLDAPServer(t, dir)
	photo := fixturePhoto(t)
	hash := sha1Hex(photo)
	aliceBare, bobBare := ldapBare("alice"), ldapBare("bob")

	alice := ls.avatarOnline(t, "alice")
	bob := ls.avatarOnline(t, "bob")

	t.Run("directory photo", func(t *testing.T) {
		p := bob.Expect(t, presenceFrom(aliceBare+"/e2e", "available"), eventTimeout)
		if got := presenceHash(p); got != hash {
			t.Fatalf("alice's presence hash %q, want %q (SHA-1 of the jpegPhoto)", got, hash)
		}
		bob.Expect(t, isPEPEvent(aliceBare, avatarMetaNode, hash), eventTimeout)
		md := bob.MustDo(t, map[string]any{"cmd": "avatar_metadata", "jid": aliceBare})
		info, _ := md["info"].([]any)
		if md.Str("id") != hash || len(info) != 1 {
			t.Fatalf("metadata %v, want one info with id %s", md, hash)
		}
		in := Event(info[0].(map[string]any))
		if in.Str("id") != hash || in.Str("type") != "image/jpeg" || in.Str("width") != "8" || in.Str("height") != "8" ||
			in.Str("bytes") != strconv.Itoa(len(photo)) {
			t.Errorf("info %v, want image/jpeg 8x8 %d bytes", in, len(photo))
		}
		data := bob.MustDo(t, map[string]any{"cmd": "avatar_data", "jid": aliceBare, "item_id": hash})
		if data.Str("sha1") != hash {
			t.Errorf("data %v, want SHA-1 %s", data, hash)
		}
		_, err := alice.Do(map[string]any{"cmd": "avatar_publish", "data": base64.StdEncoding.EncodeToString(testPNGE2E(t)), "type": "image/png"})
		if ce, ok := err.(*CommandError); !ok || ce.Condition != "not-allowed" || !strings.Contains(ce.Text, "company directory") {
			t.Errorf("alice replaces her directory photo: %v, want not-allowed", err)
		}
	})

	t.Run("directory photo changes", func(t *testing.T) {
		// Trailing bytes after the JPEG's end: another photo, same header.
		photo2 := append(append([]byte{}, photo...), "ownChat"...)
		hash2 := sha1Hex(photo2)
		dir.Modify("uid=alice,"+slapdtest.People, func(r *ldap.ModifyRequest) { r.Replace("jpegPhoto", []string{string(photo2)}) })
		bob.Expect(t, isPEPEvent(aliceBare, avatarMetaNode, hash2), ldapSyncWait)
		bob.Expect(t, func(e Event) bool { return presenceFrom(aliceBare+"/e2e", "available")(e) && presenceHash(e) == hash2 }, eventTimeout)
		if d := bob.MustDo(t, map[string]any{"cmd": "avatar_data", "jid": aliceBare, "item_id": hash2}); d.Str("sha1") != hash2 {
			t.Errorf("data after the change %v", d)
		}
	})

	t.Run("PEP to vCard", func(t *testing.T) {
		img := testPNGE2E(t)
		res := bob.MustDo(t, map[string]any{"cmd": "avatar_publish", "data": base64.StdEncoding.EncodeToString(img), "type": "image/png", "width": 3, "height": 3})
		id := sha1Hex(img)
		if res.Str("id") != id {
			t.Fatalf("publish %v", res)
		}
		alice.Expect(t, isPEPEvent(bobBare, avatarMetaNode, id), eventTimeout)
		alice.Expect(t, func(e Event) bool { return presenceFrom(bobBare+"/e2e", "available")(e) && presenceHash(e) == id }, eventTimeout)
		v := alice.MustDo(t, map[string]any{"cmd": "vcard_get", "jid": bobBare})
		if !strings.Contains(v.Str("xml"), base64.StdEncoding.EncodeToString(img)) {
			t.Errorf("bob's vCard has no PHOTO of the PEP avatar: %v", v)
		}
	})
}

func testPNGE2E(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 3, 3))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
