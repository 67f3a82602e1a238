package xmppd

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/png"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// testPNG encodes a w x h PNG; shade makes images of one size differ.
func testPNG(t testing.TB, w, h int, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dirPhotos is a directory with photos: the hash in Person (fakeDir.photos)
// and the bytes in the PHOTO field of VCardFields, as cmd/xmppd wires LDAP.
type dirPhotos struct {
	mu     sync.Mutex
	dir    *fakeDir
	photos map[string][]byte
}

func (d *dirPhotos) fields(user string) *wire.Element {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.photos[user]
	if !ok {
		return nil
	}
	v := elem(nsVCard, "vCard")
	v.Add(elem(nsVCard, "PHOTO").Add(elem(nsVCard, "TYPE").AddText("image/jpeg"), // mislabelled on purpose
		elem(nsVCard, "BINVAL").AddText(base64.StdEncoding.EncodeToString(p))))
	return v
}

// set changes user's directory photo (nil removes it) as a sync would.
func (d *dirPhotos) set(user string, photo []byte) {
	d.mu.Lock()
	d.dir.mu.Lock()
	if d.dir.photos == nil {
		d.dir.photos = map[string]string{}
	}
	if photo == nil {
		delete(d.photos, user)
		delete(d.dir.photos, user)
	} else {
		d.photos[user] = photo
		d.dir.photos[user] = sha1Hex(photo)
	}
	d.dir.mu.Unlock()
	d.mu.Unlock()
}

func newAvatarServer(t *testing.T) (*testServer, *dirPhotos) {
	dp := &dirPhotos{photos: map[string][]byte{}}
	ts := newTestServer(t, func(s *Server) { s.VCardFields = dp.fields })
	dp.dir = ts.dir
	return ts, dp
}

// metaInfo returns the <info/> of a metadata notification or items result
// and the item id; nil info for an empty <metadata/>.
func metaInfo(t *testing.T, el *wire.Element) (string, *wire.Element) {
	t.Helper()
	var items *wire.Element
	if ev := el.Child(nsPubSubEvent, "event"); ev != nil {
		items = ev.Child(nsPubSubEvent, "items")
	} else if ps := el.Child(nsPubSub, "pubsub"); ps != nil {
		items = ps.Child(nsPubSub, "items")
	}
	if items == nil {
		t.Fatalf("no items in %s", el)
	}
	_, it := childElements(items)
	if it == nil || it.Local != "item" {
		t.Fatalf("no item in %s", el)
	}
	md := it.Child(nsAvatarMeta, "metadata")
	if md == nil {
		t.Fatalf("no metadata in %s", el)
	}
	return it.Attr("id"), md.Child(nsAvatarMeta, "info")
}

// avatarData fetches owner's data item id and returns the decoded bytes.
func avatarData(t *testing.T, c *client, owner, id string) []byte {
	t.Helper()
	r := requireResult(t, "data items", c.iq("get", owner, `<pubsub xmlns='`+nsPubSub+`'><items node='`+nsAvatarData+`'><item id='`+id+`'/></items></pubsub>`))
	it := r.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Child(nsPubSub, "item")
	if it == nil || it.Attr("id") != id {
		t.Fatalf("data item %s missing: %s", id, r)
	}
	b, err := base64.StdEncoding.DecodeString(it.Child(nsAvatarData, "data").Text())
	if err != nil {
		t.Fatalf("data item: %v", err)
	}
	return b
}

func getMeta(c *client, owner string) *wire.Element {
	return c.iq("get", owner, `<pubsub xmlns='`+nsPubSub+`'><items node='`+nsAvatarMeta+`'/></pubsub>`)
}

// TestAvatarFromDirectory: a directory photo is alice's XEP-0084 avatar:
// contacts get its metadata as last item, anyone may fetch metadata and
// data (access model open), the hash in both matches her presence, alice
// cannot change it, and a photo change is notified to +notify contacts.
func TestAvatarFromDirectory(t *testing.T) {
	ts, dp := newAvatarServer(t)
	photo := testPNG(t, 3, 2, 10)
	dp.set("alice", photo)
	hash := sha1Hex(photo)

	alice := ts.online(t, "alice", "a", 0)
	bob, got := ts.pepOnline(t, "bob", "b", nsAvatarMeta)
	var last *wire.Element
	for _, el := range got {
		if isEvent("alice@"+testDomain, nsAvatarMeta)(el) {
			last = el
		}
	}
	if last == nil {
		t.Fatalf("bob got no metadata last item: %v", got)
	}
	id, info := metaInfo(t, last)
	if id != hash || info == nil || info.Attr("id") != hash || info.Attr("type") != "image/png" ||
		info.Attr("width") != "3" || info.Attr("height") != "2" || info.Attr("bytes") != strconv.Itoa(len(photo)) {
		t.Fatalf("metadata item %s, want id %s image/png 3x2 %d bytes", last, hash, len(photo))
	}
	sawPresence := false
	for _, el := range got {
		if is("presence", "from", alice.jid, "type", "")(el) {
			sawPresence = true
			if h, _ := avatarHash(el); h != hash {
				t.Errorf("presence hash %q, want %q", h, hash)
			}
		}
	}
	if !sawPresence {
		t.Errorf("bob got no presence of alice: %v", got)
	}
	if got := avatarData(t, bob, "alice@"+testDomain, hash); !bytes.Equal(got, photo) {
		t.Errorf("data item bytes differ from the directory photo")
	}

	// carol has no subscription: the open model still lets her fetch.
	carol, _ := ts.pepOnline(t, "carol", "c", nsAvatarMeta)
	if id, _ := metaInfo(t, requireResult(t, "carol metadata", getMeta(carol, "alice@"+testDomain))); id != hash {
		t.Errorf("carol got metadata id %s", id)
	}
	// An id that is not the photo's: no item, not an error.
	r := requireResult(t, "other id", carol.iq("get", "alice@"+testDomain, `<pubsub xmlns='`+nsPubSub+`'><items node='`+nsAvatarData+`'><item id='beef'/></items></pubsub>`))
	if ids := eventItemIDs(r); len(ids) != 0 {
		t.Errorf("unknown id answered with %v", ids)
	}

	// The directory owns the avatar: no change through PEP.
	for name, payload := range map[string]string{
		"publish metadata": publishXML(nsAvatarMeta, "x", `<metadata xmlns='`+nsAvatarMeta+`'/>`, ""),
		"publish data":     publishXML(nsAvatarData, "x", `<data xmlns='`+nsAvatarData+`'>AAAA</data>`, ""),
		"retract":          `<pubsub xmlns='` + nsPubSub + `'><retract node='` + nsAvatarMeta + `'><item id='` + hash + `'/></retract></pubsub>`,
		"delete":           `<pubsub xmlns='` + nsPubSubOwner + `'><delete node='` + nsAvatarData + `'/></pubsub>`,
	} {
		r := alice.iq("set", "", payload)
		requireError(t, name, r, "not-allowed")
		if txt := r.Child(nsClient, "error").Child(nsStanzas, "text"); txt == nil || !strings.Contains(txt.Text(), "company directory") {
			t.Errorf("%s: error without the directory text: %s", name, r)
		}
	}
	if n, _ := ts.Store.PEPNodes("alice"); len(n) != 0 {
		t.Errorf("refused publishes stored nodes: %v", n)
	}

	// A new photo: +notify contacts get the metadata, and the presence.
	photo2 := testPNG(t, 4, 4, 200)
	dp.set("alice", photo2)
	ts.DirectoryChanged(DirectoryChange{PhotoChanged: []string{"alice"}})
	ev := bob.waitFor("new metadata", isEvent("alice@"+testDomain, nsAvatarMeta))
	if id, info := metaInfo(t, ev); id != sha1Hex(photo2) || info.Attr("width") != "4" {
		t.Errorf("new metadata %s, want id %s", ev, sha1Hex(photo2))
	}
	p := bob.waitFor("new presence", is("presence", "from", alice.jid, "type", ""))
	if h, _ := avatarHash(p); h != sha1Hex(photo2) {
		t.Errorf("new presence hash %q", h)
	}
	carol.quiet("metadata event without subscription", isEvent("alice@"+testDomain, nsAvatarMeta))
	if got := avatarData(t, carol, "alice@"+testDomain, sha1Hex(photo2)); !bytes.Equal(got, photo2) {
		t.Errorf("data after the change differs")
	}

	// Photo removed: avatar disabled (empty metadata).
	dp.set("alice", nil)
	ts.DirectoryChanged(DirectoryChange{PhotoChanged: []string{"alice"}})
	ev = bob.waitFor("metadata after removal", isEvent("alice@"+testDomain, nsAvatarMeta))
	if _, info := metaInfo(t, ev); info != nil {
		t.Errorf("removal notified as %s, want empty metadata", ev)
	}
	requireError(t, "metadata without photo", getMeta(bob, "alice@"+testDomain), "item-not-found")
}

// TestAvatarPEPToVCard: XEP-0398 §3.1 and §4 for bob, who has no directory
// photo: publishing data + metadata sets his vCard PHOTO and the hash in
// his presence; an empty <photo/> from a client is left alone; empty
// metadata removes the PHOTO.
func TestAvatarPEPToVCard(t *testing.T) {
	ts, _ := newAvatarServer(t)
	alice := ts.online(t, "alice", "a", 0)
	bob := ts.online(t, "bob", "b", 0)
	alice.drain()

	photo := testPNG(t, 5, 5, 7)
	id := sha1Hex(photo)
	b64 := base64.StdEncoding.EncodeToString(photo)
	// Metadata before data: nothing to convert yet.
	requireResult(t, "early metadata", bob.iq("set", "", publishXML(nsAvatarMeta, "beef", `<metadata xmlns='`+nsAvatarMeta+`'><info id='beef' bytes='1' type='image/png'/></metadata>`, "")))
	// Data whose SHA-1 is not its id is not converted (§3.1 SHOULD verify).
	requireResult(t, "bad data", bob.iq("set", "", publishXML(nsAvatarData, "0000000000000000000000000000000000000000", `<data xmlns='`+nsAvatarData+`'>`+b64+`</data>`, "")))
	requireResult(t, "bad metadata", bob.iq("set", "", publishXML(nsAvatarMeta, "0000000000000000000000000000000000000000",
		`<metadata xmlns='`+nsAvatarMeta+`'><info id='0000000000000000000000000000000000000000' bytes='1' type='image/png'/></metadata>`, "")))
	if v, _ := ts.Store.VCard("bob"); v != nil {
		t.Fatalf("vCard set from unverified avatar: %s", v)
	}

	requireResult(t, "data", bob.iq("set", "", publishXML(nsAvatarData, id, `<data xmlns='`+nsAvatarData+`'>`+b64+`</data>`, "")))
	requireResult(t, "metadata", bob.iq("set", "", publishXML(nsAvatarMeta, id,
		`<metadata xmlns='`+nsAvatarMeta+`'><info id='`+id+`' bytes='1' type='image/png' url='https://example.org/a.png'/>`+
			`<info id='`+id+`' bytes='`+strconv.Itoa(len(photo))+`' type='image/png' width='5' height='5'/></metadata>`, "")))
	bob.drain() // the conversion ran after the result
	v := vcardOf(t, alice.iq("get", "bob@"+testDomain, vcardGet))
	ph := v.Child(nsVCard, "PHOTO")
	if ph == nil || ph.Child(nsVCard, "BINVAL").Text() != b64 || ph.Child(nsVCard, "TYPE").Text() != "image/png" {
		t.Fatalf("bob's vCard %s, want the published PHOTO", v)
	}
	p := alice.waitFor("bob's presence with hash", is("presence", "from", bob.jid, "type", ""))
	if h, _ := avatarHash(p); h != id {
		t.Fatalf("presence %s, want hash %s", p, id)
	}

	// A later presence gets the hash injected; an empty <photo/> stays.
	bob.send(`<presence><show>away</show></presence>`)
	p = alice.waitFor("bob away", is("presence", "from", bob.jid, "type", ""))
	if h, _ := avatarHash(p); h != id {
		t.Errorf("injected hash %q, want %q", h, id)
	}
	bob.send(`<presence><x xmlns='` + nsVCardUpdate + `'><photo/></x></presence>`)
	p = alice.waitFor("bob not ready", is("presence", "from", bob.jid, "type", ""))
	if h, ok := avatarHash(p); !ok || h != "" {
		t.Errorf("empty <photo/> replaced: %s", p)
	}
	// So does a restarted server: the hash is loaded from the node.
	ts.avatars.mu.Lock()
	ts.avatars.hashes = nil
	ts.avatars.mu.Unlock()
	bob2 := ts.online(t, "bob", "b2", 0)
	p = alice.waitFor("bob2 presence", is("presence", "from", bob2.jid, "type", ""))
	if h, _ := avatarHash(p); h != id {
		t.Errorf("hash after reload %q, want %q", h, id)
	}

	// Disabling the avatar (XEP-0084 §4.2.3) removes the PHOTO only.
	requireResult(t, "nick", bob.iq("set", "", `<vCard xmlns='vcard-temp'><NICKNAME>bobby</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>`+b64+`</BINVAL></PHOTO></vCard>`))
	requireResult(t, "disable", bob.iq("set", "", publishXML(nsAvatarMeta, "none", `<metadata xmlns='`+nsAvatarMeta+`'/>`, "")))
	bob.drain()
	v = vcardOf(t, alice.iq("get", "bob@"+testDomain, vcardGet))
	if v.Child(nsVCard, "PHOTO") != nil || vcardField(v, "NICKNAME") != "bobby" {
		t.Errorf("after disabling: %s, want NICKNAME and no PHOTO", v)
	}
	p = alice.waitFor("bob's presence without avatar", func(el *wire.Element) bool {
		h, ok := avatarHash(el)
		return is("presence", "from", bob.jid, "type", "")(el) && ok && h == ""
	})
	_ = p
}

// TestAvatarVCardToPEP: XEP-0398 §3.2: a vCard PHOTO is published as data
// and metadata items (notified to +notify contacts), an unchanged PHOTO
// publishes nothing, and a vCard without PHOTO disables the avatar.
func TestAvatarVCardToPEP(t *testing.T) {
	ts, _ := newAvatarServer(t)
	bob := ts.online(t, "bob", "b", 0)
	alice, _ := ts.pepOnline(t, "alice", "a", nsAvatarMeta)
	alice.drain()

	photo := testPNG(t, 2, 7, 99)
	id := sha1Hex(photo)
	b64 := base64.StdEncoding.EncodeToString(photo)
	// Line-wrapped base64, as clients send it.
	wrapped := b64[:20] + "\n  " + b64[20:]
	vc := `<vCard xmlns='vcard-temp'><FN>Bob</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>` + wrapped + `</BINVAL></PHOTO></vCard>`
	requireResult(t, "vCard with photo", bob.iq("set", "", vc))
	ev := alice.waitFor("metadata event", isEvent("bob@"+testDomain, nsAvatarMeta))
	if gotID, info := metaInfo(t, ev); gotID != id || info.Attr("type") != "image/png" || info.Attr("width") != "2" || info.Attr("height") != "7" {
		t.Fatalf("metadata %s, want id %s 2x7 png", ev, id)
	}
	if got := avatarData(t, alice, "bob@"+testDomain, id); !bytes.Equal(got, photo) {
		t.Errorf("data differs from the vCard photo")
	}
	p := alice.waitFor("bob's presence with hash", is("presence", "from", bob.jid, "type", ""))
	if h, _ := avatarHash(p); h != id {
		t.Errorf("presence hash %q, want %q", h, id)
	}
	// carol (no subscription) may read it: the vCard is public anyway.
	carol := ts.login(t, "carol", "c")
	if gotID, _ := metaInfo(t, requireResult(t, "carol", getMeta(carol, "bob@"+testDomain))); gotID != id {
		t.Errorf("carol got %s", gotID)
	}

	requireResult(t, "same vCard again", bob.iq("set", "", vc))
	alice.quiet("event for an unchanged photo", isEvent("bob@"+testDomain, nsAvatarMeta))

	requireResult(t, "vCard without photo", bob.iq("set", "", `<vCard xmlns='vcard-temp'><FN>Bob</FN></vCard>`))
	ev = alice.waitFor("disabled metadata", isEvent("bob@"+testDomain, nsAvatarMeta))
	if _, info := metaInfo(t, ev); info != nil {
		t.Errorf("removal as %s, want empty metadata", ev)
	}
}

// TestAvatarDisco: the account advertises the conversion (XEP-0398 §2).
func TestAvatarDisco(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.login(t, "alice", "a")
	q := requireResult(t, "disco", alice.iq("get", "alice@"+testDomain, `<query xmlns='`+nsDiscoInfo+`'/>`)).Child(nsDiscoInfo, "query")
	for _, n := range q.Nodes {
		if n.El != nil && n.El.Local == "feature" && n.El.Attr("var") == nsPEPVCardConversion {
			return
		}
	}
	t.Errorf("no %s in %s", nsPEPVCardConversion, q)
}

func TestAvatarMetadata(t *testing.T) {
	pngImg := testPNG(t, 16, 9, 1)
	for _, tc := range []struct {
		name, declared, typ, w, h string
		data                      []byte
	}{
		{"png mislabelled", "image/jpeg", "image/png", "16", "9", pngImg},
		{"unknown bytes keep the declared type", "image/webp", "image/webp", "", "", []byte("RIFF....WEBP")},
		{"unknown bytes without type", "", "image/png", "", "", []byte{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, payload := avatarMetadata(tc.data, tc.declared)
			md, err := wire.ParseElement(payload)
			if err != nil {
				t.Fatal(err)
			}
			info := metadataInfo(md)
			if id != sha1Hex(tc.data) || info == nil || info.Attr("id") != id || info.Attr("type") != tc.typ ||
				info.Attr("width") != tc.w || info.Attr("height") != tc.h || info.Attr("bytes") != strconv.Itoa(len(tc.data)) {
				t.Errorf("got %s", payload)
			}
		})
	}
}

// BenchmarkInjectAvatarHash: the per-presence cost of the XEP-0398 hash
// for a user with a converted avatar (cached hash) and one without.
func BenchmarkInjectAvatarHash(b *testing.B) {
	ts := newTestServer(b)
	ts.setConvertedHash("bob", sha1Hex([]byte("photo")))
	ts.setConvertedHash("carol", "")
	for _, user := range []string{"bob", "carol"} {
		b.Run(user, func(b *testing.B) {
			el := &wire.Element{Space: nsClient, Local: "presence"}
			ts.injectAvatarHash(el, user) // the <x/> exists from here on, as in a re-sent presence
			b.ReportAllocs()
			for b.Loop() {
				ts.injectAvatarHash(el, user)
			}
		})
	}
}

// TestAvatarConcurrentChanges: one session sets a vCard PHOTO while another
// publishes a different PEP avatar, many times over. Whatever the order,
// the vCard PHOTO and the metadata node must end on the same image, and the
// vCard keeps its other fields (XEP-0398 §3 both ways).
func TestAvatarConcurrentChanges(t *testing.T) {
	ts, _ := newAvatarServer(t)
	b1 := ts.online(t, "bob", "b1", 0)
	b2 := ts.online(t, "bob", "b2", 0)
	for i := range 30 {
		a := testPNG(t, 3, 3, uint8(2*i))
		b := testPNG(t, 4, 4, uint8(2*i+1))
		a64, b64, bid := base64.StdEncoding.EncodeToString(a), base64.StdEncoding.EncodeToString(b), sha1Hex(b)
		// Room for several data items: the server's own conversion of the
		// vCard must not evict the item the metadata below refers to.
		requireResult(t, "data", b2.iq("set", "", publishXML(nsAvatarData, bid, `<data xmlns='`+nsAvatarData+`'>`+b64+`</data>`,
			`<field var='pubsub#max_items'><value>10</value></field><field var='pubsub#access_model'><value>open</value></field>`)))
		id1, id2 := b1.id(), b2.id()
		b1.send(`<iq type='set' id='` + id1 + `'><vCard xmlns='vcard-temp'><FN>Bob</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>` + a64 + `</BINVAL></PHOTO></vCard></iq>`)
		b2.send(`<iq type='set' id='` + id2 + `'>` + publishXML(nsAvatarMeta, bid,
			`<metadata xmlns='`+nsAvatarMeta+`'><info id='`+bid+`' bytes='`+strconv.Itoa(len(b))+`' type='image/png'/></metadata>`, "") + `</iq>`)
		requireResult(t, "vCard", b1.waitFor("vCard result", is("iq", "id", id1)))
		requireResult(t, "metadata", b2.waitFor("metadata result", is("iq", "id", id2)))
		// Both handlers took bob's avatar lock before answering; taking it
		// here waits for their conversions.
		ts.lockAvatar("bob")()

		stored, err := ts.Store.VCard("bob")
		if err != nil {
			t.Fatal(err)
		}
		v, err := wire.ParseElement(stored)
		if err != nil {
			t.Fatal(err)
		}
		photo, _, ok := vcardPhoto(v)
		items, _, err := ts.Store.PEPItems("bob", nsAvatarMeta, nil, 1)
		if err != nil || len(items) != 1 {
			t.Fatalf("round %d: metadata items %v, %v", i, items, err)
		}
		if !ok || sha1Hex(photo) != items[0].ID || vcardField(v, "FN") != "Bob" {
			t.Fatalf("round %d: vCard photo %s (FN %q), metadata %s: out of step (a %s, b %s)", i, hashOrEmpty(photo), vcardField(v, "FN"), items[0].ID, sha1Hex(a), bid)
		}
		b1.drain()
		b2.drain()
	}
}
