package muc

import (
	"fmt"
	"strings"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// Bookmarks of bound rooms. When the directory makes someone a member of a
// bound room, the room appears in their bookmarks with autojoin, so their
// clients join it at the next login; when they leave the group it goes
// away. Their other bookmarks are never touched.
//
// In the server, Config.Bookmark writes both XEP-0402 (PEP, pushed to the
// user's clients) and XEP-0048 (private storage, read at login); without it
// (tests, other embedders) updateBookmark writes XEP-0048 only.
// updateBookmark is the one place that writes bookmarks.

const (
	nsBookmarks = "storage:bookmarks"
	// bookmarkKey is how xmppd keys the private XML document
	// <storage xmlns='storage:bookmarks'/> ("{namespace}localname").
	bookmarkKey = "{" + nsBookmarks + "}storage"
	// maxBookmarkDoc is xmppd's default limit for one private document;
	// a document past it is left alone rather than made unreadable.
	maxBookmarkDoc = 64 << 10
)

// bookmarkChange is one pending bookmark update.
type bookmarkChange struct {
	bare, room, name, nick string
	add                    bool
}

// queueBookmarks applies changes in the background: a sync may change
// thousands of members, each a store transaction, and the room must not
// wait for them.
func (s *Service) queueBookmarks(changes []bookmarkChange) {
	if len(changes) == 0 || s.st == nil {
		return
	}
	s.bmMu.Lock()
	s.bmQueue = append(s.bmQueue, changes...)
	start := !s.bmRunning
	s.bmRunning = true
	s.bmMu.Unlock()
	if start {
		go s.drainBookmarks()
	}
}

func (s *Service) drainBookmarks() {
	for {
		s.bmMu.Lock()
		batch := s.bmQueue
		s.bmQueue = nil
		if len(batch) == 0 {
			s.bmRunning = false
			s.bmIdle.Broadcast()
			s.bmMu.Unlock()
			return
		}
		s.bmMu.Unlock()
		for _, c := range batch {
			if err := s.updateBookmark(c); err != nil {
				s.log.Error("muc: bookmark", "user", c.bare, "room", c.room, "err", err)
			}
		}
	}
}

// WaitBookmarks waits until queued bookmark updates are written (tests,
// shutdown).
func (s *Service) WaitBookmarks() {
	s.bmMu.Lock()
	for s.bmRunning {
		s.bmIdle.Wait()
	}
	s.bmMu.Unlock()
}

// updateBookmark adds the room to, or removes it from, the user's XEP-0048
// bookmarks. Adding keeps an existing bookmark of the room as the user
// left it (they may have turned autojoin off).
func (s *Service) updateBookmark(c bookmarkChange) error {
	user, ok := s.localUser(c.bare)
	if !ok {
		return nil // not an account of this server: nothing of theirs is stored here
	}
	if s.cfg.Bookmark != nil {
		return s.cfg.Bookmark(user, c.room, c.name, c.add)
	}
	// A client's own read-modify-write of the document is not serialized
	// with ours (the store has no compare-and-swap for private XML); ours
	// at least never race each other.
	s.bmWrite.Lock()
	defer s.bmWrite.Unlock()
	doc, err := s.st.Private(user, bookmarkKey)
	if err != nil {
		return fmt.Errorf("muc: read bookmarks: %w", err)
	}
	storage := wire.New(nsBookmarks, "storage")
	if doc != nil {
		if storage, err = parseStored(doc); err != nil {
			return fmt.Errorf("muc: bookmarks of %s: %w", user, err)
		}
	}
	found := false
	kept := storage.Nodes[:0]
	for _, n := range storage.Nodes {
		if n.El != nil && n.El.Local == "conference" && sameJID(n.El.Attr("jid"), c.room) {
			found = true
			if !c.add {
				continue
			}
		}
		kept = append(kept, n)
	}
	storage.Nodes = kept
	if c.add == found {
		return nil // already as wanted
	}
	if c.add {
		conf := &wire.Element{Space: nsBookmarks, Local: "conference",
			Attrs: []wire.Attr{{Name: "jid", Value: c.room}, {Name: "autojoin", Value: "true"}}}
		if c.name != "" {
			conf.SetAttr("name", c.name)
		}
		if c.nick != "" {
			conf.Add((&wire.Element{Space: nsBookmarks, Local: "nick"}).AddText(c.nick))
		}
		storage.Add(conf)
	}
	out := storage.AppendXML(nil, nsClient)
	if len(out) > maxBookmarkDoc {
		return fmt.Errorf("muc: bookmarks of %s would exceed %d bytes", user, maxBookmarkDoc)
	}
	if err := s.st.SetPrivate(user, bookmarkKey, out); err != nil {
		return fmt.Errorf("muc: write bookmarks: %w", err)
	}
	return nil
}

// localUser returns the store's user key (the localpart) of a bare JID of
// this server's users.
func (s *Service) localUser(bare string) (string, bool) {
	at := strings.IndexByte(bare, '@')
	if at <= 0 || bare[at+1:] != s.userDomain {
		return "", false
	}
	return bare[:at], true
}

func sameJID(a, b string) bool {
	if a == b {
		return true
	}
	na, ok1 := normBare(a)
	nb, ok2 := normBare(b)
	return ok1 && ok2 && na == nb
}

// parseStored parses one element as xmppd stores private XML, and strips
// namespace declarations and prefixes so that it serializes canonically.
func parseStored(b []byte) (*wire.Element, error) {
	el, err := wire.ParseElement(b)
	if err != nil {
		return nil, err
	}
	stripPrefixes(el)
	return el, nil
}

func stripPrefixes(e *wire.Element) {
	e.Prefix = ""
	out := e.Attrs[:0]
	for _, a := range e.Attrs {
		if a.Name == "xmlns" || strings.HasPrefix(a.Name, "xmlns:") {
			continue
		}
		out = append(out, a)
	}
	e.Attrs = out
	for _, n := range e.Nodes {
		if n.El != nil {
			stripPrefixes(n.El)
		}
	}
}
