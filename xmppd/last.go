package xmppd

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0012 Last Activity: the server's uptime, and for an account how long
// ago its last available session went unavailable, with the status text of
// that unavailable presence. Queries to a full JID reach the client, which
// may report its idle time itself.

const nsLast = "jabber:iq:last"

// maxLastStatus bounds the status text kept per user.
const maxLastStatus = 1024

// lastServer answers for the domain with the uptime (XEP-0012 §5).
func lastServer(c *conn, el, q *wire.Element) {
	if el.Attr("type") != "get" || q.Local != "query" {
		c.bounce(el, "", errBadRequest)
		return
	}
	secs := int64(time.Since(c.srv.started) / time.Second)
	c.sendElement(iqResult(el).Add(elem(nsLast, "query", "seconds", strconv.FormatInt(secs, 10))))
}

// lastAccount answers for a user's bare JID (XEP-0012 §3): 0 while any
// session is available, else the seconds since the last logout and its
// status. Only those subscribed to the user's presence may ask; others get
// forbidden (§3, §8), the user always may.
func lastAccount(c *conn, el, q *wire.Element) {
	s := c.srv
	if el.Attr("type") != "get" || q.Local != "query" {
		c.bounce(el, "", errBadRequest)
		return
	}
	user := c.iqTarget(el)
	if user == "" {
		c.bounce(el, "", errServiceUnavailable)
		return
	}
	if user != c.user {
		if _, to := s.presenceSub(c.user, user+"@"+s.Domain); !to {
			c.bounce(el, "", errForbidden)
			return
		}
	}
	for _, r := range s.router.sessionsOf(user) {
		if r.isAvailable() {
			c.sendElement(iqResult(el).Add(elem(nsLast, "query", "seconds", "0")))
			return
		}
	}
	t, status, err := s.Store.LastActivity(user)
	if err != nil {
		s.Logger.Error("reading last activity", "user", user, "err", err)
		c.bounce(el, "", errInternal)
		return
	}
	if t.IsZero() {
		c.bounce(el, "", errItemNotFound)
		return
	}
	secs := int64(time.Since(t) / time.Second)
	if secs < 0 {
		secs = 0 // the clock went back
	}
	rq := elem(nsLast, "query", "seconds", strconv.FormatInt(secs, 10)).AddText(status)
	c.sendElement(iqResult(el).Add(rq))
}

// noteLogout records the last activity of c's user when c was their last
// available session (el is the unavailable presence, nil when the
// connection was lost). It runs after c became unavailable, so of two
// sessions going away at once at least one sees the other gone.
func (s *Server) noteLogout(c *conn, el *wire.Element) {
	for _, r := range s.router.sessionsOf(c.user) {
		if r != c && r.isAvailable() {
			return
		}
	}
	status := ""
	if el != nil {
		if st := el.Child(nsClient, "status"); st != nil {
			status = st.Text()
		}
	}
	if len(status) > maxLastStatus {
		status = status[:maxLastStatus]
		for !utf8.ValidString(status) {
			status = status[:len(status)-1]
		}
	}
	if err := s.Store.SetLastActivity(c.user, time.Now(), status); err != nil {
		s.Logger.Error("storing last activity", "user", c.user, "err", err)
	}
}
