package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// XEP-0198 Stream Management, client side, as far as a load generator
// needs it: enable with resumption after binding, count the stanzas
// received, answer the server's ack requests, drop the connection
// without closing the stream (so the server parks the session) and
// resume a parked session.
//
// The server's elements are matched unprefixed (<r xmlns='urn:xmpp:sm:3'/>,
// <message ...>), which is how xmppd, ejabberd and Prosody write them.

const nsSM = "urn:xmpp:sm:3"

// smCounter is a session's stream management state. Only the goroutine
// reading the session touches it once the login is over.
type smCounter struct {
	on bool
	// h counts the stanzas received since <enabled/>, mod 2^32 (XEP-0198
	// §4: "the value of 'h' starts at zero ... and wraps at 2^32").
	h uint32
	// id is the SM-ID from <enabled/> (§5); "" when the server did not
	// grant resumption.
	id string
	// max is the resumption window the server announced, in seconds
	// (0 if none).
	max int64
	// buf holds an <a/> while it is written, so answering costs no
	// allocation.
	buf [64]byte
}

// smToken is what a top-level element means for stream management.
type smToken uint8

const (
	smOther   smToken = iota // stream features, stream errors, ...
	smStanza                 // <message/>, <presence/>, <iq/>: counted (§4)
	smRequest                // <r/>: answer with <a h/> at once (§4)
	smNonza                  // <a/>, <enabled/>, <failed/>, ...: not counted (§1)
)

// classifySM sorts a top-level token for counting. RFC 6120 §8 stanzas
// are counted, XEP-0198 nonzas are not (§1: they are not stanzas).
func classifySM(tok []byte) smToken {
	name := tokenName(tok)
	switch string(name) { // compared only: no allocation
	case "message", "presence", "iq":
		return smStanza
	}
	if ns, _, ok := attr(tok, "xmlns"); !ok || string(ns) != nsSM {
		return smOther
	}
	if string(name) == "r" {
		return smRequest
	}
	return smNonza
}

// see counts tok if stream management is on and returns its kind; the
// caller answers an smRequest with ack.
func (c *smCounter) see(tok []byte) smToken {
	if !c.on {
		return smOther
	}
	k := classifySM(tok)
	if k == smStanza {
		c.h++ // wraps at 2^32 by itself
	}
	return k
}

// ack returns <a xmlns='urn:xmpp:sm:3' h='N'/> for the current count,
// valid until the next call.
func (c *smCounter) ack() []byte {
	return appendAck(c.buf[:0], c.h)
}

func appendAck(b []byte, h uint32) []byte {
	b = append(b, "<a xmlns='"+nsSM+"' h='"...)
	b = strconv.AppendUint(b, uint64(h), 10)
	return append(b, "'/>"...)
}

// offersSM reports the <sm xmlns='urn:xmpp:sm:3'/> stream feature.
func offersSM(feats []byte) bool {
	return bytes.Contains(feats, []byte("<sm xmlns='"+nsSM+"'")) ||
		bytes.Contains(feats, []byte(`<sm xmlns="`+nsSM+`"`))
}

// enableSM asks for stream management with resumption (§3, §5) on a bound
// stream and waits for <enabled/>. Counting starts with it.
func (s *session) enableSM() error {
	s.w.WriteString("<enable xmlns='" + nsSM + "' resume='true'/>")
	if err := s.w.Flush(); err != nil {
		return err
	}
	for {
		tok, err := s.next()
		if err != nil {
			return err
		}
		switch string(tokenName(tok)) {
		case "enabled":
			s.sm = smCounter{on: true}
			if id, _, ok := attr(tok, "id"); ok {
				if r, _, _ := attr(tok, "resume"); string(r) == "true" || string(r) == "1" {
					s.sm.id = string(id)
				}
			}
			if m, _, ok := attr(tok, "max"); ok {
				s.sm.max, _ = strconv.ParseInt(string(m), 10, 64)
			}
			return nil
		case "failed":
			return fmt.Errorf("server answered %s", tok)
		}
		// Anything else came before <enabled/> and is not counted; nothing
		// is expected before the initial presence anyway.
	}
}

// drop closes the TCP connection without </stream:stream> (and, for TLS,
// without a close_notify alert): to the server it is a lost connection,
// and a session with resumption enabled is parked (XEP-0198 §5) rather
// than ended.
func (s *session) drop() {
	s.raw.Close()
}

// ackWait bounds how long ackThenDrop waits for the server's first <r/>;
// servers ask within a second of a stanza (xmppd after 0.5 s).
const ackWait = 3 * time.Second

// ackThenDrop reads until the server's first <r/>, answers it, so that the
// server holds nothing unacknowledged, as for a session that was idle when
// its network went away, and drops the connection. Stanzas go to onStanza
// and iq requests are answered as in readLoop. When no <r/> comes within
// ackWait there is nothing to acknowledge and it drops all the same.
func (s *session) ackThenDrop(onStanza func(tok []byte)) error {
	defer s.drop()
	s.raw.SetReadDeadline(time.Now().Add(ackWait))
	for {
		tok, err := s.next()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		if err != nil {
			return err
		}
		switch s.sm.see(tok) {
		case smRequest:
			return s.write(s.sm.ack())
		case smNonza:
			continue
		}
		if len(tok) > 3 && tok[1] == 'i' && tok[2] == 'q' {
			s.answerIQ(tok)
		} else if onStanza != nil {
			onStanza(tok)
		}
	}
}

// resume logs user in (STARTTLS, SASL) on a new connection and resumes
// the parked session previd, telling the server it has handled h stanzas
// (XEP-0198 §5). The returned session counts on from h.
func (c *clientConfig) resume(ctx context.Context, user, previd string, h uint32) (*session, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	s, feats, err := c.authenticate(ctx, user)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*session, error) {
		s.raw.Close()
		return nil, &loginError{Step: "resume", User: user, Err: err}
	}
	if !offersSM(feats) {
		return fail(fmt.Errorf("stream management not offered in %s", feats))
	}
	s.w.WriteString("<resume xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(h), 10) +
		"' previd='" + previd + "'/>")
	if err := s.w.Flush(); err != nil {
		return fail(err)
	}
	tok, err := s.next()
	if err != nil {
		return fail(err)
	}
	if !bytes.Equal(tokenName(tok), []byte("resumed")) {
		return fail(fmt.Errorf("answered %s", tok))
	}
	s.sm = smCounter{on: true, h: h, id: previd}
	s.raw.SetDeadline(time.Time{})
	return s, nil
}
