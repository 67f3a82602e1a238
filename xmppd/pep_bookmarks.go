package xmppd

import (
	"errors"
	"fmt"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// Bookmarks of rooms the server manages for a user (room membership from
// the directory): written both as XEP-0402 PEP items, which current
// clients read and get notified of, and into the XEP-0048 document in
// private storage (XEP-0049), which older clients read at login.

const (
	nsBookmarks2     = "urn:xmpp:bookmarks:1"
	nsBookmarks      = "storage:bookmarks"
	bookmarksPrivKey = "{" + nsBookmarks + "}storage"
)

// bookmarksConfig is the node configuration XEP-0402 §3 requires.
func (s *Server) bookmarksConfig() store.PEPConfig {
	return store.PEPConfig{AccessModel: accessWhitelist, MaxItems: s.MaxPEPItems, Persist: true, SendLast: sendLastNever}
}

// SetRoomBookmark adds (present) or removes (!present) the bookmark of
// roomJID for user, in XEP-0402 (notifying the user's sessions that asked
// for urn:xmpp:bookmarks:1+notify) and in XEP-0048 private storage. An
// existing bookmark keeps what the user added to it (nick, password,
// extensions); name and autojoin are the server's.
func (s *Server) SetRoomBookmark(user, roomJID, name string, autojoin bool, present bool) error {
	s.init()
	if user == "" || roomJID == "" {
		return errors.New("xmppd: SetRoomBookmark: empty user or room")
	}
	if err := s.setBookmark2(user, roomJID, name, autojoin, present); err != nil {
		return fmt.Errorf("xmppd: bookmark %s for %s: %w", roomJID, user, err)
	}
	if err := s.setBookmark1(user, roomJID, name, autojoin, present); err != nil {
		return fmt.Errorf("xmppd: private bookmark %s for %s: %w", roomJID, user, err)
	}
	return nil
}

func boolAttr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (s *Server) setBookmark2(user, roomJID, name string, autojoin, present bool) error {
	if !present {
		found, err := s.Store.PEPRetract(user, nsBookmarks2, roomJID)
		if errors.Is(err, store.ErrPEPNoNode) || err == nil && !found {
			return nil
		}
		if err != nil {
			return err
		}
		cfg, _, err := s.Store.PEPConfig(user, nsBookmarks2)
		if err != nil {
			return err
		}
		s.pepBroadcast(user, nsBookmarks2, cfg, pepItemsEvent(nsBookmarks2, []store.PEPItem{{ID: roomJID}}, true))
		return nil
	}
	conf := elem(nsBookmarks2, "conference", "autojoin", boolAttr(autojoin))
	if name != "" {
		conf.SetAttr("name", name)
	}
	if old, _, err := s.Store.PEPItems(user, nsBookmarks2, []string{roomJID}, 0); err == nil && len(old) == 1 {
		if prev, err := wire.ParseElement(old[0].Payload); err == nil {
			for _, n := range prev.Nodes {
				if n.El != nil {
					conf.Add(n.El)
				}
			}
		}
	}
	payload, err := canonicalXML(conf, s.MaxStanzaBytes)
	if err != nil {
		return err
	}
	it := store.PEPItem{ID: roomJID, Publisher: user + "@" + s.Domain, Time: time.Now().UTC(), Payload: payload}
	cfg, _, err := s.Store.PEPPublish(store.PEPPublishRequest{User: user, Node: nsBookmarks2, Item: it, Create: s.bookmarksConfig(), MaxNodes: s.MaxPEPNodes})
	if err != nil {
		return err
	}
	s.pepBroadcast(user, nsBookmarks2, cfg, pepItemsEvent(nsBookmarks2, []store.PEPItem{it}, false))
	return nil
}

func (s *Server) setBookmark1(user, roomJID, name string, autojoin, present bool) error {
	return s.Store.UpdatePrivate(user, bookmarksPrivKey, func(old []byte) ([]byte, error) {
		storage := elem(nsBookmarks, "storage")
		if old != nil {
			if prev, err := wire.ParseElement(old); err == nil {
				storage = prev
			}
		}
		conf := elem(nsBookmarks, "conference", "jid", roomJID, "autojoin", boolAttr(autojoin))
		if name != "" {
			conf.SetAttr("name", name)
		}
		kept := storage.Nodes[:0]
		for _, n := range storage.Nodes {
			if n.El != nil && n.El.Local == "conference" && n.El.Attr("jid") == roomJID {
				for _, ch := range n.El.Nodes {
					if ch.El != nil {
						conf.Add(ch.El) // the user's nick and password
					}
				}
				continue
			}
			kept = append(kept, n)
		}
		storage.Nodes = kept
		if present {
			storage.Add(conf)
		}
		return canonicalXML(storage, s.MaxPrivateBytes)
	})
}
