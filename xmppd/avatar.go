package xmppd

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of directory photos
	_ "image/png"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// User avatars: XEP-0084 (PEP), XEP-0153 (vCard) and the XEP-0398
// conversion between them.
//
// A user whose directory entry has a photo does not own their avatar: the
// urn:xmpp:avatar:metadata and :data nodes answer from the directory photo
// (taken from the PHOTO field of Server.VCardFields, never stored), and
// every change to those nodes gets <not-allowed/>, as a change of a
// directory vCard field does. These virtual nodes have the access model
// open: the same photo is in the vCard, which every user of the server may
// read (XEP-0054, vcard.go), so a narrower PEP model would hide nothing and
// only break clients that fetch avatars of colleagues they have no
// subscription with (MUC occupants, search results). Notifications still go
// only to the presence audience with +notify (XEP-0163 §4.3).
//
// Any other user gets the conversion both ways (XEP-0398 §3): a published
// metadata item copies the image of the data node into the vCard PHOTO, a
// vCard with a PHOTO publishes data and metadata items (nodes created open,
// for the same reason), and the SHA-1 of the current avatar is injected
// into their available presence (§4).

const (
	nsAvatarData         = "urn:xmpp:avatar:data"
	nsAvatarMeta         = "urn:xmpp:avatar:metadata"
	nsPEPVCardConversion = "urn:xmpp:pep-vcard-conversion:0"
)

// avatarNodeConfig is the configuration of avatar nodes the server
// creates (vCard to PEP) and of the directory's virtual ones.
var avatarNodeConfig = store.PEPConfig{AccessModel: accessOpen, MaxItems: 1, Persist: true, SendLast: sendLastPresence}

// errDirectoryPhoto answers a change to a directory user's avatar nodes.
var errDirectoryPhoto = errNotAllowed.withText("your photo comes from the company directory")

// avatarState caches what presences and notifications need without a
// store read or an image decode each time.
type avatarState struct {
	mu sync.Mutex
	// meta is the metadata payload of a directory photo by its
	// Person.PhotoHash; photos change rarely, so it is dropped whole when
	// it grows past maxAvatarMeta rather than kept in LRU order.
	meta map[string][]byte
	// hashes is the current converted avatar (SHA-1 hex, "" for none) of
	// users without a directory photo, loaded from the metadata node on
	// first use.
	hashes map[string]string
	// locks serialize, per user, a vCard write or an avatar publish with
	// its conversion (XEP-0398 §3): two sessions changing the avatar at
	// once would otherwise leave the vCard PHOTO and the PEP nodes on
	// different images, or lose one vCard's other fields in
	// setVCardPhoto's read-modify-write. Striped, so memory does not grow
	// with the users.
	locks [64]sync.Mutex
}

// lockAvatar takes user's avatar lock and returns its release.
func (s *Server) lockAvatar(user string) (unlock func()) {
	m := &s.avatars.locks[userStripe(user, len(s.avatars.locks))]
	m.Lock()
	return m.Unlock
}

const maxAvatarMeta = 10000

// isAvatarNode reports whether node is one of the XEP-0084 nodes.
func isAvatarNode(node string) bool { return node == nsAvatarMeta || node == nsAvatarData }

// directoryPhotoHash returns the hash of user's directory photo, "" when
// the directory has none.
func (s *Server) directoryPhotoHash(user string) string {
	if p, ok := s.Directory.Person(user); ok {
		return p.PhotoHash
	}
	return ""
}

// directoryPhoto returns the bytes and declared type of user's directory
// photo from the PHOTO field the directory puts in the vCard.
func (s *Server) directoryPhoto(user string) ([]byte, string, bool) {
	if s.VCardFields == nil {
		return nil, "", false
	}
	v := s.VCardFields(user)
	if v == nil {
		return nil, "", false
	}
	return vcardPhoto(v)
}

// vcardPhoto decodes the first PHOTO of a vCard with an inline BINVAL.
func vcardPhoto(v *wire.Element) ([]byte, string, bool) {
	for _, p := range fieldsNamed(v, "PHOTO") {
		bin := p.Child(nsVCard, "BINVAL")
		if bin == nil {
			continue // an EXTVAL (URL) is not an image we hold
		}
		data, err := base64.StdEncoding.DecodeString(stripSpace(bin.Text()))
		if err != nil || len(data) == 0 {
			continue
		}
		typ := ""
		if t := p.Child(nsVCard, "TYPE"); t != nil {
			typ = strings.TrimSpace(t.Text())
		}
		return data, typ, true
	}
	return nil, "", false
}

// stripSpace drops the line breaks and indentation clients put into
// base64 text.
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
}

func sha1Hex(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

// avatarMetadata builds a XEP-0084 §4.2.1 metadata payload for an image.
// The type comes from the bytes when they are JPEG or PNG (directories and
// clients label images carelessly), else from declared; width and height
// come from the image header when it parses.
func avatarMetadata(data []byte, declared string) (id string, payload []byte) {
	id = sha1Hex(data)
	typ := declared
	info := elem(nsAvatarMeta, "info", "bytes", strconv.Itoa(len(data)), "id", id)
	if cfg, format, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
		typ = "image/" + format
		info.SetAttr("width", strconv.Itoa(cfg.Width))
		info.SetAttr("height", strconv.Itoa(cfg.Height))
	}
	if typ == "" {
		typ = "image/png" // XEP-0084 §4.2.1: PNG is the type all must support
	}
	info.SetAttr("type", typ)
	md := elem(nsAvatarMeta, "metadata").Add(info)
	return id, md.AppendXML(nil, nsClient)
}

// avatarDataPayload is the XEP-0084 §4.1 data payload.
func avatarDataPayload(data []byte) []byte {
	b := make([]byte, 0, 64+base64.StdEncoding.EncodedLen(len(data)))
	b = append(b, "<data xmlns='"+nsAvatarData+"'>"...)
	b = base64.StdEncoding.AppendEncode(b, data)
	return append(b, "</data>"...)
}

// directoryAvatarMeta returns the metadata item of user's directory photo
// (its id the SHA-1 of the bytes), decoding the photo once per hash.
func (s *Server) directoryAvatarMeta(user, hash string) (store.PEPItem, bool) {
	s.avatars.mu.Lock()
	payload, ok := s.avatars.meta[hash]
	s.avatars.mu.Unlock()
	id := hash
	if !ok {
		data, typ, found := s.directoryPhoto(user)
		if !found {
			return store.PEPItem{}, false
		}
		id, payload = avatarMetadata(data, typ)
		if id != hash {
			// A photo changed between Person and VCardFields: serve what
			// the bytes say, and do not cache it under the old hash.
			return store.PEPItem{ID: id, Publisher: user + "@" + s.Domain, Payload: payload}, true
		}
		s.avatars.mu.Lock()
		if s.avatars.meta == nil || len(s.avatars.meta) >= maxAvatarMeta {
			s.avatars.meta = make(map[string][]byte)
		}
		s.avatars.meta[hash] = payload
		s.avatars.mu.Unlock()
	}
	return store.PEPItem{ID: id, Publisher: user + "@" + s.Domain, Payload: payload}, true
}

// pepItemsOf reads owner's node for an items request, answering the
// avatar nodes of a directory user from the directory photo.
func (s *Server) pepItemsOf(owner, node string, ids []string, max int) ([]store.PEPItem, store.PEPConfig, error) {
	if isAvatarNode(node) {
		if hash := s.directoryPhotoHash(owner); hash != "" {
			list, ok := s.directoryAvatarItems(owner, node, hash)
			if !ok {
				return nil, store.PEPConfig{}, store.ErrPEPNoNode
			}
			if len(ids) > 0 && !containsID(ids, list[0].ID) {
				list = nil
			}
			return list, avatarNodeConfig, nil
		}
	}
	return s.Store.PEPItems(owner, node, ids, max)
}

func containsID(ids []string, id string) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// directoryAvatarItems is the single item of a directory user's avatar
// node.
func (s *Server) directoryAvatarItems(owner, node, hash string) ([]store.PEPItem, bool) {
	if node == nsAvatarMeta {
		it, ok := s.directoryAvatarMeta(owner, hash)
		if !ok {
			return nil, false
		}
		return []store.PEPItem{it}, true
	}
	data, _, ok := s.directoryPhoto(owner)
	if !ok {
		return nil, false
	}
	return []store.PEPItem{{ID: sha1Hex(data), Publisher: owner + "@" + s.Domain, Payload: avatarDataPayload(data)}}, true
}

// refuseDirectoryAvatar answers a change (publish, retract, create,
// delete, configure) of a directory user's avatar nodes and reports
// whether it did.
func (c *conn) refuseDirectoryAvatar(el, op *wire.Element) bool {
	if el.Attr("type") != "set" || !isAvatarNode(op.Attr("node")) || c.srv.directoryPhotoHash(c.user) == "" {
		return false
	}
	c.bounce(el, "", errDirectoryPhoto)
	return true
}

// sendLastDirectoryAvatar sends session c the metadata of owner's
// directory photo as the node's last item (XEP-0163 §4.3.3) and reports
// whether owner's avatar comes from the directory, in which case the
// stored avatar nodes are not owner's current ones.
func (s *Server) sendLastDirectoryAvatar(c *conn, owner string, want func(node string) bool) bool {
	hash := s.directoryPhotoHash(owner)
	if hash == "" {
		return false
	}
	if !want(nsAvatarMeta) {
		return true
	}
	if _, _, ok := s.pepAccess(owner, c.user, avatarNodeConfig); !ok {
		return true
	}
	if owner != c.user && s.blockSetOf(c.user).matches(owner+"@"+s.Domain) {
		return true
	}
	it, ok := s.directoryAvatarMeta(owner, hash)
	if !ok {
		return true
	}
	head, tail := pepMessage(owner+"@"+s.Domain, pepItemsEvent(nsAvatarMeta, []store.PEPItem{it}, false), time.Time{})
	if c.send(head, c.toAttr, tail) {
		s.metrics.stanzasOut.Add(1)
	}
	return true
}

// notifyDirectoryAvatar tells user's metadata subscribers that the
// directory photo changed (XEP-0084 §4.2): the new metadata, or, with the
// photo gone, the user's own stored avatar or an empty <metadata/>
// (§4.2.3, avatar disabled).
func (s *Server) notifyDirectoryAvatar(user string) {
	var it store.PEPItem
	if hash := s.directoryPhotoHash(user); hash != "" {
		var ok bool
		if it, ok = s.directoryAvatarMeta(user, hash); !ok {
			s.Logger.Warn("directory: photo hash without a PHOTO in the directory vCard", "user", user)
			return
		}
	} else if list, _, err := s.Store.PEPItems(user, nsAvatarMeta, nil, 1); err == nil && len(list) == 1 {
		it = list[0]
	} else {
		it = store.PEPItem{ID: "none", Payload: []byte("<metadata xmlns='" + nsAvatarMeta + "'/>")}
	}
	s.pepBroadcast(user, nsAvatarMeta, avatarNodeConfig, pepItemsEvent(nsAvatarMeta, []store.PEPItem{it}, false))
}

// ---- the presence hash (XEP-0153, XEP-0398 §4) -----------------------------

// avatarHash returns the SHA-1 of user's current avatar and whether the
// directory owns it. It is read for every available presence, so the
// converted hash is cached after one store read per user.
func (s *Server) avatarHash(user string) (string, bool) {
	if h := s.directoryPhotoHash(user); h != "" {
		return h, true
	}
	s.avatars.mu.Lock()
	h, ok := s.avatars.hashes[user]
	s.avatars.mu.Unlock()
	if ok {
		return h, false
	}
	list, _, err := s.Store.PEPItems(user, nsAvatarMeta, nil, 1)
	switch {
	case errors.Is(err, store.ErrPEPNoNode):
	case err != nil:
		// Not cached: the next presence tries again.
		s.Logger.Error("avatar hash", "user", user, "err", err)
		return "", false
	case len(list) == 1:
		if md, err := wire.ParseElement(list[0].Payload); err == nil {
			h = metadataImageID(md)
		}
	}
	s.setConvertedHash(user, h)
	return h, false
}

func (s *Server) setConvertedHash(user, h string) {
	s.avatars.mu.Lock()
	if s.avatars.hashes == nil {
		s.avatars.hashes = make(map[string]string)
	}
	s.avatars.hashes[user] = h
	s.avatars.mu.Unlock()
}

// injectAvatarHash puts user's avatar hash into an available presence.
// A directory photo replaces whatever the client sent (setAvatarHash); a
// converted avatar follows XEP-0398 §4: an empty <photo/> (the client has
// not loaded its avatar yet) is left alone, anything else gets the hash.
func (s *Server) injectAvatarHash(el *wire.Element, user string) {
	h, dir := s.avatarHash(user)
	switch {
	case h != "" && carriesHash(el, h):
		// What XEP-0153 clients send once they know their avatar: kept
		// as it is, without rebuilding the element for every presence.
	case dir:
		setAvatarHash(el, h)
	case h == "":
	default:
		if x := el.Child(nsVCardUpdate, "x"); x != nil {
			if p := x.Child(nsVCardUpdate, "photo"); p != nil && strings.TrimSpace(p.Text()) == "" {
				return
			}
		}
		setAvatarHash(el, h)
	}
}

// carriesHash reports whether el announces exactly hash (XEP-0153 §3.2).
func carriesHash(el *wire.Element, hash string) bool {
	x := el.Child(nsVCardUpdate, "x")
	if x == nil {
		return false
	}
	n, p := childElements(x)
	return n == 1 && p.Local == "photo" && p.Space == nsVCardUpdate && strings.TrimSpace(p.Text()) == hash
}

// metadataImageID is the id of the info element XEP-0398 §3.1 converts:
// the first that does not point to an external URL; "" when the metadata
// is empty (avatar disabled) or has only URLs.
func metadataImageID(md *wire.Element) string {
	if info := metadataInfo(md); info != nil {
		return info.Attr("id")
	}
	return ""
}

func metadataInfo(md *wire.Element) *wire.Element {
	if md == nil || md.Space != nsAvatarMeta || md.Local != "metadata" {
		return nil
	}
	for _, n := range md.Nodes {
		if n.El != nil && n.El.Local == "info" && n.El.Space == nsAvatarMeta && n.El.Attr("url") == "" && n.El.Attr("id") != "" {
			return n.El
		}
	}
	return nil
}

// ---- conversion (XEP-0398 §3) ------------------------------------------------

// avatarPublished converts a metadata item user published into the vCard
// PHOTO (§3.1) and announces the new hash in the user's presence. It runs
// after the publish was answered: a failure is logged, the PEP avatar
// stands.
func (s *Server) avatarPublished(user string, md *wire.Element) {
	info := metadataInfo(md)
	var data []byte
	var typ string
	if info != nil {
		id := info.Attr("id")
		list, _, err := s.Store.PEPItems(user, nsAvatarData, []string{id}, 0)
		if err != nil || len(list) != 1 {
			// Clients publish the data first (XEP-0084 §4.1); without it
			// there is nothing to put in the vCard.
			s.Logger.Info("avatar: metadata without its data item; vCard unchanged", "user", user, "id", id, "err", err)
			return
		}
		d, err := wire.ParseElement(list[0].Payload)
		if err != nil || d.Space != nsAvatarData || d.Local != "data" {
			s.Logger.Info("avatar: data item is not XEP-0084 data; vCard unchanged", "user", user, "id", id)
			return
		}
		if data, err = base64.StdEncoding.DecodeString(stripSpace(d.Text())); err != nil || sha1Hex(data) != id {
			s.Logger.Info("avatar: data does not match its SHA-1 id; vCard unchanged", "user", user, "id", id)
			return
		}
		typ = info.Attr("type")
	}
	if err := s.setVCardPhoto(user, data, typ); err != nil {
		s.Logger.Error("avatar: PEP to vCard", "user", user, "err", err)
		return
	}
	s.avatarChanged(user, hashOrEmpty(data))
}

func hashOrEmpty(data []byte) string {
	if data == nil {
		return ""
	}
	return sha1Hex(data)
}

// setVCardPhoto replaces the PHOTO of user's stored vCard (removes it
// when data is nil), keeping the other fields.
func (s *Server) setVCardPhoto(user string, data []byte, typ string) error {
	stored, err := s.Store.VCard(user)
	if err != nil {
		return fmt.Errorf("read vCard: %w", err)
	}
	v := elem(nsVCard, "vCard")
	if stored != nil {
		old, err := wire.ParseElement(stored)
		if err != nil {
			return fmt.Errorf("parse stored vCard: %w", err)
		}
		for _, n := range old.Nodes {
			if n.El != nil && n.El.Local != "PHOTO" {
				v.Nodes = append(v.Nodes, n)
			}
		}
	}
	if data != nil {
		photo := elem(nsVCard, "PHOTO")
		if typ != "" {
			photo.Add(elem(nsVCard, "TYPE").AddText(typ))
		}
		photo.Add(elem(nsVCard, "BINVAL").AddText(base64.StdEncoding.EncodeToString(data)))
		v.Add(photo)
	}
	var doc []byte
	if n, _ := childElements(v); n > 0 {
		if doc, err = canonicalXML(v, s.MaxVCardBytes); err != nil {
			return fmt.Errorf("vCard with photo of %d bytes: %w", len(data), err)
		}
	}
	if err := s.Store.SetVCard(user, doc); err != nil {
		return fmt.Errorf("store vCard: %w", err)
	}
	return nil
}

// vcardStored converts the PHOTO of a vCard user just stored into the
// avatar nodes (§3.2) when it differs from the current avatar: data item
// first, then metadata, each notified. A vCard without PHOTO disables the
// avatar (XEP-0084 §4.2.3, empty metadata) if there was one.
func (s *Server) vcardStored(user string, v *wire.Element) {
	if s.directoryPhotoHash(user) != "" {
		return // the PHOTO is the directory's, and so are the nodes
	}
	data, typ, ok := vcardPhoto(v)
	hash := ""
	if ok {
		hash = sha1Hex(data)
	}
	if cur, _ := s.avatarHash(user); cur == hash {
		return
	}
	if err := s.publishAvatar(user, data, typ); err != nil {
		s.Logger.Error("avatar: vCard to PEP", "user", user, "err", err)
		return
	}
	s.avatarChanged(user, hash)
}

// publishAvatar publishes data (nil: an empty metadata item) to user's
// avatar nodes on their behalf.
func (s *Server) publishAvatar(user string, data []byte, typ string) error {
	now := time.Now().UTC()
	from := user + "@" + s.Domain
	meta := store.PEPItem{ID: "none", Publisher: from, Time: now, Payload: []byte("<metadata xmlns='" + nsAvatarMeta + "'/>")}
	if data != nil {
		if len(data) > s.MaxStanzaBytes {
			return fmt.Errorf("photo of %d bytes is over the stanza limit", len(data))
		}
		id, payload := avatarMetadata(data, typ)
		it := store.PEPItem{ID: id, Publisher: from, Time: now, Payload: avatarDataPayload(data)}
		cfg, _, err := s.Store.PEPPublish(store.PEPPublishRequest{User: user, Node: nsAvatarData, Item: it, Create: avatarNodeConfig, MaxNodes: s.MaxPEPNodes})
		if err != nil {
			return fmt.Errorf("publish data: %w", err)
		}
		s.pepBroadcast(user, nsAvatarData, cfg, pepItemsEvent(nsAvatarData, []store.PEPItem{it}, false))
		meta.ID, meta.Payload = id, payload
	}
	cfg, _, err := s.Store.PEPPublish(store.PEPPublishRequest{User: user, Node: nsAvatarMeta, Item: meta, Create: avatarNodeConfig, MaxNodes: s.MaxPEPNodes})
	if err != nil {
		return fmt.Errorf("publish metadata: %w", err)
	}
	s.pepBroadcast(user, nsAvatarMeta, cfg, pepItemsEvent(nsAvatarMeta, []store.PEPItem{meta}, false))
	return nil
}

// avatarChanged records a converted avatar's new hash and sends the user's
// presence again with it, so that XEP-0153 clients fetch it now.
func (s *Server) avatarChanged(user, hash string) {
	s.setConvertedHash(user, hash)
	s.rebroadcastAvatar(user)
}
