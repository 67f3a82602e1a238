package xmppd

import (
	"errors"

	"github.com/ownchat/ownchat/mam"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0313 queries on the user archive: the account's bare JID answers
// <query/> (get: the form, set: a page), <prefs/> and <metadata/>. The
// protocol is package mam; this file is the account's side.

// registerMAM advertises the archive on the account (XEP-0313 §6.1: the
// user's bare JID, where Conversations, Dino and Gajim look) and the
// stanza-ids on the domain and the account (XEP-0359 §4). A disabled
// archive advertises nothing and answers feature-not-implemented.
func (s *Server) registerMAM() {
	s.accountIQ[mam.NS] = mamAccount
	if !s.Archive.Enabled {
		return
	}
	if s.Archive.MaxPage <= 0 {
		s.Archive.MaxPage = mam.DefaultMaxPage
	}
	s.accountFeatures = append(s.accountFeatures, mam.NS, mam.NSExtended, nsSID)
	s.serverFeatures = append(s.serverFeatures, nsSID)
}

func (c *conn) mamError(el *wire.Element, err error) {
	var e *mam.Error
	if !errors.As(err, &e) {
		c.srv.Logger.Error("archive query failed", "user", c.user, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	c.bounce(el, "", stanzaError{Type: e.Type, Condition: e.Condition, Text: e.Text})
}

// mamAccount dispatches the archive's payloads.
func mamAccount(c *conn, el, q *wire.Element) {
	s := c.srv
	if !s.Archive.Enabled {
		c.bounce(el, "", errFeatureNotImpl)
		return
	}
	get := el.Attr("type") == "get"
	switch {
	case q.Local == "query" && get:
		r := iqResult(el)
		r.Add(mam.QueryForm())
		c.sendElement(r)
	case q.Local == "query":
		c.mamQuery(el, q)
	case q.Local == "prefs" && get:
		r := iqResult(el)
		r.Add(s.archivePrefs(c.user).Element())
		c.sendElement(r)
	case q.Local == "prefs":
		p, err := mam.ParsePrefs(q)
		if err == nil && s.Archive.Forced {
			err = p.CheckForced()
		}
		if err == nil {
			err = s.setArchivePrefs(c.user, p)
		}
		if err != nil {
			c.mamError(el, err)
			return
		}
		r := iqResult(el)
		r.Add(p.Element())
		c.sendElement(r)
	case q.Local == "metadata" && get:
		md, err := mam.ReadMetadata(s.Store, c.bareJID)
		if err != nil {
			c.mamError(el, err)
			return
		}
		r := iqResult(el)
		r.Add(md)
		c.sendElement(r)
	default:
		c.bounce(el, "", errFeatureNotImpl)
	}
}

// mamQuery answers one page (XEP-0313 §4): the result messages, then the
// iq result with the fin.
func (c *conn) mamQuery(el, q *wire.Element) {
	s := c.srv
	req, err := mam.ParseQuery(q, c.bareJID, s.Archive.MaxPage)
	if err != nil {
		c.mamError(el, err)
		return
	}
	page, err := mam.Page(s.Store, &req)
	if err != nil {
		c.mamError(el, err)
		return
	}
	mam.SendPage(c.fullJID, c.bareJID, &req, &page, func(b []byte) { deliver(c, b) })
	r := iqResult(el)
	r.Add(mam.Fin(&req, &page))
	c.sendElement(r)
}
